// The Java client's side of bench/compare.sh: zk-bench's get / set / exists / create-delete on
// org.apache.zookeeper.ZooKeeper's asynchronous API (callbacks), with zk-bench's parameters and
// JSON fields (one object per line), so bench/table.py and bench/plots.py read its lines
// unchanged.
//
//   javac -cp ZK_JARS -d OUT bench/java/ZkJavaBench.java
//   java -cp OUT:ZK_JARS ZkJavaBench --hosts H [--server-pid P] [--label L] SCENARIO \
//       [--ops N] [--concurrency C] [--size B] [--sessions S] [--warmup N] [--nodes K]
//
// On each of S sessions C workers each keep one request in flight: the callback of a reply
// (run on the session's event thread) records its latency and issues the worker's next
// request, so C requests are pipelined on every session's connection (kazoo's and zk-bench's
// closed loop). Before the measured requests, --warmup requests of the same scenario run on
// the same sessions, not measured: the JIT warm-up (default 20,000: enough for C2 to compile
// the request path at the default load; raise it for longer runs).
//
// CPU: "cpu_us_per_op" is the JVM process's CPU time over the measured window
// (com.sun.management.OperatingSystemMXBean.getProcessCpuTime: all threads, user + system,
// the JIT compiler and GC threads included), divided by the requests. The user / system split
// is from /proc/self/stat (clock ticks, 10 ms resolution); "ctx_switches_per_op" sums
// voluntary + involuntary switches over the threads alive at both ends of the window
// (/proc/self/task/*/status). Latencies: exact microsecond samples, nearest rank (zk-bench's
// HDR histogram gives the same within 0.1 %). Server CPU: /proc/PID/stat of --server-pid.
//
// lock-handoff is ZkJavaLockBench.java (Apache's WriteLock recipe, from zookeeper-recipes-lock,
// which the client jar does not contain).

import com.sun.management.OperatingSystemMXBean;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.zookeeper.AsyncCallback;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;

public final class ZkJavaBench {
    static String hosts;
    static Integer serverPid;
    static String label;
    static String scenario;
    static long ops = 20000;
    static int concurrency = 64;
    static int size = 100;
    static int sessions = 1;
    static long warmup = 20000;
    static int nodes = 16;

    public static void main(String[] argv) throws Exception {
        try {
            parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("ZkJavaBench: " + e.getMessage());
            System.err.println("usage: ZkJavaBench --hosts H [--server-pid P] [--label L] "
                    + "get|set|exists|create-delete [--ops N] [--concurrency C] [--size B] "
                    + "[--sessions S] [--warmup N] [--nodes K]");
            System.exit(2);
        }
        Map<String, Object> out;
        try {
            out = runOps();
        } catch (Exception e) {
            System.err.println("ZkJavaBench: " + scenario + " failed: " + e);
            System.exit(1);
            return;
        }
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("client", "java");
        line.put("threads", ManagementFactory.getThreadMXBean().getThreadCount());
        if (label != null) line.put("label", label);
        line.putAll(out);
        System.out.println(json(line));
        System.out.flush();
        System.exit(0);
    }

    static void parse(String[] a) {
        for (int i = 0; i < a.length; i++) {
            String arg = a[i];
            if (!arg.startsWith("--")) {
                if (scenario != null) throw new IllegalArgumentException("two scenarios");
                scenario = arg;
                continue;
            }
            String name = arg, v;
            int eq = arg.indexOf('=');
            if (eq > 0) {
                name = arg.substring(0, eq);
                v = arg.substring(eq + 1);
            } else {
                if (i + 1 >= a.length) throw new IllegalArgumentException(name + " needs a value");
                v = a[++i];
            }
            switch (name) {
                case "--hosts": hosts = v; break;
                case "--server-pid": serverPid = Integer.parseInt(v); break;
                case "--label": label = v; break;
                case "--ops": ops = Long.parseLong(v); break;
                case "--concurrency": concurrency = Integer.parseInt(v); break;
                case "--size": size = Integer.parseInt(v); break;
                case "--sessions": sessions = Integer.parseInt(v); break;
                case "--warmup": warmup = Long.parseLong(v); break;
                case "--nodes": nodes = Integer.parseInt(v); break;
                case "--threads": break; // zk-bench's runtime option: nothing to set here
                default: throw new IllegalArgumentException("unknown option " + name);
            }
        }
        if (hosts == null) throw new IllegalArgumentException("--hosts is required");
        if (scenario == null || !Arrays.asList("get", "set", "exists", "create-delete").contains(scenario))
            throw new IllegalArgumentException("unknown or missing scenario " + scenario);
        if (concurrency < 1 || sessions < 1 || nodes < 1)
            throw new IllegalArgumentException("--concurrency, --sessions, --nodes >= 1");
    }

