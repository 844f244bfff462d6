// A Kafka Java consumer in a group, for broker/tests/groups_acceptance.rs and consumer_groups.rs.
// Arguments: bootstrap, topic (or "regex:<pattern>", a broker-side KIP-848 subscription),
// group, partition.assignment.strategy (range | roundrobin | cooperative-sticky | sticky),
// session.timeout.ms, group.instance.id ("-" for a dynamic member), and optionally a file whose
// appearance makes it leave the group (close(), then "CLOSED"). Polls until then, auto-committing, and
// prints one line per event on stdout (flushed):
//   ASSIGN <p,p>   partitions added (ConsumerRebalanceListener.onPartitionsAssigned)
//   REVOKE <p,p>   partitions revoked (onPartitionsRevoked, only when non-empty)
//   LOST <p,p>     partitions lost (onPartitionsLost)
//   OWNED <p,p>    the partitions owned after that event
//   GEN <n>        the group generation, whenever it changes (groupMetadata().generationId())
//   REC <partition> <offset> <value>
//   EVENT <ms> <ASSIGN|REVOKE|LOST> <p,p>   when a callback ran (wall clock), before its line above
// The strategy "consumer" (or "consumer:<assignor>") uses the KIP-848 protocol (group.protocol=consumer).
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

public class GroupMember {
    static final TreeSet<Integer> owned = new TreeSet<>();

    static String list(Collection<TopicPartition> parts) {
        return parts.stream().map(tp -> tp.partition()).sorted().map(String::valueOf)
                .collect(Collectors.joining(","));
    }

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    /** When a rebalance callback ran (wall clock, ms), for the one-owner-at-a-time check. */
    static void event(String kind, Collection<TopicPartition> parts) {
        say("EVENT " + System.currentTimeMillis() + " " + kind + " " + list(parts));
    }

    public static void main(String[] args) {
        // "consumer" or "consumer:<assignor>": the KIP-848 protocol (the broker assigns, with its
        // default assignor or the one named); then session and heartbeat timing are the broker's.
        boolean kip848 = args[3].startsWith("consumer");
        String strategy = kip848 ? null : switch (args[3]) {
            case "range" -> "org.apache.kafka.clients.consumer.RangeAssignor";
            case "roundrobin" -> "org.apache.kafka.clients.consumer.RoundRobinAssignor";
            case "sticky" -> "org.apache.kafka.clients.consumer.StickyAssignor";
            case "cooperative-sticky" -> "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
            default -> throw new IllegalArgumentException(args[3]);
        };
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("group.id", args[2]);
        if (kip848) {
            props.put("group.protocol", "consumer");
            if (args[3].contains(":")) {
                props.put("group.remote.assignor", args[3].substring(args[3].indexOf(':') + 1));
            }
        } else {
            props.put("partition.assignment.strategy", strategy);
            props.put("session.timeout.ms", args[4]);
            props.put("heartbeat.interval.ms", "500");
        }
        props.put("auto.offset.reset", "earliest");
        props.put("auto.commit.interval.ms", "500");
        props.put("client.id", "java-" + args[5]);
        // Kafka 4 clients "rebootstrap" when no broker is reachable (a one-broker cluster restarting),
        // which empties the cached metadata and makes the group leader rejoin: keep the cache instead,
        // so that a restart of the broker alone causes no rebalance.
        props.put("metadata.recovery.strategy", "none");
        if (!args[5].equals("-")) {
            props.put("group.instance.id", args[5]);
        }
        // -Doxka.client.rack=<rack>: the member's client.rack (KIP-848 sends it as the heartbeat's RackId).
        String rack = System.getProperty("oxka.client.rack");
        if (rack != null) {
            props.put("client.rack", rack);
        }
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
        ConsumerRebalanceListener listener = new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                if (!parts.isEmpty()) {
                    parts.forEach(tp -> owned.remove(tp.partition()));
                    event("REVOKE", parts);
                    say("REVOKE " + list(parts));
                    say("OWNED " + owned.stream().map(String::valueOf).collect(Collectors.joining(",")));
                }
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                parts.forEach(tp -> owned.add(tp.partition()));
                event("ASSIGN", parts);
                say("ASSIGN " + list(parts));
                say("OWNED " + owned.stream().map(String::valueOf).collect(Collectors.joining(",")));
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> parts) {
                parts.forEach(tp -> owned.remove(tp.partition()));
                event("LOST", parts);
                say("LOST " + list(parts));
                say("OWNED " + owned.stream().map(String::valueOf).collect(Collectors.joining(",")));
            }
        };
        // "regex:<RE2J pattern>": the broker resolves the subscription (KIP-848, SubscriptionPattern).
        if (args[1].startsWith("regex:")) {
            consumer.subscribe(new SubscriptionPattern(args[1].substring(6)), listener);
        } else {
            consumer.subscribe(List.of(args[1]), listener);
        }
        // Optional 7th argument: a file whose appearance makes the member leave the group (close()).
        java.nio.file.Path leave = args.length > 6 ? java.nio.file.Path.of(args[6]) : null;
        int generation = -1;
        while (true) {
            if (leave != null && java.nio.file.Files.exists(leave)) {
                consumer.close();
                say("CLOSED");
                return;
            }
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                say("REC " + r.partition() + " " + r.offset() + " " + r.value());
            }
            int g = consumer.groupMetadata().generationId();
            if (g != generation) {
                generation = g;
                say("GEN " + g);
            }
        }
    }
}
