// Alters or deletes a share group's offsets with the Kafka 4.1.1 Admin client, for
// broker/tests/share_groups.rs (kafka-share-groups 4.1.1 has no --reset-offsets yet).
// Arguments: bootstrap, group, topic, and "alter <offset> [<partitions>]" (partition 0, or
// partitions 0 to <partitions> - 1) or "delete".
// Prints "OK", or "ERROR <exception>" and exits 1.
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.TopicPartition;

public class ShareOffsets {
    public static void main(String[] args) {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(props)) {
            if (args[3].equals("alter")) {
                int partitions = args.length > 5 ? Integer.parseInt(args[5]) : 1;
                Map<TopicPartition, Long> offsets = new HashMap<>();
                for (int p = 0; p < partitions; p++) {
                    offsets.put(new TopicPartition(args[2], p), Long.parseLong(args[4]));
                }
                admin.alterShareGroupOffsets(args[1], offsets).all().get();
            } else {
                admin.deleteShareGroupOffsets(args[1], Set.of(args[2])).all().get();
            }
            System.out.println("OK");
        } catch (Exception e) {
            System.out.println("ERROR " + e);
            System.exit(1);
        }
    }
}
