// lock-handoff for the Java client (bench/compare.sh): N sessions queue on one lock through
// Apache ZooKeeper's own lock recipe, org.apache.zookeeper.recipes.lock.WriteLock (the
// zookeeper-recipes-lock jar, Debian's libzookeeper-java ships it; an Apache release's lib/
// does not, and compare.sh then leaves this scenario out for Java). Same parameters and JSON
// fields as zk-bench's lock-handoff, one line.
//
//   java -cp OUT:ZK_JARS:zookeeper-recipes-lock.jar ZkJavaLockBench --hosts H \
//       [--server-pid P] [--label L] lock-handoff [--contenders N] [--rounds M]
//
// WriteLock is written on the client's synchronous API: lock() creates an ephemeral sequential
// node, lists the children and sets an exists watch on its predecessor; when that watch fires
// it runs lock() again on the session's event thread and calls LockListener.lockAcquired()
// once it owns the lock. Each contender is a thread with its own session and WriteLock; it
// acquires (lock(), then waits for lockAcquired()) and releases (unlock(): a synchronous
// delete) M times. The first holder keeps the lock until every other contender is queued and
// watching (the server's `wchp`), as in zk-bench. The handoff latency runs from the start of
// the holder's unlock() to the next contender's lockAcquired(). CPU as ZkJavaBench's (the JVM
// process's CPU time). The herd figures zk-bench and kazoo take from their sockets are not
// taken (WriteLock's watcher is private); the server's watchers per lock node are.

import com.sun.management.OperatingSystemMXBean;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.recipes.lock.LockListener;
import org.apache.zookeeper.recipes.lock.WriteLock;

public final class ZkJavaLockBench {
    static int contenders = 100;
    static int rounds = 5;

