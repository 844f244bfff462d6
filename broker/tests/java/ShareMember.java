// A Kafka 4.1 share consumer (KIP-932, org.apache.kafka.clients.consumer.KafkaShareConsumer) for
// broker/tests/share_groups.rs. Arguments: bootstrap, topic, group, mode, and optionally a file whose
// appearance makes it close, then consumer properties as key=value,key=value (the key await.file
// is no property: the member subscribes only once that file exists). Acknowledges explicitly (share.acknowledgement.mode=explicit) and commits
// after every poll (commitSync: a ShareAcknowledge), as the mode says:
//   accept    ACCEPT every record
//   release   RELEASE every record (each is delivered again until the delivery count limit)
//   reject    REJECT every record
//   value     by the record's value: "reject..." REJECT, "release..." RELEASE on its first delivery
//             then ACCEPT, anything else ACCEPT
//   hold      acknowledge nothing: print the first records received, then stop polling (the test
//             kills it; the acquisition locks must expire)
// Prints one line per event on stdout (flushed):
//   POLLED              after the first poll returned (the share session is open)
//   REC <partition> <offset> <value> <delivery count>
//   CLOSED              after close()
import java.io.File;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.common.serialization.StringDeserializer;

public class ShareMember {
    static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String mode = args[3];
        File stop = args.length > 4 ? new File(args[4]) : null;
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("group.id", args[2]);
        props.put("share.acknowledgement.mode", "explicit");
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        if (args.length > 5) {
            for (String kv : args[5].split(",")) {
                String[] pair = kv.split("=", 2);
                props.put(pair[0], pair[1]);
            }
        }
        Object await = props.remove("await.file");
        KafkaShareConsumer<String, String> consumer = new KafkaShareConsumer<>(props);
        if (await != null) {
            while (!new File((String) await).exists()) {
                Thread.sleep(20);
            }
        }
        consumer.subscribe(List.of(args[1]));
        boolean polled = false;
        while (stop == null || !stop.exists()) {
            ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(500));
            if (!polled) {
                polled = true;
                say("POLLED");
            }
            for (ConsumerRecord<String, String> r : records) {
                short count = r.deliveryCount().orElse((short) -1);
                say("REC " + r.partition() + " " + r.offset() + " " + r.value() + " " + count);
                if (mode.equals("hold")) {
                    continue;
                }
                AcknowledgeType type = switch (mode) {
                    case "accept" -> AcknowledgeType.ACCEPT;
                    case "release" -> AcknowledgeType.RELEASE;
                    case "reject" -> AcknowledgeType.REJECT;
                    case "value" -> r.value().startsWith("reject") ? AcknowledgeType.REJECT
                            : r.value().startsWith("release") && count == 1 ? AcknowledgeType.RELEASE
                            : AcknowledgeType.ACCEPT;
                    default -> throw new IllegalArgumentException(mode);
                };
                consumer.acknowledge(r, type);
            }
            if (mode.equals("hold") && !records.isEmpty()) {
                say("HOLDING");
                Thread.sleep(Long.MAX_VALUE);
            }
            if (!records.isEmpty()) {
                consumer.commitSync();
            }
        }
        consumer.close();
        say("CLOSED");
    }
}
