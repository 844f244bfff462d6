// Kafka's Java transactional producer (4.x client), used by broker/tests/transactions.rs.
//
//   TxnProducer <bootstrap> <topic> <transactional.id> run <transactions> <records-per-transaction>
//     Transaction i sends the numbers [i*R, (i+1)*R) as key = value and commits it, except every
//     third one (i % 3 == 2), which it flushes and then aborts. Prints "committed=C aborted=A" (record counts).
//   TxnProducer <bootstrap> <topic> <transactional.id> fence
//     A producer opens a transaction and sends "zombie-0..9"; a second producer with the same id
//     initializes (fencing the first), sends "live-0..9" and commits; the first one's commit must
//     fail with ProducerFencedException. Prints "fenced=true live=10".
//   TxnProducer <bootstrap> <topic> <transactional.id> hang <records> [<transaction.timeout.ms> [<age-ms>]]
//     Opens a transaction, sends "open-0".."open-<records-1>" (to partition 0 when an age is given,
//     with timestamps <age-ms> in the past), flushes, prints "open" and waits to be killed. The
//     transaction timeout defaults to 20 s.
//   TxnProducer <bootstrap> <topic> <transactional.id> survive <transactions> <per-transaction> <pause-ms>
//     As run (transaction i aborted on purpose when i % 3 == 2), paced by <pause-ms> between
//     transactions, for a broker restarted and killed under it: a commit that times out is retried
//     (its outcome is unknown until it answers), an abortable error aborts the transaction. Prints
//     "C i" or "A i" as each transaction ends, so the reader knows exactly which were committed.
//   TxnProducer <bootstrap> <in> <transactional.id> copy <out> <group>
//     Consume-transform-produce: reads <in> (read_committed) in group <group> and writes each record
//     to <out> in a transaction together with the consumed offsets (sendOffsetsToTransaction), in
//     transactions of at most 50 records, 20 ms apart, until killed (or until an error ends it).
import java.time.Duration;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnProducer {
    static KafkaProducer<String, String> producer(String bootstrap, String txnId) {
        return producer(bootstrap, txnId, "20000");
    }

    static KafkaProducer<String, String> producer(String bootstrap, String txnId, String timeoutMs) {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("transactional.id", txnId);
        props.put("transaction.timeout.ms", timeoutMs);
        // A broker restart under the producer: block for it rather than fail the transaction.
        props.put("max.block.ms", "120000");
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        return new KafkaProducer<>(props);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        String txnId = args[2];
        switch (args[3]) {
            case "run" -> run(bootstrap, topic, txnId, Integer.parseInt(args[4]), Integer.parseInt(args[5]));
            case "fence" -> fence(bootstrap, topic, txnId);
            case "hang" -> hang(bootstrap, topic, txnId, Integer.parseInt(args[4]),
                    args.length > 5 ? args[5] : "20000", args.length > 6 ? Long.parseLong(args[6]) : -1);
            case "copy" -> copy(bootstrap, topic, txnId, args[4], args[5]);
            case "survive" -> survive(bootstrap, topic, txnId, Integer.parseInt(args[4]), Integer.parseInt(args[5]),
                    Long.parseLong(args[6]));
            default -> throw new IllegalArgumentException(args[3]);
        }
    }

    static void run(String bootstrap, String topic, String txnId, int transactions, int perTxn) {
        long committed = 0, aborted = 0;
        try (KafkaProducer<String, String> p = producer(bootstrap, txnId)) {
            p.initTransactions();
            for (int i = 0; i < transactions; i++) {
                p.beginTransaction();
                for (int j = 0; j < perTxn; j++) {
                    String n = Long.toString((long) i * perTxn + j);
                    p.send(new ProducerRecord<>(topic, n, n));
                }
                if (i % 3 == 2) {
                    // Flushed first, so the aborted records are in the log (abort drops unsent ones).
                    p.flush();
                    p.abortTransaction();
                    aborted += perTxn;
                } else {
                    p.commitTransaction();
                    committed += perTxn;
                }
            }
        }
        System.out.println("committed=" + committed + " aborted=" + aborted);
    }

    static void survive(String bootstrap, String topic, String txnId, int transactions, int perTxn, long pauseMs)
            throws InterruptedException {
        try (KafkaProducer<String, String> p = producer(bootstrap, txnId)) {
            p.initTransactions();
            for (int i = 0; i < transactions; i++) {
                boolean committed = false;
                try {
                    p.beginTransaction();
                    for (int j = 0; j < perTxn; j++) {
                        String n = Long.toString((long) i * perTxn + j);
                        p.send(new ProducerRecord<>(topic, n, n));
                    }
                    p.flush();
                    if (i % 3 != 2) {
                        committed = commit(p);
                    }
                } catch (ProducerFencedException e) {
                    throw e;
                } catch (org.apache.kafka.common.KafkaException e) {
                    System.err.println("transaction " + i + ": " + e + "; aborting it");
                }
                if (!committed) {
                    abort(p);
                }
                System.out.println((committed ? "C " : "A ") + i);
                System.out.flush();
                Thread.sleep(pauseMs);
            }
        }
    }

    /** Commits, retrying a commit that timed out (the same commit is sent again); false if aborted instead. */
    static boolean commit(KafkaProducer<String, String> p) {
        while (true) {
            try {
                p.commitTransaction();
                return true;
            } catch (org.apache.kafka.common.errors.TimeoutException e) {
                System.err.println("commit timed out, retrying: " + e);
            }
        }
    }

    static void abort(KafkaProducer<String, String> p) {
        while (true) {
            try {
                p.abortTransaction();
                return;
            } catch (org.apache.kafka.common.errors.TimeoutException e) {
                System.err.println("abort timed out, retrying: " + e);
            }
        }
    }

    static void fence(String bootstrap, String topic, String txnId) throws Exception {
        KafkaProducer<String, String> zombie = producer(bootstrap, txnId);
        zombie.initTransactions();
        zombie.beginTransaction();
        for (int i = 0; i < 10; i++) {
            zombie.send(new ProducerRecord<>(topic, "zombie-" + i, "zombie-" + i));
        }
        zombie.flush();
        try (KafkaProducer<String, String> live = producer(bootstrap, txnId)) {
            live.initTransactions();
            live.beginTransaction();
            for (int i = 0; i < 10; i++) {
                live.send(new ProducerRecord<>(topic, "live-" + i, "live-" + i));
            }
            live.commitTransaction();
        }
        boolean fenced = false;
        try {
            zombie.commitTransaction();
        } catch (ProducerFencedException e) {
            fenced = true;
        } catch (org.apache.kafka.common.KafkaException e) {
            fenced = e.getCause() instanceof ProducerFencedException
                    || e instanceof org.apache.kafka.common.errors.InvalidProducerEpochException;
            System.err.println("zombie commit failed: " + e);
        }
        zombie.close(Duration.ZERO);
        System.out.println("fenced=" + fenced + " live=10");
    }

    static void hang(String bootstrap, String topic, String txnId, int records, String timeoutMs, long ageMs)
            throws Exception {
        KafkaProducer<String, String> p = producer(bootstrap, txnId, timeoutMs);
        p.initTransactions();
        p.beginTransaction();
        for (int i = 0; i < records; i++) {
            String n = "open-" + i;
            if (ageMs >= 0) {
                p.send(new ProducerRecord<>(topic, 0, System.currentTimeMillis() - ageMs, n, n));
            } else {
                p.send(new ProducerRecord<>(topic, n, n));
            }
        }
        p.flush();
        System.out.println("open");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }

    static void copy(String bootstrap, String in, String txnId, String out, String group) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", group);
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        c.put("isolation.level", "read_committed");
        // Small transactions, paced, so that a test can kill the application or the broker mid-copy.
        c.put("max.poll.records", "50");
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        // A killed predecessor's member leaves the group after this, not Kafka's default 45 s.
        c.put("session.timeout.ms", "10000");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c);
                KafkaProducer<String, String> p = producer(bootstrap, txnId)) {
            p.initTransactions();
            consumer.subscribe(Collections.singletonList(in));
            while (true) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(500));
                if (records.isEmpty()) {
                    continue;
                }
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    p.send(new ProducerRecord<>(out, r.key(), r.value()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                p.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                p.commitTransaction();
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }
}
