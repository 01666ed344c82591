// A Flink session on a MiniCluster (REST on a loopback port) that runs the exam's kind of
// job on command: a Debezium CDC topic from Kafka, a JDBC lookup join against a PostgreSQL
// dimension table, and an Iceberg sink in a JDBC catalog that commits on checkpoints.
//
// Usage: java -cp <jars>:<classes> PipelineSession <rest-port> [<prometheus-port>]
// then one command a line on stdin:
//   submit <job.properties>   build the pipeline the file describes and submit it
//   quit                      stop the cluster and exit
// Jobs are cancelled through the REST API (PATCH /jobs/<id>?mode=cancel), as on any
// Flink cluster; the session keeps running, so cancelled jobs stay in /jobs/overview.
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.streaming.api.CheckpointingMode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;

public final class PipelineSession {
    private PipelineSession() {}

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        Configuration conf = new Configuration();
        if (args.length > 1) {
            // Flink's own Prometheus reporter: one /metrics endpoint for the JobManager and
            // the TaskManager of this JVM (they share the MiniCluster's metric registry)
            conf.setString(
                    "metrics.reporter.prom.factory.class",
                    "org.apache.flink.metrics.prometheus.PrometheusReporterFactory");
            conf.setString("metrics.reporter.prom.port", args[1]);
        }
        conf.set(RestOptions.BIND_ADDRESS, "127.0.0.1");
        conf.set(RestOptions.ADDRESS, "127.0.0.1");
        conf.set(RestOptions.PORT, port);
        // small, fixed memory: the whole cluster lives in one JVM with a small heap
        conf.set(TaskManagerOptions.MANAGED_MEMORY_SIZE, MemorySize.parse("64m"));
        conf.set(TaskManagerOptions.NETWORK_MEMORY_MIN, MemorySize.parse("32m"));
        conf.set(TaskManagerOptions.NETWORK_MEMORY_MAX, MemorySize.parse("32m"));
        MiniCluster cluster =
                new MiniCluster(
                        new MiniClusterConfiguration.Builder()
                                .setConfiguration(conf)
                                .setNumTaskManagers(1)
                                .setNumSlotsPerTaskManager(4)
                                .build());
        cluster.start();
        int bound = cluster.getRestAddress().get().getPort();
        System.out.println("READY rest-port=" + bound);
        System.out.flush();
        BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            line = line.trim();
            if (line.isEmpty()) {
                continue;
            }
            if (line.equals("quit")) {
                break;
            }
            if (line.startsWith("submit ")) {
                try {
                    String id = submit(bound, load(line.substring(7).trim()));
                    System.out.println("SUBMITTED " + id);
                } catch (Exception e) {
                    System.out.println("FAILED " + e);
                    e.printStackTrace(System.out);
                }
                System.out.flush();
            } else {
                System.out.println("UNKNOWN " + line);
            }
        }
        cluster.close();
        System.exit(0);
    }

    private static Properties load(String path) throws Exception {
        Properties p = new Properties();
        try (FileInputStream f = new FileInputStream(path)) {
            p.load(new InputStreamReader(f, StandardCharsets.UTF_8));
        }
        return p;
    }

    private static String need(Properties p, String key) {
        String v = p.getProperty(key);
        if (v == null || v.isEmpty()) {
            throw new IllegalArgumentException("job properties lack " + key);
        }
        return v;
    }

    /** Builds the pipeline of one properties file and submits it; returns the job id. */
    static String submit(int port, Properties p) throws Exception {
        // the session's own classes are on the cluster's classpath: no jars to ship
        StreamExecutionEnvironment env =
                StreamExecutionEnvironment.createRemoteEnvironment("127.0.0.1", port);
        env.setParallelism(1);
        String mode = need(p, "checkpointing");
        long interval = Long.parseLong(p.getProperty("checkpoint.interval.ms", "1000"));
        if (mode.equals("exactly_once")) {
            env.enableCheckpointing(interval, CheckpointingMode.EXACTLY_ONCE);
        } else if (mode.equals("at_least_once")) {
            env.enableCheckpointing(interval, CheckpointingMode.AT_LEAST_ONCE);
        } else if (!mode.equals("off")) {
            throw new IllegalArgumentException("checkpointing must be exactly_once, at_least_once or off");
        }
        StreamTableEnvironment t = StreamTableEnvironment.create(env);
        t.getConfig().set("pipeline.name", need(p, "job.name"));

        String jdbcUrl = need(p, "jdbc.url");
        String jdbcUser = need(p, "jdbc.user");
        String jdbcPassword = p.getProperty("jdbc.password", "");
        t.executeSql(
                "CREATE TEMPORARY TABLE orders_cdc ("
                        + " order_id BIGINT, customer_id BIGINT, amount DECIMAL(12, 2),"
                        + " proc_time AS PROCTIME()"
                        + ") WITH ("
                        + " 'connector' = 'kafka',"
                        + " 'topic' = '" + need(p, "kafka.topic") + "',"
                        + " 'properties.bootstrap.servers' = '" + need(p, "kafka.bootstrap") + "',"
                        + " 'properties.group.id' = '" + need(p, "kafka.group") + "',"
                        + " 'scan.startup.mode' = 'earliest-offset',"
                        + " 'format' = 'debezium-json')");
        t.executeSql(
                "CREATE TEMPORARY TABLE customers ("
                        + " customer_id BIGINT, name STRING, region STRING,"
                        + " PRIMARY KEY (customer_id) NOT ENFORCED"
                        + ") WITH ("
                        + " 'connector' = 'jdbc',"
                        + " 'url' = '" + jdbcUrl + "',"
                        + " 'table-name' = '" + need(p, "dimension.table") + "',"
                        + " 'username' = '" + jdbcUser + "',"
                        + " 'password' = '" + jdbcPassword + "',"
                        + " 'lookup.cache' = 'PARTIAL',"
                        + " 'lookup.partial-cache.max-rows' = '1000',"
                        + " 'lookup.partial-cache.expire-after-write' = '10s')");
        String catalog = need(p, "iceberg.catalog");
        t.executeSql(
                "CREATE CATALOG " + catalog + " WITH ("
                        + " 'type' = 'iceberg',"
                        + " 'catalog-impl' = 'org.apache.iceberg.jdbc.JdbcCatalog',"
                        + " 'uri' = '" + jdbcUrl + "',"
                        + " 'jdbc.user' = '" + jdbcUser + "',"
                        + " 'jdbc.password' = '" + jdbcPassword + "',"
                        + " 'jdbc.schema-version' = 'V1',"
                        + " 'warehouse' = '" + need(p, "iceberg.warehouse") + "')");
        String ns = need(p, "iceberg.namespace");
        String sink = catalog + "." + ns + "." + need(p, "iceberg.table");
        t.executeSql("CREATE DATABASE IF NOT EXISTS " + catalog + "." + ns);
        // a CDC stream writes updates and deletes: format v2 with the key as equality fields;
        // "table.<key>" properties of the job become the table's own (e.g. history.expire.*)
        StringBuilder with =
                new StringBuilder("'format-version' = '2', 'write.upsert.enabled' = 'true'");
        for (String key : new java.util.TreeSet<>(p.stringPropertyNames())) {
            if (key.startsWith("table.")) {
                with.append(", '").append(key.substring(6)).append("' = '")
                        .append(p.getProperty(key)).append("'");
            }
        }
        t.executeSql(
                "CREATE TABLE IF NOT EXISTS " + sink + " ("
                        + " order_id BIGINT, customer_id BIGINT, amount DECIMAL(12, 2),"
                        + " customer_name STRING, region STRING,"
                        + " PRIMARY KEY (order_id) NOT ENFORCED"
                        + ") WITH (" + with + ")");
        TableResult result =
                t.executeSql(
                        "INSERT INTO " + sink
                                + " SELECT o.order_id, o.customer_id, o.amount, c.name, c.region"
                                + " FROM orders_cdc AS o"
                                + " JOIN customers FOR SYSTEM_TIME AS OF o.proc_time AS c"
                                + " ON o.customer_id = c.customer_id");
        return result.getJobClient().orElseThrow().getJobID().toHexString();
    }
}
