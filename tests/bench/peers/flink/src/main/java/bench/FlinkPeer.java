/* The Flink peer of `make bench-peers`: the service's job as Flink teaches it.
 * Per user (keyBy), ValueState holds the previous and cumulative amounts and
 * the count, as exact decimals; a payment that jumps by the threshold or more
 * over the user's previous one writes an alert to the output topic. HashMap
 * state backend, a checkpoint every second, on a local MiniCluster. It reads
 * the input from its beginning up to the end it finds at start, then stops.
 *
 * Usage: FlinkPeer BOOTSTRAP INPUT_TOPIC ALERT_TOPIC GROUP PARALLELISM */
package bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

public final class FlinkPeer {
    static final BigDecimal THRESHOLD = new BigDecimal("10000");
    static final ObjectMapper JSON = new ObjectMapper();

    /** A payment as the load generator writes it; amounts are decimal strings. */
    public static final class Payment {
        public String user;
        public BigDecimal amount;
        public long eventTime;

        public Payment() {}
    }

    static final class Parse implements MapFunction<String, Payment> {
        @Override
        public Payment map(String value) throws Exception {
            JsonNode n = JSON.readTree(value);
            Payment p = new Payment();
            p.user = n.get("user_id").asText();
            p.amount = new BigDecimal(n.get("amount").asText());
            JsonNode ts = n.get("timestamp");
            p.eventTime = ts == null ? -1 : ts.asLong();
            return p;
        }
    }

    static final class AmountJump extends KeyedProcessFunction<String, Payment, String> {
        private transient ValueState<BigDecimal> previous;
        private transient ValueState<BigDecimal> cumulative;
        private transient ValueState<Long> count;

        @Override
        public void open(OpenContext context) {
            previous = getRuntimeContext().getState(new ValueStateDescriptor<>("prev", Types.BIG_DEC));
            cumulative = getRuntimeContext().getState(new ValueStateDescriptor<>("cum", Types.BIG_DEC));
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
        }

        @Override
        public void processElement(Payment p, Context ctx, Collector<String> out) throws Exception {
            BigDecimal prev = previous.value();
            BigDecimal cum = cumulative.value();
            Long n = count.value();
            cum = cum == null ? p.amount : cum.add(p.amount);
            long events = n == null ? 1 : n + 1;
            if (prev != null && p.amount.subtract(prev).compareTo(THRESHOLD) >= 0) {
                ObjectNode alert = JSON.createObjectNode();
                alert.put("rule", "amount_jump");
                alert.put("user_id", p.user);
                alert.put("amount", p.amount);
                alert.put("previous_amount", prev);
                alert.put("cumulative_amount", cum);
                alert.put("event_count", events);
                alert.put("event_time", p.eventTime);
                out.collect(JSON.writeValueAsString(alert));
            }
            previous.update(p.amount);
            cumulative.update(cum);
            count.update(events);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: FlinkPeer BOOTSTRAP INPUT_TOPIC ALERT_TOPIC GROUP PARALLELISM");
            System.exit(2);
        }
        String bootstrap = args[0], input = args[1], alerts = args[2], group = args[3];
        int parallelism = Integer.parseInt(args[4]);

        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, "hashmap");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);
        env.enableCheckpointing(1000);

        KafkaSource<String> source = KafkaSource.<String>builder()
                .setBootstrapServers(bootstrap)
                .setTopics(input)
                .setGroupId(group)
                .setStartingOffsets(OffsetsInitializer.earliest())
                .setBounded(OffsetsInitializer.latest())
                .setValueOnlyDeserializer(new SimpleStringSchema())
                .build();
        KafkaSink<String> sink = KafkaSink.<String>builder()
                .setBootstrapServers(bootstrap)
                .setRecordSerializer(KafkaRecordSerializationSchema.builder()
                        .setTopic(alerts)
                        .setValueSerializationSchema(new SimpleStringSchema())
                        .build())
                .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
                .build();

        env.fromSource(source, WatermarkStrategy.noWatermarks(), "payments")
                .map(new Parse())
                .keyBy(p -> p.user)
                .process(new AmountJump())
                .sinkTo(sink);
        env.execute("fraud-detector bench peer: amount_jump");
    }
}