    // ------------------------------------------------------------------ sessions

    static ZooKeeper connect() throws IOException, InterruptedException {
        CountDownLatch up = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(hosts, 20000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) up.countDown();
        });
        if (!up.await(30, TimeUnit.SECONDS)) {
            zk.close();
            throw new IOException("no session with " + hosts + " within 30 s");
        }
        return zk;
    }

    static void ensurePath(ZooKeeper zk, String path) throws KeeperException, InterruptedException {
        StringBuilder at = new StringBuilder();
        for (String part : path.split("/")) {
            if (part.isEmpty()) continue;
            at.append('/').append(part);
            try {
                zk.create(at.toString(), new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            } catch (KeeperException.NodeExistsException e) {
                // there already
            }
        }
    }

    static void deleteRecursive(ZooKeeper zk, String path) throws KeeperException, InterruptedException {
        for (String child : zk.getChildren(path, false)) deleteRecursive(zk, path + "/" + child);
        try {
            zk.delete(path, -1);
        } catch (KeeperException.NoNodeException e) {
            // gone already
        }
    }

    // ------------------------------------------------------------------ the closed loop

    /** One run of `total` requests with `concurrency` in flight per session. */
    static final class Drive {
        final List<ZooKeeper> zks;
        final long total;
        final int step;
        final String tag;
        final String base;
        final String[] paths;
        final byte[] data;
        final AtomicLong next = new AtomicLong();
        final AtomicInteger active = new AtomicInteger();
        final AtomicReference<Throwable> error = new AtomicReference<>();
        final CountDownLatch finished = new CountDownLatch(1);
        final long[] latencies; // µs, one slot per request (index i)
        final AtomicInteger recorded = new AtomicInteger();

        Drive(List<ZooKeeper> zks, long total, String tag, String base, String[] paths, byte[] data) {
            this.zks = zks;
            this.total = total;
            this.step = scenario.equals("create-delete") ? 2 : 1;
            this.tag = tag;
            this.base = base;
            this.paths = paths;
            this.data = data;
            this.latencies = new long[(int) total];
        }

        long[] run() throws Exception {
            int workers = zks.size() * concurrency;
            active.set(workers);
            for (int s = 0; s < zks.size(); s++)
                for (int w = 0; w < concurrency; w++) issue(zks.get(s), s, w);
            finished.await();
            Throwable e = error.get();
            if (e != null) throw new Exception(e);
            return Arrays.copyOf(latencies, recorded.get());
        }

        void record(long t0) {
            latencies[recorded.getAndIncrement()] = (System.nanoTime() - t0) / 1000;
        }

        void fail(int rc, String path) {
            error.compareAndSet(null, KeeperException.create(KeeperException.Code.get(rc), path));
            finished.countDown();
        }

        /** The worker's next request, or its end. */
        void issue(ZooKeeper zk, int s, int w) {
            long i = next.getAndAdd(step);
            if (i + step > total || error.get() != null) {
                if (active.decrementAndGet() == 0) finished.countDown();
                return;
            }
            String path = paths[(int) (i % paths.length)];
            long t0 = System.nanoTime();
            switch (scenario) {
                case "get":
                    zk.getData(path, false, (AsyncCallback.DataCallback) (rc, p, ctx, d, stat) -> {
                        if (rc != 0) { fail(rc, p); return; }
                        record(t0);
                        issue(zk, s, w);
                    }, null);
                    break;
                case "set":
                    zk.setData(path, data, -1, (AsyncCallback.StatCallback) (rc, p, ctx, stat) -> {
                        if (rc != 0) { fail(rc, p); return; }
                        record(t0);
                        issue(zk, s, w);
                    }, null);
                    break;
                case "exists":
                    zk.exists(path, false, (AsyncCallback.StatCallback) (rc, p, ctx, stat) -> {
                        if (rc != 0 && rc != KeeperException.Code.NONODE.intValue()) { fail(rc, p); return; }
                        record(t0);
                        issue(zk, s, w);
                    }, null);
                    break;
                default: { // create-delete: two requests, two samples
                    String node = base + "/" + tag + s + "-" + w + "-" + i;
                    zk.create(node, data, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT,
                            (AsyncCallback.StringCallback) (rc, p, ctx, name) -> {
                                if (rc != 0) { fail(rc, p); return; }
                                long t1 = System.nanoTime();
                                latencies[recorded.getAndIncrement()] = (t1 - t0) / 1000;
                                zk.delete(node, -1, (AsyncCallback.VoidCallback) (rc2, p2, ctx2) -> {
                                    if (rc2 != 0) { fail(rc2, p2); return; }
                                    record(t1);
                                    issue(zk, s, w);
                                }, null);
                            }, null);
                }
            }
        }
    }

    static Map<String, Object> runOps() throws Exception {
        List<ZooKeeper> zks = new ArrayList<>();
        for (int i = 0; i < sessions; i++) zks.add(connect());
        String base = String.format("/zk-bench/%s-java-%d-%d", scenario, ProcessHandle.current().pid(),
                System.nanoTime() % 1_000_000_000_000L);
        ensurePath(zks.get(0), base);
        byte[] data = new byte[size];
        Arrays.fill(data, (byte) 'x');
        String[] paths = new String[nodes];
        for (int i = 0; i < nodes; i++) {
            paths[i] = base + "/n" + i;
            if (!scenario.equals("create-delete"))
                zks.get(0).create(paths[i], data, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        }
        if (warmup > 0) new Drive(zks, warmup, "w", base, paths, data).run();

        OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        Drive d = new Drive(zks, ops, "m", base, paths, data);
        Double server0 = processCpu(serverPid);
        long[] ut0 = userSysTicks();
        long sw0 = contextSwitches();
        long cpu0 = os.getProcessCpuTime();
        long t0 = System.nanoTime();
        long[] lat = d.run();
        double secs = (System.nanoTime() - t0) / 1e9;
        long cpu1 = os.getProcessCpuTime();
        long sw1 = contextSwitches();
        long[] ut1 = userSysTicks();

        Map<String, Object> o = new LinkedHashMap<>();
        o.put("scenario", scenario);
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("concurrency", concurrency);
        params.put("nodes", nodes);
        params.put("ops", ops);
        params.put("sessions", sessions);
        params.put("size", size);
        o.put("params", params);
        long n = lat.length;
        double cpu = (cpu1 - cpu0) / 1e9;
        o.put("ops", n);
        o.put("seconds", r3(secs));
        o.put("ops_per_sec", r3(secs > 0 ? n / secs : 0));
        o.put("cpu_seconds", r3(cpu));
        o.put("cpu_us_per_op", r3(perOp(cpu * 1e6, n)));
        o.put("cpu_user_us_per_op", r3(perOp((ut1[0] - ut0[0]) * 1e6 / HZ, n)));
        o.put("cpu_sys_us_per_op", r3(perOp((ut1[1] - ut0[1]) * 1e6 / HZ, n)));
        o.put("ctx_switches_per_op", r3(perOp(sw1 - sw0, n)));
        Arrays.sort(lat);
        o.put("p50_us", rank(lat, 0.50));
        o.put("p90_us", rank(lat, 0.90));
        o.put("p99_us", rank(lat, 0.99));
        o.put("p999_us", rank(lat, 0.999));
        o.put("max_us", n > 0 ? lat[lat.length - 1] : null);
        Double server1 = processCpu(serverPid);
        if (server0 != null && server1 != null) {
            o.put("server_cpu_seconds", r3(server1 - server0));
            o.put("server_cpu_us_per_op", n > 0 ? r3((server1 - server0) * 1e6 / n) : null);
        } else {
            o.put("server_cpu_seconds", null);
            o.put("server_cpu_us_per_op", null);
        }
        o.put("cpu_source", "jvm process cpu time");
        o.put("warmup_ops", warmup);
        o.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));

        deleteRecursive(zks.get(0), base);
        for (ZooKeeper zk : zks) zk.close();
        return o;
    }

    // ------------------------------------------------------------------ measures

    /** Linux's USER_HZ, the unit of /proc's utime and stime (100 on every Linux ABI). */
    static final double HZ = 100.0;

    static double perOp(double x, long n) {
        return n > 0 ? x / n : 0.0;
    }

    /** Nearest rank: the ceil(q * n)-th smallest sample (zk-bench's and kazoo_bench's). */
    static Long rank(long[] sorted, double q) {
        int n = sorted.length;
        if (n == 0) return null;
        int i = (int) Math.ceil(q * n);
        i = Math.min(Math.max(i, 1), n);
        return sorted[i - 1];
    }

    /** utime, stime of this process in clock ticks (dead threads included). */
    static long[] userSysTicks() {
        String[] f = statFields("/proc/self/stat");
        if (f == null) return new long[] {0, 0};
        return new long[] {Long.parseLong(f[11]), Long.parseLong(f[12])};
    }

    /** utime + stime of process `pid` in seconds. */
    static Double processCpu(Integer pid) {
        if (pid == null) return null;
        String[] f = statFields("/proc/" + pid + "/stat");
        if (f == null) return null;
        return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / HZ;
    }

    /** The fields of a /proc stat file after the command name. */
    static String[] statFields(String file) {
        try {
            String s = new String(Files.readAllBytes(Paths.get(file)));
            return s.substring(s.lastIndexOf(')') + 2).trim().split("\\s+");
        } catch (IOException e) {
            return null;
        }
    }

    /** Voluntary + involuntary context switches summed over this process's live threads. */
    static long contextSwitches() {
        long sum = 0;
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Paths.get("/proc/self/task"))) {
            for (Path t : tasks) {
                try {
                    for (String l : Files.readAllLines(t.resolve("status"))) {
                        if (l.startsWith("voluntary_ctxt_switches:") || l.startsWith("nonvoluntary_ctxt_switches:"))
                            sum += Long.parseLong(l.substring(l.indexOf(':') + 1).trim());
                    }
                } catch (IOException e) {
                    // the thread ended meanwhile
                }
            }
        } catch (IOException e) {
            return 0;
        }
        return sum;
    }

    static Double r3(double x) {
        if (Double.isNaN(x) || Double.isInfinite(x)) return null;
        return Math.round(x * 1000.0) / 1000.0 + 0.0;
    }

    // ------------------------------------------------------------------ JSON

    @SuppressWarnings("unchecked")
    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof String) return quote((String) v);
        if (v instanceof Double) {
            double d = (Double) v;
            if (d == Math.rint(d) && Math.abs(d) < 1e15) return String.format(Locale.ROOT, "%.1f", d);
            return Double.toString(d);
        }
        if (v instanceof Number || v instanceof Boolean) return v.toString();
        if (v instanceof Map) {
            StringBuilder b = new StringBuilder("{");
            for (Map.Entry<String, Object> e : ((Map<String, Object>) v).entrySet()) {
                if (b.length() > 1) b.append(',');
                b.append(quote(e.getKey())).append(':').append(json(e.getValue()));
            }
            return b.append('}').toString();
        }
        throw new IllegalArgumentException("no JSON for " + v.getClass());
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
