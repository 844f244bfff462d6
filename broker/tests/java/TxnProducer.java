// Kafka's Java transactional producer (4.x client), used by broker/tests/transactions.rs.
//
//   TxnProducer <bootstrap> <topic> <transactional.id> run <transactions> <records-per-transaction>
//     Transaction i sends the numbers [i*R, (i+1)*R) as key = value and commits it, except every
//     third one (i % 3 == 2), which it flushes and then aborts. Prints "committed=C aborted=A" (record counts).
//   TxnProducer <bootstrap> <topic> <transactional.id> paced <transactions> <records-per-transaction> <pause-ms> [<transaction.timeout.ms>]
//     A long run for fault tests: transaction i sends the numbers [i*R, (i+1)*R), the first half, a
//     flush, a pause of <pause-ms> with the transaction open, then the second half; it commits, except
//     when i % 4 == 3, where it aborts. A commit that times out is retried, one that fails with an
//     abortable error is aborted instead. Prints "txn <i> committed" or "txn <i> aborted" as each
//     transaction ends (what a checker may expect to read), then "committed=C aborted=A" (transactions).
//     Exits 2 on a fatal error (fenced, say). request.timeout.ms is 10 s (a hung broker is left sooner).
//   TxnProducer <bootstrap> <topic> <transactional.id> fence
//     A producer opens a transaction and sends "zombie-0..9"; a second producer with the same id
//     initializes (fencing the first), sends "live-0..9" and commits; the first one's commit must
//     fail with ProducerFencedException. Prints "fenced=true live=10".
//   TxnProducer <bootstrap> <topic> <transactional.id> hang <records> [<transaction.timeout.ms> [<age-ms>]]
//     Opens a transaction, sends "open-0".."open-<records-1>" (to partition 0 when an age is given,
//     with timestamps <age-ms> in the past), flushes, prints "open" and waits to be killed. The
//     transaction timeout defaults to 20 s.
//   TxnProducer <bootstrap> <topic> <transactional.id> prepare <records>
//     Opens a transaction, sends "prepared-0..", flushes, prints "sent", waits for a line on stdin,
//     commits (EndTxn returns once the coordinator has decided; the markers come after) and prints
//     "committed".
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
        return producer(bootstrap, txnId, new Properties());
    }

    static KafkaProducer<String, String> producer(String bootstrap, String txnId, Properties extra) {
        Properties props = new Properties();
        props.putAll(extra);
        props.put("bootstrap.servers", bootstrap);
        props.put("transactional.id", txnId);
        props.putIfAbsent("transaction.timeout.ms", "20000");
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
            case "paced" -> paced(bootstrap, topic, txnId, Integer.parseInt(args[4]), Integer.parseInt(args[5]),
                    Long.parseLong(args[6]), args.length > 7 ? args[7] : "20000");
            case "fence" -> fence(bootstrap, topic, txnId);
            case "hang" -> hang(bootstrap, topic, txnId, Integer.parseInt(args[4]),
                    args.length > 5 ? args[5] : "20000", args.length > 6 ? Long.parseLong(args[6]) : -1);
            case "prepare" -> prepare(bootstrap, topic, txnId, Integer.parseInt(args[4]));
            case "copy" -> copy(bootstrap, topic, txnId, args[4], args[5]);
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

    static void paced(String bootstrap, String topic, String txnId, int transactions, int perTxn, long pauseMs,
            String timeoutMs) throws InterruptedException {
        int committed = 0, aborted = 0;
        // A broker that hangs (SIGSTOP) is given up on after 10 s rather than Kafka's 30 s.
        Properties extra = new Properties();
        extra.put("request.timeout.ms", "10000");
        extra.put("transaction.timeout.ms", timeoutMs);
        KafkaProducer<String, String> p = producer(bootstrap, txnId, extra);
        try {
            p.initTransactions();
            for (int i = 0; i < transactions; i++) {
                p.beginTransaction();
                for (int j = 0; j < perTxn; j++) {
                    if (j == perTxn / 2) {
                        p.flush();
                        Thread.sleep(pauseMs);
                    }
                    String n = Long.toString((long) i * perTxn + j);
                    p.send(new ProducerRecord<>(topic, n, n));
                }
                boolean commit = i % 4 != 3;
                if (commit) {
                    commit = commitOrAbort(p, i);
                } else {
                    p.flush();
                    p.abortTransaction();
                }
                if (commit) {
                    committed++;
                } else {
                    aborted++;
                }
                System.out.println("txn " + i + (commit ? " committed" : " aborted"));
                System.out.flush();
            }
        } catch (ProducerFencedException | org.apache.kafka.common.errors.OutOfOrderSequenceException
                | org.apache.kafka.common.errors.AuthorizationException e) {
            System.err.println("fatal: " + e);
            e.printStackTrace();
            p.close(Duration.ZERO);
            System.exit(2);
        }
        p.close();
        System.out.println("committed=" + committed + " aborted=" + aborted);
    }

    /** Commits transaction i (retrying a commit that timed out); aborts it if the commit fails with an
     * abortable error. Whether it committed. */
    static boolean commitOrAbort(KafkaProducer<String, String> p, int i) {
        for (int attempt = 1; ; attempt++) {
            try {
                p.commitTransaction();
                return true;
            } catch (org.apache.kafka.common.errors.TimeoutException e) {
                System.err.println("txn " + i + ": commit attempt " + attempt + " timed out, retrying: " + e);
                if (attempt == 5) {
                    throw e;
                }
            } catch (ProducerFencedException | org.apache.kafka.common.errors.OutOfOrderSequenceException
                    | org.apache.kafka.common.errors.AuthorizationException e) {
                throw e;
            } catch (org.apache.kafka.common.KafkaException e) {
                System.err.println("txn " + i + ": commit failed, aborting: " + e);
                p.abortTransaction();
                return false;
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
        Properties extra = new Properties();
        extra.put("transaction.timeout.ms", timeoutMs);
        KafkaProducer<String, String> p = producer(bootstrap, txnId, extra);
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

    static void prepare(String bootstrap, String topic, String txnId, int records) throws Exception {
        try (KafkaProducer<String, String> p = producer(bootstrap, txnId)) {
            p.initTransactions();
            p.beginTransaction();
            for (int i = 0; i < records; i++) {
                String n = "prepared-" + i;
                p.send(new ProducerRecord<>(topic, n, n));
            }
            p.flush();
            System.out.println("sent");
            System.out.flush();
            new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
            p.commitTransaction();
            System.out.println("committed");
            System.out.flush();
        }
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
