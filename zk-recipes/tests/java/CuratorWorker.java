// A Curator 5 contender for zk-recipes' Curator interop tests (tests/interop_curator.rs).
//
//   java CuratorWorker HOSTS KIND PATH ID ROUNDS DIR [MAX]
//
// KIND: mutex (InterProcessMutex), read / write (InterProcessReadWriteLock), semaphore
// (InterProcessSemaphoreV2 with MAX leases), latch (LeaderLatch), atomic (one increment of a
// DistributedAtomicLong at PATH, one optimistic retry, promoted to the mutex PATH-lock; repeated
// until it succeeds; prints `VIOLATION` if post != pre + 1 and `PROMOTED n` with the lock
// attempts), discover (curator-x-discovery: registers the instance ID of service `svc` under
// the base path PATH, address `java-host`, port 1000, payload "from-java"; waits until an
// instance `rs-*` shows up and checks its fields (address `rust-host`, port 2000, payload
// "from-rust"), prints `CONTENDERS [ids]`, creates DIR/seen, waits until the Rust instance is
// gone again, unregisters), multi (InterProcessMultiLock over the mutexes PATH/a and PATH/b,
// given in sorted order; each round as mutex, the contenders of PATH/a listed), group
// (GroupMember PATH/ID with data `java-data`: waits until a member `rs-*` with data
// `rust-data` shows up, prints `CONTENDERS [ids]`, creates DIR/seen, waits until it left,
// closes), nodes (a PersistentTtlNode at PATH/ttl, TTL 1500 ms, data ID, and a protected
// EPHEMERAL_SEQUENTIAL PersistentNode at PATH/p/member-, data ID; prints `CREATED`, waits until
// DIR/stop exists, closes both). Each round of the others: acquire, print
// `CONTENDERS ["id", ...]` (the node data of every contender, read through Curator's own
// participant listing), run the critical-section check on marker files in DIR (the protocol of
// interop.rs's `critical`, shared by the Rust side), release. Prints `VIOLATION ...` for every
// exclusion violation and `DONE` at the end. The contender's node data is ID (Curator's
// defaultData; the lock data of the read/write lock; setNodeData of the semaphore; the latch id).
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.atomic.PromotedToLock;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.nodes.GroupMember;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.nodes.PersistentTtlNode;
import org.apache.zookeeper.CreateMode;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.*;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import java.util.concurrent.TimeUnit;

public class CuratorWorker {
    static CuratorFramework client;
    static Path dir;
    static String id;

