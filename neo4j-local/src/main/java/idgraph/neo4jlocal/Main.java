package idgraph.neo4jlocal;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;

/**
 * Runs a real Neo4j Community DBMS in this JVM with Bolt on loopback, for machines without Docker.
 *
 * <p>Configuration (environment variables, each with a default):
 * NEO4J_LOCAL_HOME (var/neo4j: data and logs), NEO4J_LOCAL_HOST (127.0.0.1), NEO4J_LOCAL_PORT (7687),
 * NEO4J_LOCAL_PAGECACHE_MB (256), NEO4J_LOCAL_TX_MEMORY_MB (512), NEO4J_LOCAL_TX_TIMEOUT_S (60).
 *
 * <p>Prints "READY bolt://host:port" once the default database answers a query; shuts down cleanly on
 * SIGTERM/SIGINT; refuses to start when another process already holds the data directory.
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        Path home = Path.of(env("NEO4J_LOCAL_HOME", "var/neo4j")).toAbsolutePath();
        String host = env("NEO4J_LOCAL_HOST", "127.0.0.1");
        int port = intEnv("NEO4J_LOCAL_PORT", 7687);
        long pageCacheMb = intEnv("NEO4J_LOCAL_PAGECACHE_MB", 256);
        long txMemoryMb = intEnv("NEO4J_LOCAL_TX_MEMORY_MB", 512);
        long txTimeoutS = intEnv("NEO4J_LOCAL_TX_TIMEOUT_S", 60);

        Files.createDirectories(home);
        FileLock lock = acquireLock(home.resolve("neo4j-local.lock"));
        if (lock == null) {
            System.err.println("neo4j-local: another neo4j-local already runs on " + home
                    + " (lock held on neo4j-local.lock); refusing to start a second copy on the same data");
            System.exit(3);
        }

        DatabaseManagementService dbms;
        try {
            dbms = new DatabaseManagementServiceBuilder(home)
                    .setConfig(BoltConnector.enabled, true)
                    .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
                    .setConfig(BoltConnector.advertised_address, new SocketAddress(host, port))
                    .setConfig(HttpConnector.enabled, false)
                    .setConfig(HttpsConnector.enabled, false)
                    .setConfig(GraphDatabaseSettings.auth_enabled, false)
                    .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(pageCacheMb))
                    .setConfig(GraphDatabaseSettings.memory_transaction_max_size, ByteUnit.mebiBytes(txMemoryMb))
                    .setConfig(GraphDatabaseSettings.transaction_timeout, Duration.ofSeconds(txTimeoutS))
                    // Netty waits this many seconds of quiet, twice (boss and worker loops), before the Bolt server
                    // stops: 10 s added to every clean shutdown although the databases have already stopped.
                    .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                    .build();
        } catch (RuntimeException e) {
            System.err.println("neo4j-local: failed to start: " + e);
            e.printStackTrace();
            System.exit(2);
            return;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("neo4j-local: shutting down");
            try {
                dbms.shutdown();
            } finally {
                System.out.println("neo4j-local: stopped");
                System.out.flush();
                stopped.countDown();
            }
        }, "neo4j-local-shutdown"));

        GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        db.executeTransactionally("RETURN 1");
        System.out.println("READY bolt://" + host + ":" + port);
        System.out.flush();
        stopped.await();
    }

    private static FileLock acquireLock(Path lockFile) throws IOException {
        FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        try {
            FileLock lock = channel.tryLock();
            if (lock == null) {
                channel.close();
            }
            return lock; // kept for the life of the JVM; the OS releases it on exit, even on kill -9
        } catch (OverlappingFileLockException e) {
            channel.close();
            return null;
        }
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value.trim();
    }

    private static int intEnv(String name, int fallback) {
        String value = env(name, null);
        if (value == null) {
            return fallback;
        }
        try {
            return Integer.parseInt(value);
        } catch (NumberFormatException e) {
            System.err.println("neo4j-local: " + name + " must be a whole number, got '" + value + "'");
            System.exit(2);
            return fallback;
        }
    }
}
