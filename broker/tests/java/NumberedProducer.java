// A Kafka Java producer with default settings (idempotence on, acks=all, retries until
// delivery.timeout.ms) that sends the numbers [0, count) as record values, keyed by number so they
// spread over partitions. Prints "acked=N failed=M" at the end; exits 0 only if every send was acked.
// Used by broker/tests/idempotence.rs while the broker is restarted under it. An optional fourth
// argument paces the sends to that many records per second.
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class NumberedProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        long count = Long.parseLong(args[2]);
        long perSecond = args.length > 3 ? Long.parseLong(args[3]) : 0;
        long started = System.nanoTime();
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        AtomicLong acked = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            for (long i = 0; i < count; i++) {
                String n = Long.toString(i);
                producer.send(new ProducerRecord<>(topic, n, n), (metadata, error) -> {
                    if (error == null) {
                        acked.incrementAndGet();
                    } else if (failed.incrementAndGet() <= 5) {
                        System.err.println("send failed: " + error);
                    }
                });
                if (perSecond > 0 && i % 100 == 0) {
                    long due = started + i * 1_000_000_000L / perSecond;
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                    }
                }
                if (i % 100000 == 0) {
                    System.err.println("sent " + i);
                }
            }
            producer.flush();
        }
        System.out.println("acked=" + acked.get() + " failed=" + failed.get());
        System.exit(failed.get() == 0 ? 0 : 1);
    }
}