    public static void main(String[] a) throws Exception {
        String hosts = a[0], kind = a[1], path = a[2];
        id = a[3];
        int rounds = Integer.parseInt(a[4]);
        dir = Paths.get(a[5]);
        int max = a.length > 6 ? Integer.parseInt(a[6]) : 1;
        client = CuratorFrameworkFactory.builder()
                .connectString(hosts)
                .sessionTimeoutMs(20000)
                .retryPolicy(new ExponentialBackoffRetry(100, 10))
                .defaultData(id.getBytes(StandardCharsets.UTF_8))
                .build();
        client.start();
        client.blockUntilConnected();
        InterProcessReadWriteLock rw = new InterProcessReadWriteLock(client, path,
                id.getBytes(StandardCharsets.UTF_8));
        for (int i = 0; i < rounds; i++) {
            switch (kind) {
                case "mutex": {
                    InterProcessMutex m = new InterProcessMutex(client, path);
                    m.acquire();
                    try {
                        seen(path, m.getParticipantNodes());
                        critical("exclusive", 1);
                    } finally {
                        m.release();
                    }
                    break;
                }
                case "read":
                case "write": {
                    InterProcessMutex m = kind.equals("read") ? rw.readLock() : rw.writeLock();
                    m.acquire();
                    try {
                        List<String> all = new ArrayList<>(rw.readLock().getParticipantNodes());
                        all.addAll(rw.writeLock().getParticipantNodes());
                        seen(path, all);
                        critical(kind.equals("read") ? "reader" : "exclusive", 1);
                    } finally {
                        m.release();
                    }
                    break;
                }
                case "semaphore": {
                    InterProcessSemaphoreV2 s = new InterProcessSemaphoreV2(client, path, max);
                    s.setNodeData(id.getBytes(StandardCharsets.UTF_8));
                    Lease l = s.acquire();
                    try {
                        seen(path + "/leases", s.getParticipantNodes());
                        critical("semaphore", max);
                    } finally {
                        s.returnLease(l);
                    }
                    break;
                }
                case "latch": {
                    LeaderLatch latch = new LeaderLatch(client, path, id);
                    latch.start();
                    latch.await();
                    try {
                        List<String> ids = new ArrayList<>();
                        for (Participant p : latch.getParticipants()) ids.add(p.getId());
                        print(ids);
                        if (!latch.hasLeadership()) System.out.println("VIOLATION " + id + " lost leadership early");
                        critical("exclusive", 1);
                    } finally {
                        latch.close();
                    }
                    break;
                }
                case "atomic": {
                    DistributedAtomicLong n = new DistributedAtomicLong(client, path, new RetryNTimes(1, 5),
                            PromotedToLock.builder().lockPath(path + "-lock")
                                    .retryPolicy(new RetryNTimes(10, 5)).timeout(30, TimeUnit.SECONDS).build());
                    AtomicValue<Long> v;
                    do {
                        v = n.increment();
                        if (v.getStats().getPromotedLockTries() > 0) {
                            System.out.println("PROMOTED " + v.getStats().getPromotedLockTries());
                        }
                    } while (!v.succeeded());
                    if (v.postValue() != v.preValue() + 1) violation("increment " + v.preValue() + " -> " + v.postValue());
                    break;
                }
                case "multi": {
                    InterProcessMultiLock m = new InterProcessMultiLock(client,
                            Arrays.asList(path + "/a", path + "/b"));
                    m.acquire();
                    try {
                        seen(path + "/a", new InterProcessMutex(client, path + "/a").getParticipantNodes());
                        critical("exclusive", 1);
                    } finally {
                        m.release();
                    }
                    break;
                }
                case "nodes": {
                    byte[] data = id.getBytes(StandardCharsets.UTF_8);
                    PersistentTtlNode ttl = new PersistentTtlNode(client, path + "/ttl", 1500, data);
                    PersistentNode pn = new PersistentNode(client, CreateMode.EPHEMERAL_SEQUENTIAL, true,
                            path + "/p/member-", data);
                    ttl.start();
                    pn.start();
                    if (!ttl.waitForInitialCreate(30, TimeUnit.SECONDS)) violation("ttl node not created");
                    if (!pn.waitForInitialCreate(30, TimeUnit.SECONDS)) violation("persistent node not created");
                    System.out.println("CREATED");
                    System.out.flush();
                    long end = System.currentTimeMillis() + 60000;
                    while (!Files.exists(dir.resolve("stop")) && System.currentTimeMillis() < end) Thread.sleep(50);
                    ttl.close();
                    pn.close();
                    break;
                }
                case "group": {
                    group(path);
                    break;
                }
                case "discover": {
                    discover(path);
                    break;
                }
                default:
                    throw new IllegalArgumentException(kind);
            }
        }
        System.out.println("DONE");
        System.out.flush();
        client.close();
        System.exit(0);
    }

    /** The `group` kind (see the header). */
    static void group(String path) throws Exception {
        GroupMember g = new GroupMember(client, path, id, "java-data".getBytes(StandardCharsets.UTF_8));
        g.start();
        long end = System.currentTimeMillis() + 60000;
        String rust = null;
        while (rust == null && System.currentTimeMillis() < end) {
            Map<String, byte[]> members = g.getCurrentMembers();
            for (Map.Entry<String, byte[]> e : members.entrySet()) {
                if (e.getKey().startsWith("rs-")) {
                    rust = e.getKey();
                    String data = new String(e.getValue(), StandardCharsets.UTF_8);
                    if (!data.equals("rust-data")) violation("member data " + data);
                }
            }
            if (rust != null) {
                print(new ArrayList<>(new TreeSet<>(members.keySet())));
                Files.write(dir.resolve("seen"), new byte[0]);
            } else Thread.sleep(50);
        }
        if (rust == null) violation("no Rust member seen");
        while (rust != null && g.getCurrentMembers().containsKey(rust) && System.currentTimeMillis() < end) Thread.sleep(50);
        if (rust != null && g.getCurrentMembers().containsKey(rust)) violation("the Rust member never left");
        g.close();
    }

