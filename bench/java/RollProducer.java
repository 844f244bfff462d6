// A Kafka Java producer with the client's defaults (idempotence on, acks=all, retries until
// delivery.timeout.ms) sending one small record every 1/rate seconds, keyed so that the records go
// round the partitions, until STOP_FILE exists. At the end it writes one line per record to OUT:
// "send-time-ms latency-ms ok|failed", the latency measured from send() to the callback.
// Used by bench/roll.sh to see the produce latency before, during and after a rolling restart.
//
//   java -cp <kafka libs>:<dir> RollProducer BOOTSTRAP TOPIC RATE STOP_FILE OUT
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Properties;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class RollProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        long rate = Long.parseLong(args[2]);
        String stopFile = args[3];
        String out = args[4];
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        ConcurrentLinkedQueue<String> lines = new ConcurrentLinkedQueue<>();
        long started = System.nanoTime();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            for (long i = 0; ; i++) {
                if (i % rate == 0 && Files.exists(Paths.get(stopFile))) {
                    break;
                }
                long due = started + i * 1_000_000_000L / rate;
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                }
                String n = Long.toString(i);
                long sentNanos = System.nanoTime();
                long sentMs = System.currentTimeMillis();
                producer.send(new ProducerRecord<>(topic, n, n), (metadata, error) -> {
                    double latency = (System.nanoTime() - sentNanos) / 1e6;
                    lines.add(sentMs + " " + String.format("%.2f", latency) + " " + (error == null ? "ok" : "failed"));
                    if (error != null) {
                        System.err.println("send failed: " + error);
                    }
                });
            }
            producer.flush();
        }
        try (PrintWriter w = new PrintWriter(out)) {
            for (String line : lines) {
                w.println(line);
            }
        }
    }
}
