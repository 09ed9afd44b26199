/* The Kafka Streams peer of `make bench-peers`: the service's job with the
 * Processor API. A persistent (RocksDB) key-value store holds each user's
 * previous and cumulative amounts and count, as exact decimals; a payment
 * that jumps by the threshold or more over the user's previous one is
 * forwarded as an alert to the output topic. processing.guarantee is
 * exactly_once_v2. It runs until it is stopped.
 *
 * Usage: StreamsPeer BOOTSTRAP INPUT_TOPIC ALERT_TOPIC APPLICATION_ID THREADS STATE_DIR */
package bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

public final class StreamsPeer {
    static final BigDecimal THRESHOLD = new BigDecimal("10000");
    static final ObjectMapper JSON = new ObjectMapper();
    static final String STORE = "users";

    /** The store's value: "prev cum count". */
    static final class AmountJump implements Processor<String, String, String, String> {
        private ProcessorContext<String, String> context;
        private KeyValueStore<String, String> users;

        @Override
        public void init(ProcessorContext<String, String> context) {
            this.context = context;
            this.users = context.getStateStore(STORE);
        }

        @Override
        public void process(Record<String, String> record) {
            try {
                JsonNode n = JSON.readTree(record.value());
                String user = n.get("user_id").asText();
                BigDecimal amount = new BigDecimal(n.get("amount").asText());
                JsonNode ts = n.get("timestamp");
                String stored = users.get(user);
                BigDecimal prev = null, cum = amount;
                long events = 1;
                if (stored != null) {
                    String[] f = stored.split(" ");
                    prev = new BigDecimal(f[0]);
                    cum = new BigDecimal(f[1]).add(amount);
                    events = Long.parseLong(f[2]) + 1;
                }
                if (prev != null && amount.subtract(prev).compareTo(THRESHOLD) >= 0) {
                    ObjectNode alert = JSON.createObjectNode();
                    alert.put("rule", "amount_jump");
                    alert.put("user_id", user);
                    alert.put("amount", amount);
                    alert.put("previous_amount", prev);
                    alert.put("cumulative_amount", cum);
                    alert.put("event_count", events);
                    alert.put("event_time", ts == null ? -1 : ts.asLong());
                    context.forward(new Record<>(user, JSON.writeValueAsString(alert),
                                                 record.timestamp()));
                }
                users.put(user, amount.toPlainString() + " " + cum.toPlainString() + " " + events);
            } catch (Exception e) {
                throw new RuntimeException("bad payment: " + record.value(), e);
            }
        }
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 6) {
            System.err.println("usage: StreamsPeer BOOTSTRAP INPUT_TOPIC ALERT_TOPIC APPLICATION_ID THREADS STATE_DIR");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[3]);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args[4]));
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");

        StreamsBuilder builder = new StreamsBuilder();
        builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(STORE),
                                                          Serdes.String(), Serdes.String()));
        builder.stream(args[1], Consumed.with(Serdes.String(), Serdes.String()))
                .process(AmountJump::new, STORE)
                .to(args[2], Produced.with(Serdes.String(), Serdes.String()));

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close();
            stopped.countDown();
        }));
        streams.start();
        stopped.await();
    }
}