    public static void main(String[] argv) throws Exception {
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < argv.length; i++) {
            if (argv[i].equals("--contenders") && i + 1 < argv.length) contenders = Integer.parseInt(argv[++i]);
            else if (argv[i].equals("--rounds") && i + 1 < argv.length) rounds = Integer.parseInt(argv[++i]);
            else if (argv[i].equals("--warmup") && i + 1 < argv.length) i++; // compare.sh's, for the ops scenarios
            else if (argv[i].equals("lock-handoff")) continue;
            else rest.add(argv[i]);
        }
        rest.add("get"); // ZkJavaBench's parser wants an ops scenario; only its common options count
        try {
            ZkJavaBench.parse(rest.toArray(new String[0]));
            if (contenders < 2 || rounds < 1) throw new IllegalArgumentException("--contenders >= 2, --rounds >= 1");
        } catch (IllegalArgumentException e) {
            System.err.println("ZkJavaLockBench: " + e.getMessage());
            System.err.println("usage: ZkJavaLockBench --hosts H [--server-pid P] [--label L] lock-handoff "
                    + "[--contenders N] [--rounds M]");
            System.exit(2);
        }
        Map<String, Object> out;
        try {
            out = run();
        } catch (Throwable e) {
            System.err.println("ZkJavaLockBench: lock-handoff failed: " + e);
            System.exit(1);
            return;
        }
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("client", "java");
        line.put("threads", ManagementFactory.getThreadMXBean().getThreadCount());
        if (ZkJavaBench.label != null) line.put("label", ZkJavaBench.label);
        line.putAll(out);
        System.out.println(ZkJavaBench.json(line));
        System.out.flush();
        System.exit(0);
    }

    /** One WriteLock with a way to wait for lockAcquired(). */
    static final class Contender implements LockListener {
        final WriteLock lock;
        final Semaphore acquired = new Semaphore(0);

        Contender(ZooKeeper zk, String dir, byte[] data) {
            lock = new WriteLock(zk, dir, ZooDefs.Ids.OPEN_ACL_UNSAFE, this);
        }

        public void lockAcquired() {
            acquired.release();
        }

        public void lockReleased() {}

        void acquire() throws Exception {
            lock.lock();
            acquired.acquire();
        }
    }

    static Map<String, Object> run() throws Exception {
        int n = contenders;
        List<ZooKeeper> zks = new ArrayList<>();
        for (int i = 0; i < n; i++) zks.add(ZkJavaBench.connect());
        String base = String.format("/zk-bench/lock-handoff-java-%d-%d", ProcessHandle.current().pid(),
                System.nanoTime() % 1_000_000_000_000L);
        String dir = base + "/lock";
        ZkJavaBench.ensurePath(zks.get(0), dir);

        long[] rtt = new long[200];
        for (int i = 0; i < rtt.length; i++) {
            long t = System.nanoTime();
            zks.get(0).exists(dir, false);
            rtt[i] = (System.nanoTime() - t) / 1000;
        }
        Arrays.sort(rtt);
        long rttP50 = ZkJavaBench.rank(rtt, 0.5);

        long epoch = System.nanoTime();
        AtomicLong lastRelease = new AtomicLong(); // ns since epoch, 0: none yet
        List<Long> latencies = new ArrayList<>();
        List<Long> acquisitions = new ArrayList<>();
        CountDownLatch held = new CountDownLatch(1);
        CountDownLatch go = new CountDownLatch(1);
        AtomicReference<Throwable> error = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            final int me = i;
            final Contender c = new Contender(zks.get(i), dir, new byte[0]);
            Thread t = new Thread(() -> {
                try {
                    for (int r = 0; r < rounds; r++) {
                        if (r == 0) {
                            if (me == 0) {
                                c.acquire();
                                held.countDown();
                                go.await();
                                lastRelease.set(Math.max(System.nanoTime() - epoch, 1));
                                c.lock.unlock();
                                continue;
                            }
                            held.await();
                        }
                        c.acquire();
                        long now = System.nanoTime();
                        synchronized (latencies) {
                            long prev = lastRelease.get();
                            if (prev != 0) latencies.add((now - epoch - prev) / 1000);
                            acquisitions.add(now);
                        }
                        lastRelease.set(Math.max(System.nanoTime() - epoch, 1));
                        c.lock.unlock();
                    }
                } catch (Throwable e) {
                    error.compareAndSet(null, e);
                    held.countDown();
                }
            }, "contender-" + i);
            t.setDaemon(true);
            threads.add(t);
            t.start();
        }
        held.await();
        // everyone queued and watching: N nodes, N-1 watches on predecessors
        long until = System.currentTimeMillis() + 120_000;
        Map<String, Integer> watchers;
        while (true) {
            int children = zks.get(0).getChildren(dir, false).size();
            watchers = watchersUnder(dir + "/");
            int total = watchers.values().stream().mapToInt(Integer::intValue).sum();
            if (error.get() != null) throw new Exception(error.get());
            if (children == n && total >= n - 1) break;
            if (System.currentTimeMillis() > until)
                throw new Exception(n + " contenders did not queue within 120 s (" + children + " nodes)");
            Thread.sleep(20);
        }

        OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        Double server0 = ZkJavaBench.processCpu(ZkJavaBench.serverPid);
        long[] ut0 = ZkJavaBench.userSysTicks();
        long sw0 = ZkJavaBench.contextSwitches();
        long cpu0 = os.getProcessCpuTime();
        long goAt = System.nanoTime();
        go.countDown();
        for (Thread t : threads) t.join();
        long cpu1 = os.getProcessCpuTime();
        long sw1 = ZkJavaBench.contextSwitches();
        long[] ut1 = ZkJavaBench.userSysTicks();
        if (error.get() != null) throw new Exception(error.get());
        long handoffs = acquisitions.size();
        long last = acquisitions.stream().mapToLong(Long::longValue).max().orElse(goAt);
        double secs = (last - goAt) / 1e9;

        Map<String, Object> o = new LinkedHashMap<>();
        o.put("scenario", "lock-handoff");
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("contenders", n);
        params.put("rounds", rounds);
        o.put("params", params);
        double cpu = (cpu1 - cpu0) / 1e9;
        o.put("ops", handoffs);
        o.put("seconds", ZkJavaBench.r3(secs));
        o.put("ops_per_sec", ZkJavaBench.r3(secs > 0 ? handoffs / secs : 0));
        o.put("cpu_seconds", ZkJavaBench.r3(cpu));
        o.put("cpu_us_per_op", ZkJavaBench.r3(ZkJavaBench.perOp(cpu * 1e6, handoffs)));
        o.put("cpu_user_us_per_op", ZkJavaBench.r3(ZkJavaBench.perOp((ut1[0] - ut0[0]) * 1e6 / ZkJavaBench.HZ, handoffs)));
        o.put("cpu_sys_us_per_op", ZkJavaBench.r3(ZkJavaBench.perOp((ut1[1] - ut0[1]) * 1e6 / ZkJavaBench.HZ, handoffs)));
        o.put("ctx_switches_per_op", ZkJavaBench.r3(ZkJavaBench.perOp(sw1 - sw0, handoffs)));
        long[] lat = latencies.stream().mapToLong(Long::longValue).toArray();
        Arrays.sort(lat);
        o.put("p50_us", ZkJavaBench.rank(lat, 0.50));
        o.put("p90_us", ZkJavaBench.rank(lat, 0.90));
        o.put("p99_us", ZkJavaBench.rank(lat, 0.99));
        o.put("p999_us", ZkJavaBench.rank(lat, 0.999));
        o.put("max_us", lat.length > 0 ? lat[lat.length - 1] : null);
        Double server1 = ZkJavaBench.processCpu(ZkJavaBench.serverPid);
        if (server0 != null && server1 != null) {
            o.put("server_cpu_seconds", ZkJavaBench.r3(server1 - server0));
            o.put("server_cpu_us_per_op", handoffs > 0 ? ZkJavaBench.r3((server1 - server0) * 1e6 / handoffs) : null);
        } else {
            o.put("server_cpu_seconds", null);
            o.put("server_cpu_us_per_op", null);
        }
        o.put("releases", (long) n * rounds);
        o.put("server_max_watchers_per_node", watchers.values().stream().mapToInt(Integer::intValue).max().orElse(0));
        o.put("rtt_p50_us", rttP50);
        if (lat.length > 0) {
            o.put("handoff_p50_in_rtts", ZkJavaBench.r3((double) ZkJavaBench.rank(lat, 0.5) / Math.max(rttP50, 1)));
            o.put("handoff_p90_in_rtts", ZkJavaBench.r3((double) ZkJavaBench.rank(lat, 0.9) / Math.max(rttP50, 1)));
        }
        o.put("cpu_source", "jvm process cpu time");
        o.put("recipe", "org.apache.zookeeper.recipes.lock.WriteLock");
        o.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));

        ZkJavaBench.deleteRecursive(zks.get(0), base);
        for (ZooKeeper zk : zks) zk.close();
        return o;
    }

    /** `wchp` of the first server: sessions watching each node whose path starts with `prefix`. */
    static Map<String, Integer> watchersUnder(String prefix) throws Exception {
        String first = ZkJavaBench.hosts.split(",")[0].split("/")[0];
        int colon = first.lastIndexOf(':');
        String host = first.substring(0, colon);
        int port = Integer.parseInt(first.substring(colon + 1));
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(host, port), 10_000);
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            out.write("wchp".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            byte[] b = new byte[65536];
            for (int k; (k = in.read(b)) > 0; ) buf.write(b, 0, k);
        }
        Map<String, Integer> m = new HashMap<>();
        String cur = null;
        for (String line : buf.toString(StandardCharsets.US_ASCII).split("\n")) {
            if (!line.isEmpty() && Character.isWhitespace(line.charAt(0))) {
                if (cur != null && !line.trim().isEmpty()) m.merge(cur, 1, Integer::sum);
            } else {
                String p = line.trim();
                cur = p.startsWith(prefix) ? p : null;
            }
        }
        return m;
    }
}