    /** The `discover` kind (see the header). */
    static void discover(String base) throws Exception {
        ServiceInstance<String> me = ServiceInstance.<String>builder().name("svc").id(id)
                .address("java-host").port(1000).payload("from-java").build();
        ServiceDiscovery<String> d = ServiceDiscoveryBuilder.builder(String.class).client(client)
                .basePath(base).serializer(new JsonInstanceSerializer<>(String.class))
                .thisInstance(me).build();
        d.start();
        long end = System.currentTimeMillis() + 60000;
        ServiceInstance<String> rust = null;
        while (rust == null && System.currentTimeMillis() < end) {
            List<String> ids = new ArrayList<>();
            for (ServiceInstance<String> i : d.queryForInstances("svc")) {
                ids.add(i.getId());
                if (i.getId().startsWith("rs-")) rust = i;
            }
            if (rust != null) {
                print(ids);
                Files.write(dir.resolve("seen"), new byte[0]); // the Rust side may go now
            } else Thread.sleep(50);
        }
        if (rust == null) violation("no Rust instance seen");
        else {
            if (!"rust-host".equals(rust.getAddress())) violation("address " + rust.getAddress());
            if (rust.getPort() == null || rust.getPort() != 2000) violation("port " + rust.getPort());
            if (!"from-rust".equals(rust.getPayload())) violation("payload " + rust.getPayload());
            String rid = rust.getId();
            while (d.queryForInstance("svc", rid) != null && System.currentTimeMillis() < end) Thread.sleep(50);
        }
        d.close();
    }

    /** Prints the node data of `names` (children of `parent`, full paths or names). */
    static void seen(String parent, Collection<String> names) throws Exception {
        List<String> ids = new ArrayList<>();
        for (String n : names) {
            String p = n.startsWith("/") ? n : parent + "/" + n;
            try {
                ids.add(new String(client.getData().forPath(p), StandardCharsets.UTF_8));
            } catch (org.apache.zookeeper.KeeperException.NoNodeException e) {
                // gone meanwhile
            }
        }
        print(ids);
    }

    static void print(List<String> ids) {
        StringBuilder b = new StringBuilder("CONTENDERS [");
        for (int i = 0; i < ids.size(); i++) {
            if (i > 0) b.append(", ");
            b.append('"').append(ids.get(i)).append('"');
        }
        System.out.println(b.append(']'));
        System.out.flush();
    }

    static List<String> list() throws Exception {
        List<String> v = new ArrayList<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
            for (Path p : s) v.add(p.getFileName().toString());
        }
        return v;
    }

    static void violation(String what) {
        System.out.println("VIOLATION " + what);
        System.out.flush();
    }

    /** The marker-file checks of interop.rs's `critical`. */
    static void critical(String mode, int max) throws Exception {
        switch (mode) {
            case "exclusive": {
                Path marker = dir.resolve("w");
                try {
                    Files.createFile(marker);
                } catch (FileAlreadyExistsException e) {
                    violation("two exclusive holders (" + id + ")");
                    return;
                }
                for (String n : list()) if (n.startsWith("r.")) violation("reader inside while writer " + id + " holds");
                Thread.sleep(3);
                Files.delete(marker);
                break;
            }
            case "reader": {
                Path marker = dir.resolve("r." + id);
                Files.write(marker, new byte[0]);
                if (Files.exists(dir.resolve("w"))) violation("writer inside while reader " + id + " holds");
                Thread.sleep(3);
                Files.delete(marker);
                break;
            }
            default: {
                Path marker = dir.resolve("s." + id);
                Files.write(marker, new byte[0]);
                int n = 0;
                for (String x : list()) if (x.startsWith("s.")) n++;
                if (n > max) violation(n + " semaphore holders (" + id + ")");
                Thread.sleep(3);
                Files.delete(marker);
            }
        }
    }
}
