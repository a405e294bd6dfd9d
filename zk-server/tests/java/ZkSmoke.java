// A smoke run of ZooKeeper's own Java client (org.apache.zookeeper.ZooKeeper), run by
// zk-server/tests/java.rs against real ZooKeeper 3.8 and against zk-server: both runs must
// print the same lines. Usage: java ZkSmoke host:port/chroot (the chroot must exist).
//
// Nothing printed depends on the server's own numbers (session ids, zxids, times): Stats show
// versions, counts and whether the owner is this session. Watch events are printed at a
// barrier: an async exists() whose callback runs on the client's event thread after every
// event the server sent before its reply, so a drain shows exactly what the steps before it
// caused, in the order the client delivered it.

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class ZkSmoke {
    static final String BARRIER = "--barrier--";

    /// A client with its own event queue; drop() ends its connection without closing the
    /// session (ClientCnxn.disconnect, reachable from a subclass), as a crashed process would.
    static final class Client extends ZooKeeper {
        final String name;
        final BlockingQueue<String> events;

        Client(String hosts, String name, BlockingQueue<String> events, Watcher w)
                throws Exception {
            super(hosts, 10000, w);
            this.name = name;
            this.events = events;
        }

        Client(String hosts, String name, BlockingQueue<String> events, Watcher w, long sid,
                byte[] passwd) throws Exception {
            super(hosts, 10000, w, sid, passwd);
            this.name = name;
            this.events = events;
        }

        void drop() {
            cnxn.disconnect();
        }

        Watcher watcher(String what) {
            return e -> events.add(name + " (" + what + "): " + e.getType() + " " + e.getPath()
                    + " " + e.getState());
        }
    }

    static Client connect(String hosts, String name, long sid, byte[] passwd) throws Exception {
        BlockingQueue<String> q = new LinkedBlockingQueue<>();
        CountDownLatch up = new CountDownLatch(1);
        Watcher w = e -> {
            q.add(name + " (default): " + e.getType() + " " + e.getPath() + " " + e.getState());
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                up.countDown();
            }
        };
        Client c = sid == 0 ? new Client(hosts, name, q, w)
                : new Client(hosts, name, q, w, sid, passwd);
        if (!up.await(60, TimeUnit.SECONDS)) {
            throw new IllegalStateException(name + ": not connected after 60 s");
        }
        return c;
    }

    static void out(String line) {
        System.out.println(line);
        System.out.flush();
    }

    /// Prints every event the client received up to now (see the file's comment).
    static void drain(Client c, boolean sorted) throws Exception {
        c.exists("/", false, (rc, path, ctx, stat) -> c.events.add(BARRIER), null);
        List<String> got = new ArrayList<>();
        while (true) {
            String e = c.events.poll(60, TimeUnit.SECONDS);
            if (e == null) {
                throw new IllegalStateException(c.name + ": no barrier after 60 s");
            }
            if (e.equals(BARRIER)) {
                break;
            }
            got.add(e);
        }
        if (sorted) {
            Collections.sort(got);
        } else {
            // one event goes to each of the client's watchers for it in hash-set order: sort
            // each run of lines for the same event ("...: Type path State")
            for (int i = 0; i < got.size();) {
                int j = i + 1;
                while (j < got.size() && event(got.get(j)).equals(event(got.get(i)))) {
                    j++;
                }
                Collections.sort(got.subList(i, j));
                i = j;
            }
        }
        for (String e : got) {
            out("  event " + e);
        }
    }

    static String event(String line) {
        return line.substring(line.indexOf("): ") + 3);
    }

    static String stat(Client c, Stat s) {
        if (s == null) {
            return "none";
        }
        String owner = s.getEphemeralOwner() == 0 ? "0"
                : s.getEphemeralOwner() == c.getSessionId() ? "mine" : "other";
        return "[v" + s.getVersion() + " cv" + s.getCversion() + " av" + s.getAversion() + " dl"
                + s.getDataLength() + " nc" + s.getNumChildren() + " eo" + owner + "]";
    }

    static String data(byte[] d) {
        return d == null ? "null" : "\"" + new String(d) + "\"";
    }

    static void create(Client c, String path, String data, CreateMode mode) throws Exception {
        try {
            out(c.name + " create " + path + " " + mode + " -> "
                    + c.create(path, data.getBytes(), Ids.OPEN_ACL_UNSAFE, mode));
        } catch (KeeperException e) {
            out(c.name + " create " + path + " " + mode + " -> " + e.code());
        }
    }

    static String result(Client c, OpResult r) {
        if (r instanceof OpResult.CreateResult) {
            return "create " + ((OpResult.CreateResult) r).getPath();
        } else if (r instanceof OpResult.SetDataResult) {
            return "setData " + stat(c, ((OpResult.SetDataResult) r).getStat());
        } else if (r instanceof OpResult.DeleteResult) {
            return "delete";
        } else if (r instanceof OpResult.CheckResult) {
            return "check";
        } else if (r instanceof OpResult.ErrorResult) {
            return "error " + KeeperException.Code.get(((OpResult.ErrorResult) r).getErr());
        }
        return r.getClass().getSimpleName();
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        Client s1 = connect(hosts, "s1", 0, null);
        out("s1 connected, timeout " + s1.getSessionTimeout());
        drain(s1, false);

        // create modes
        create(s1, "/p", "d", CreateMode.PERSISTENT);
        create(s1, "/p/e", "e", CreateMode.EPHEMERAL);
        create(s1, "/p/s-", "", CreateMode.PERSISTENT_SEQUENTIAL);
        create(s1, "/p/s-", "", CreateMode.PERSISTENT_SEQUENTIAL);
        create(s1, "/p/es-", "", CreateMode.EPHEMERAL_SEQUENTIAL);
        create(s1, "/p", "", CreateMode.PERSISTENT);
        create(s1, "/p/e/child", "", CreateMode.PERSISTENT);
        create(s1, "/missing/x", "", CreateMode.PERSISTENT);
        Stat st = new Stat();
        List<String> children = s1.getChildren("/p", false, st);
        Collections.sort(children);
        out("s1 getChildren /p -> " + children + " " + stat(s1, st));
        out("s1 exists /p/e -> " + stat(s1, s1.exists("/p/e", false)));

        // one-shot watches of another session, and what fires them
        Client s2 = connect(hosts, "s2", 0, null);
        drain(s2, false);
        Stat st2 = new Stat();
        out("s2 getData /p -> " + data(s2.getData("/p", s2.watcher("data /p"), st2)) + " "
                + stat(s2, st2));
        out("s2 exists /q -> " + stat(s2, s2.exists("/q", s2.watcher("exists /q"))));
        out("s2 getChildren /p -> " + s2.getChildren("/p", s2.watcher("children /p")).size());
        out("s2 getData /p (default watcher) -> " + data(s2.getData("/p", true, null)));
        // on the chroot's root, not on /p, whose one-shot child watch it would replace (3.8.0
        // keeps one mode per connection and path; the s3 section below shows that)
        s2.addWatch("/", s2.watcher("recursive /"), AddWatchMode.PERSISTENT_RECURSIVE);
        out("s2 addWatch / PERSISTENT_RECURSIVE");
        out("s1 setData /p v0 -> " + stat(s1, s1.setData("/p", "x".getBytes(), 0)));
        try {
            s1.setData("/p", "y".getBytes(), 0);
        } catch (KeeperException e) {
            out("s1 setData /p v0 -> " + e.code());
        }
        drain(s2, false);
        out("s1 setData /p -> " + stat(s1, s1.setData("/p", "z".getBytes(), -1)));
        create(s1, "/q", "", CreateMode.PERSISTENT);
        create(s1, "/p/k", "", CreateMode.PERSISTENT);
        s1.delete("/p/k", -1);
        out("s1 delete /p/k");
        drain(s2, false);
        out("s2 getData /p -> " + data(s2.getData("/p", false, null)));

        // one watch mode per (connection, path) in ZooKeeper 3.8.0 (before ZOOKEEPER-4466):
        // a recursive watch replaces a one-shot child watch on the same path in the child
        // table, and a one-shot read replaces a persistent watch in the data table
        Client s3 = connect(hosts, "s3", 0, null);
        drain(s3, false);
        create(s1, "/w", "", CreateMode.PERSISTENT);
        create(s1, "/v", "", CreateMode.PERSISTENT);
        out("s3 getChildren /w -> " + s3.getChildren("/w", s3.watcher("children /w")));
        s3.addWatch("/w", s3.watcher("recursive /w"), AddWatchMode.PERSISTENT_RECURSIVE);
        out("s3 addWatch /w PERSISTENT_RECURSIVE");
        s3.addWatch("/v", s3.watcher("persistent /v"), AddWatchMode.PERSISTENT);
        out("s3 addWatch /v PERSISTENT");
        out("s3 getData /v -> " + data(s3.getData("/v", s3.watcher("data /v"), null)));
        create(s1, "/w/a", "", CreateMode.PERSISTENT);
        out("s1 setData /v -> " + stat(s1, s1.setData("/v", "1".getBytes(), -1)));
        out("s1 setData /v -> " + stat(s1, s1.setData("/v", "2".getBytes(), -1)));
        out("s1 setData /w -> " + stat(s1, s1.setData("/w", "3".getBytes(), -1)));
        drain(s3, false);
        s3.close();

        // multi: success, then a failing op with the per-op results
        List<OpResult> rs = s1.multi(List.of(
                Op.create("/m", "a".getBytes(), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.create("/m/s-", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL),
                Op.setData("/m", "b".getBytes(), 0),
                Op.check("/m", 1)));
        for (OpResult r : rs) {
            out("s1 multi ok: " + result(s1, r));
        }
        try {
            s1.multi(List.of(
                    Op.create("/m/c", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                    Op.setData("/m", "c".getBytes(), 7),
                    Op.delete("/m", -1)));
            out("s1 multi failing: succeeded");
        } catch (KeeperException e) {
            out("s1 multi failing -> " + e.code() + " path " + e.getPath());
            for (OpResult r : e.getResults()) {
                out("s1 multi failing: " + result(s1, r));
            }
        }
        out("s1 exists /m/c -> " + stat(s1, s1.exists("/m/c", false)));
        Stat mst = new Stat();
        out("s1 getData /m -> " + data(s1.getData("/m", false, mst)) + " " + stat(s1, mst));
        out("s1 getData /m/s-0000000000 -> " + data(s1.getData("/m/s-0000000000", false, null)));

        // session re-attach: s1's connection ends without closeSession; a second ZooKeeper
        // object takes the session over with its id and password and owns its ephemerals
        long sid = s1.getSessionId();
        byte[] passwd = s1.getSessionPasswd();
        s1.drop();
        Client s1b = connect(hosts, "s1b", sid, passwd);
        out("s1b same session: " + (s1b.getSessionId() == sid) + ", timeout "
                + s1b.getSessionTimeout());
        out("s1b exists /p/e -> " + stat(s1b, s1b.exists("/p/e", s1b.watcher("own /p/e"))));
        List<String> mine = new ArrayList<>();
        for (String e : s1b.getEphemerals()) {
            mine.add(e.substring(e.indexOf("/p/")));
        }
        Collections.sort(mine);
        out("s1b getEphemerals -> " + mine);
        drain(s1b, false);

        // ephemerals gone after close, with the events to the other session's watches
        out("s2 exists /p/e -> " + stat(s2, s2.exists("/p/e", s2.watcher("exists /p/e"))));
        out("s2 getChildren /p -> " + s2.getChildren("/p", s2.watcher("children /p")).size());
        s1b.close();
        out("s1b closed");
        // what the closing session itself saw, up to the client's own Closed event
        List<String> own = new ArrayList<>();
        while (true) {
            String e = s1b.events.poll(60, TimeUnit.SECONDS);
            if (e == null) {
                throw new IllegalStateException("s1b: no Closed event after 60 s");
            }
            own.add(e);
            if (e.endsWith(" Closed")) {
                break;
            }
        }
        for (String e : own) {
            out("  event " + e);
        }
        drain(s2, true);
        List<String> left = s2.getChildren("/p", false);
        Collections.sort(left);
        out("s2 getChildren /p -> " + left);
        out("s2 exists /p/e -> " + stat(s2, s2.exists("/p/e", false)));
        s2.close();
        out("done");
    }
}
