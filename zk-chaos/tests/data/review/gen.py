import json, sys
class H:
    def __init__(s, name):
        s.name=name; s.lines=[]; s.next=1
        s.lines.append(dict(kind="meta",id=0,t_us=1,client=-1,workload="harness",op="meta",args={"review":name}))
    def op(s, wl, client, session, op, args, t0, t1=None, outcome="ok", result=None, error=None, session_after=None):
        i=s.next; s.next+=1
        s.lines.append(dict(kind="invoke",id=i,t_us=t0,client=client,workload=wl,op=op,args=args,session=session))
        if t1 is not None:
            c=dict(kind="complete",id=i,t_us=t1,client=client,workload=wl,op=op,outcome=outcome,session=session if session_after is None else session_after)
            if result is not None: c["result"]=result
            if error is not None: c["error"]=error
            s.lines.append(c)
        return i
    def info(s, wl, client, op, t, args, session=0):
        i=s.next; s.next+=1
        s.lines.append(dict(kind="info",id=i,t_us=t,client=client,workload=wl,op=op,args=args,session=session))
    def write(s):
        s.lines.sort(key=lambda l:(l["t_us"],l["id"]))
        with open(s.name+".jsonl","w") as f:
            for l in s.lines: f.write(json.dumps(l)+"\n")

# 1. lock: two exclusive holders at once, proven by guard order + fenced ops; RMW windows disjoint
h=H("fn-lock-overlap-disjoint")
GA="/chaos/lock/lock/aaaaaaaa__lock__0000000003"; GB="/chaos/lock/lock/bbbbbbbb__lock__0000000005"
h.op("lock",0,10,"acquire",{"kind":"lock","timeout_ms":5000},100,200,result={"guard":GA})
h.op("lock",1,11,"acquire",{"kind":"lock","timeout_ms":5000},150,300,result={"guard":GB})
h.op("lock",1,11,"read",{"guard":GB},310,320,result={"value":0})
h.op("lock",1,11,"fenced-write",{"guard":GB,"value":1},330,400)
h.op("lock",1,11,"release",{"guard":GB},410,420)
h.op("lock",0,10,"read",{"guard":GA},500,510,result={"value":1})
h.op("lock",0,10,"fenced-write",{"guard":GA,"value":2},520,600)
h.op("lock",0,10,"release",{"guard":GA},610,620)
h.info("lock",-1,"final",10_000,{"counter":2})
h.write()

# 2. lock: fenced writes interleave (A's RMW window contains B's), distinct values
h=H("fn-lock-interleaved-distinct")
h.op("lock",0,10,"acquire",{"kind":"lock","timeout_ms":5000},100,200,result={"guard":GA})
h.op("lock",1,11,"acquire",{"kind":"lock","timeout_ms":5000},150,240,result={"guard":GB})
h.op("lock",0,10,"read",{"guard":GA},250,260,result={"value":0})
h.op("lock",0,10,"fenced-write",{"guard":GA,"value":1},300,500)   # applied ~310
h.op("lock",1,11,"read",{"guard":GB},320,330,result={"value":1})  # B, holding since 240, reads A's write
h.op("lock",1,11,"fenced-write",{"guard":GB,"value":2},340,400)
h.op("lock",1,11,"release",{"guard":GB},410,420)
h.op("lock",0,10,"release",{"guard":GA},510,520)
h.info("lock",-1,"final",10_000,{"counter":2})
h.write()

# 3. lock: a reader overlapped by a writer's applied fenced write before its first read
h=H("fn-lock-reader-overlapped")
GR="/chaos/lock/lock/rrrrrrrr__rlock__0000000003"; GW="/chaos/lock/lock/wwwwwwww__lock__0000000004"
h.op("lock",0,10,"acquire",{"kind":"read","timeout_ms":5000},100,200,result={"guard":GR})
h.op("lock",1,11,"acquire",{"kind":"write","timeout_ms":5000},150,220,result={"guard":GW})
h.op("lock",1,11,"read",{"guard":GW},230,240,result={"value":0})
h.op("lock",1,11,"fenced-write",{"guard":GW,"value":1},250,300)
h.op("lock",1,11,"release",{"guard":GW},310,320)
h.op("lock",0,10,"read",{"guard":GR},400,410,result={"value":1})
h.op("lock",0,10,"read",{"guard":GR},450,460,result={"value":1})
h.op("lock",0,10,"fenced-check",{"guard":GR,"r1":1,"r2":1},470,500)
h.op("lock",0,10,"release",{"guard":GR},510,520)
h.info("lock",-1,"final",10_000,{"counter":1})
h.write()

# 4. register: a read pairs a value with a version another write holds
h=H("fn-register-read-wrong-version")
h.info("register",-1,"init",50,{"value":"init"})
h.op("register",16,21,"write",{"key":"k0","value":"a"},100,200,result={"version":1})
h.op("register",17,22,"write",{"key":"k0","value":"b"},300,None)   # unknown, applied
h.op("register",18,23,"write",{"key":"k0","value":"c"},500,600,result={"version":3})
h.op("register",19,24,"read",{"key":"k0"},700,800,result={"value":"c","version":2})
h.info("register",-1,"final",10_000,{"keys":{"k0":{"value":"c","version":3}}})
h.write()

# 5. register: a read returns a value before its write was invoked
h=H("fn-register-read-from-future")
h.info("register",-1,"init",50,{"value":"init"})
h.op("register",19,24,"read",{"key":"k0"},100,200,result={"value":"x","version":1})
h.op("register",16,21,"write",{"key":"k0","value":"x"},300,400,result={"version":1})
h.info("register",-1,"final",10_000,{"keys":{"k0":{"value":"x","version":1}}})
h.write()

# 6. election: B elected while A's guard (lower) still existed and A still wrote
h=H("fn-election-overlap")
EA="/chaos/election/leader/aaaaaaaa__lock__0000000001"; EB="/chaos/election/leader/bbbbbbbb__lock__0000000002"
h.op("election",26,31,"campaign",{},100,200,result={"guard":EA})
h.op("election",26,31,"fenced-write",{"guard":EA},210,250,result={"version":1})
h.op("election",27,32,"campaign",{},150,400,result={"guard":EB})
h.op("election",26,31,"fenced-write",{"guard":EA},410,450,result={"version":2})
h.op("election",27,32,"fenced-write",{"guard":EB},420,460,result={"version":3})
h.op("election",26,31,"resign",{"guard":EA},600,700)
h.op("election",27,32,"resign",{"guard":EB},800,900)
h.write()

# 7. double barrier: both passed, nobody ever left
h=H("fn-double-barrier-nobody-leaves")
h.op("double-barrier",34,41,"enter",{"n":2,"round":0},100,300,result={"passed":True})
h.op("double-barrier",35,42,"enter",{"n":2,"round":0},110,310,result={"passed":True})
h.op("double-barrier",34,41,"leave",{"n":2,"round":0},400,5_400_000,result={"left":False})
h.op("double-barrier",35,42,"leave",{"n":2,"round":0},410,5_410_000,result={"left":False})
h.write()

# 8. watch: a persistent watcher got two change events for one set (then missed one across a disconnect)
h=H("fn-watch-persistent-duplicate")
h.op("watch",22,51,"add-watch",{"mode":"persistent","path":"/chaos/watch/data"},100,200)
h.op("watch",20,50,"set",{"value":"1"},300,400)
h.info("watch",22,"event",450,{"mode":"persistent","path":"/chaos/watch/data","type":"NodeDataChanged"},51)
h.info("watch",22,"event",460,{"mode":"persistent","path":"/chaos/watch/data","type":"NodeDataChanged"},51)
h.info("watch",22,"state",900,{"state":"SUSPENDED","generation":1,"member":None},51)
h.op("watch",20,50,"set",{"value":"2"},1000,1100)
h.info("watch",22,"state",1500,{"state":"CONNECTED","generation":2,"member":0},51)
h.info("watch",22,"watcher-done",5_000_000,{"mode":"persistent"},51)
h.info("watch",-1,"final",6_000_000,{"data":"2","children":0,"indices":[]})
h.write()

# 9. semaphore: a lease vanished under a live, connected session; its guard said "lost" only 9.5 s later
h=H("fn-semaphore-late-lost")
h.op("semaphore",4,61,"acquire",{"max":1,"sem":"/chaos/sem1","timeout_ms":10000},100,200,result={"guard":"/chaos/sem1/L1"})
h.op("semaphore",4,61,"enter",{"guard":"/chaos/sem1/L1","marker":"/chaos/sem1-in/c4-1","sem":"/chaos/sem1"},210,250)
h.op("semaphore",5,62,"acquire",{"max":1,"sem":"/chaos/sem1","timeout_ms":10000},150,400,result={"guard":"/chaos/sem1/L2"})
h.op("semaphore",5,62,"enter",{"guard":"/chaos/sem1/L2","marker":"/chaos/sem1-in/c5-1","sem":"/chaos/sem1"},410,450)
h.op("semaphore",4,61,"observe",{"max":1,"sem":"/chaos/sem1"},600,700,result={"leases":["L2"],"holders":["c4-1","c5-1"]})
h.info("semaphore",4,"lost",10_000_000,{"guard":"/chaos/sem1/L1","reason":"SessionLost"},61)
h.write()

# FP candidates
# 10. lock: a fenced write that the server applied while the guard node still existed, invoked after a Suspended "lost"
h=H("fp-lock-fenced-after-suspended")
h.op("lock",0,10,"acquire",{"kind":"lock","timeout_ms":5000},100,200,result={"guard":GA})
h.info("lock",0,"state",1000,{"state":"SUSPENDED","generation":1,"member":None},10)
h.info("lock",0,"lost",1001,{"guard":GA,"reason":"Suspended"},10)
h.info("lock",0,"state",1500,{"state":"CONNECTED","generation":2,"member":0},10)
h.op("lock",0,10,"read",{"guard":GA},1600,1610,result={"value":0})
h.op("lock",0,10,"fenced-write",{"guard":GA,"value":1},1620,1700)
h.op("lock",0,10,"release",{"guard":GA},1710,1720)
h.info("lock",-1,"final",10_000,{"counter":1})
h.write()

# 11. watch: a DataWatch whose stream ended (session expired), then the data changed
h=H("fp-watch-datawatch-ended")
h.op("watch",20,50,"set",{"value":"1"},100,200)
h.info("watch",24,"snapshot",300,{"mode":"datawatch","value":"1","version":1},54)
h.info("watch",24,"state",1000,{"state":"LOST","generation":1,"member":None},54)
h.info("watch",24,"watch-ended",1001,{"mode":"datawatch","error":"stream ended"},54)
h.op("watch",20,50,"set",{"value":"2"},2000,2100)
h.info("watch",-1,"final",6_000_000,{"data":"2","children":0,"indices":[]})
h.write()

# 12. double barrier: the other member's session had expired on the server (node gone); its client learnt LOST only after its next op began
h=H("fp-double-barrier-late-lost")
h.op("double-barrier",34,41,"enter",{"n":2,"round":0},100,300,result={"passed":True})
h.op("double-barrier",35,42,"enter",{"n":2,"round":0},110,310,result={"passed":True})
h.op("double-barrier",34,41,"leave",{"n":2,"round":0},520,4_000_000,result={"left":True})
h.op("double-barrier",35,42,"leave",{"n":2,"round":0},4_100_000,4_200_000,outcome="fail",error="session expired")
h.info("double-barrier",35,"state",4_150_000,{"state":"LOST","generation":1,"member":None},42)
h.write()

# 13. register: one session goes back in time across keys
h=H("fn-register-session-back-in-time-cross-key")
h.info("register",-1,"init",50,{"value":"init"})
h.op("register",16,21,"write",{"key":"k0","value":"a"},100,200,result={"version":1})
h.op("register",17,22,"write",{"key":"k1","value":"b"},250,350,result={"version":1})
h.op("register",19,24,"read",{"key":"k1"},400,410,result={"value":"b","version":1})
h.op("register",19,24,"read",{"key":"k0"},420,430,result={"value":"init","version":0})
h.info("register",-1,"final",10_000,{"keys":{"k0":{"value":"a","version":1},"k1":{"value":"b","version":1}}})
h.write()

# 14. register: two sessions see two concurrent writes in opposite orders
h=H("fn-register-not-sequentially-consistent")
h.info("register",-1,"init",50,{"value":"init"})
h.op("register",16,21,"write",{"key":"k0","value":"a"},100,200,result={"version":1})
h.op("register",17,22,"write",{"key":"k1","value":"b"},100,200,result={"version":1})
h.op("register",18,23,"read",{"key":"k0"},300,310,result={"value":"a","version":1})
h.op("register",18,23,"read",{"key":"k1"},320,330,result={"value":"init","version":0})
h.op("register",19,24,"read",{"key":"k1"},300,310,result={"value":"b","version":1})
h.op("register",19,24,"read",{"key":"k0"},320,330,result={"value":"init","version":0})
h.info("register",-1,"final",10_000,{"keys":{"k0":{"value":"a","version":1},"k1":{"value":"b","version":1}}})
h.write()

# controls: the checker does flag the narrow forms
h=H("tp-lock-duplicate-value")
h.op("lock",0,10,"acquire",{"kind":"lock","timeout_ms":5000},100,200,result={"guard":GA})
h.op("lock",1,11,"acquire",{"kind":"lock","timeout_ms":5000},150,240,result={"guard":GB})
h.op("lock",0,10,"read",{"guard":GA},250,260,result={"value":0})
h.op("lock",1,11,"read",{"guard":GB},255,265,result={"value":0})
h.op("lock",0,10,"fenced-write",{"guard":GA,"value":1},300,400)
h.op("lock",1,11,"fenced-write",{"guard":GB,"value":1},310,410)
h.info("lock",-1,"final",10_000,{"counter":1})
h.write()

h=H("tp-register-session-back-in-time-same-key")
h.info("register",-1,"init",50,{"value":"init"})
h.op("register",16,21,"write",{"key":"k0","value":"a"},100,200,result={"version":1})
h.op("register",19,24,"read",{"key":"k0"},400,410,result={"value":"a","version":1})
h.op("register",19,24,"read",{"key":"k0"},420,430,result={"value":"init","version":0})
h.info("register",-1,"final",10_000,{"keys":{"k0":{"value":"a","version":1}}})
h.write()

h=H("tp-election-alternation")
h.op("election",26,31,"campaign",{},100,200,result={"guard":EA})
h.op("election",26,31,"fenced-write",{"guard":EA},210,250,result={"version":1})
h.op("election",27,32,"campaign",{},150,400,result={"guard":EB})
h.op("election",27,32,"fenced-write",{"guard":EB},410,450,result={"version":2})
h.op("election",26,31,"fenced-write",{"guard":EA},460,470,result={"version":3})
h.write()

# 15. semaphore max 1: two fenced holders at once, proven by fenced enters and acknowledged deletes, never in one listing
h=H("fn-semaphore-overlap-unobserved")
h.op("semaphore",4,61,"acquire",{"max":1,"sem":"/chaos/sem1","timeout_ms":10000},50,100,result={"guard":"/chaos/sem1/L1"})
h.op("semaphore",4,61,"enter",{"guard":"/chaos/sem1/L1","marker":"/chaos/sem1-in/c4-1","sem":"/chaos/sem1"},100,110)
h.op("semaphore",4,61,"observe",{"max":1,"sem":"/chaos/sem1"},120,130,result={"leases":["L1"],"holders":["c4-1"]})
h.op("semaphore",5,62,"acquire",{"max":1,"sem":"/chaos/sem1","timeout_ms":10000},150,290,result={"guard":"/chaos/sem1/L2"})
h.op("semaphore",5,62,"enter",{"guard":"/chaos/sem1/L2","marker":"/chaos/sem1-in/c5-1","sem":"/chaos/sem1"},300,350)
h.op("semaphore",4,61,"exit",{"marker":"/chaos/sem1-in/c4-1","sem":"/chaos/sem1"},480,500)
h.op("semaphore",4,61,"release",{"guard":"/chaos/sem1/L1"},510,520)
h.op("semaphore",5,62,"observe",{"max":1,"sem":"/chaos/sem1"},600,610,result={"leases":["L2"],"holders":["c5-1"]})
h.op("semaphore",5,62,"exit",{"marker":"/chaos/sem1-in/c5-1","sem":"/chaos/sem1"},700,710)
h.op("semaphore",5,62,"release",{"guard":"/chaos/sem1/L2"},720,730)
h.write()

# barrier: a waiter connected to the leader while the leader is cut off from the others. The
# deposed leader answers sync and reads from its own state until it notices it lost its
# quorum (sync is not a quorum operation in ZooKeeper 3.8: ZOOKEEPER-1675), while the others
# have elected a new leader and committed the coordinator's create. A pass here is allowed.
def barrier_waiter(name, fault_member):
    h=H(name)
    # the waiter (client 30, session 40) connects to member 0
    h.info("barrier",30,"state",50,{"state":"CONNECTED","generation":1,"member":0},session=40)
    # member 0 (the leader) is partitioned from 100 to 5,000,000
    h.info("nemesis",-1,"fault",100,{"n":1,"kind":"partition-leader","dur_ms":4900,"param":0,"delayed_ms":0,"member":fault_member,"started_ms":0})
    # the coordinator (client 31, on member 1) creates the barrier through the new leader
    h.info("barrier",31,"state",60,{"state":"CONNECTED","generation":1,"member":1},session=41)
    h.op("barrier",31,41,"create",{},3_000_000,3_100_000)
    # the waiter, still on the deposed leader, syncs and sees no barrier
    h.op("barrier",30,40,"wait",{},3_200_000,3_300_000,result={"passed":True})
    h.info("nemesis",-1,"fault-end",5_000_000,{"n":1,"kind":"partition-leader","dur_ms":4900,"param":0,"delayed_ms":0,"member":fault_member,"started_ms":0})
    h.op("barrier",31,41,"remove",{},6_000_000,6_100_000)
    h.write()

barrier_waiter("fp-barrier-deposed-leader", 0)
# the same with the partition on member 2: the waiter's member 0 was never cut off, so its
# sync went through the one leader and the pass is a violation
barrier_waiter("tp-barrier-waiter-not-cut-off", 2)

# barrier: the waiter's member 0 is a follower cut off from the leader (partition-follower: the
# kind says it followed when the fault began, and a minority member cannot become leader). A
# follower forwards a sync to its leader and answers it only with the leader's reply, which
# the cut link never delivers, so a cut-off follower answers no sync at all and this pass
# cannot come from ZooKeeper: a client that reports a sync or a wait it never got answered.
h=H("fn-barrier-cut-off-follower")
h.info("barrier",30,"state",50,{"state":"CONNECTED","generation":1,"member":0},session=40)
h.info("barrier",31,"state",60,{"state":"CONNECTED","generation":1,"member":1},session=41)
h.info("nemesis",-1,"fault",100,{"n":1,"kind":"partition-follower","dur_ms":4900,"param":0,"delayed_ms":0,"member":0,"started_ms":0})
h.op("barrier",31,41,"create",{},1_000_000,1_100_000)
h.op("barrier",30,40,"wait",{},3_200_000,3_300_000,result={"passed":True})
h.info("nemesis",-1,"fault-end",5_000_000,{"n":1,"kind":"partition-follower","dur_ms":4900,"param":0,"delayed_ms":0,"member":0,"started_ms":0})
h.op("barrier",31,41,"remove",{},6_000_000,6_100_000)
h.write()

# double barrier: member 35 passed round 0 and never began to leave; member 34 gave up leaving
# 5 s later. Nothing touched the round: both stayed CONNECTED, no operation failed, and the one
# fault of the run was a delay on client 3, a lock client that takes no part in the round. A
# fault on another workload's client cannot keep a member from leaving, yet it excused the round.
h=H("fn-double-barrier-unrelated-fault")
h.info("double-barrier",34,"state",50,{"state":"CONNECTED","generation":1,"member":0},session=41)
h.info("double-barrier",35,"state",60,{"state":"CONNECTED","generation":1,"member":1},session=42)
h.info("nemesis",-1,"fault",80,{"n":1,"kind":"delay","dur_ms":4000,"param":100,"delayed_ms":0,"client":3,"started_ms":0})
h.op("double-barrier",34,41,"enter",{"n":2,"round":0},100,300,result={"passed":True})
h.op("double-barrier",35,42,"enter",{"n":2,"round":0},110,310,result={"passed":True})
h.op("double-barrier",34,41,"leave",{"n":2,"round":0},520,5_520_000,result={"left":False})
h.info("nemesis",-1,"fault-end",4_000_080,{"n":1,"kind":"delay","dur_ms":4000,"param":100,"delayed_ms":0,"client":3,"started_ms":0})
h.write()

# watch: a persistent watcher and a recursive one register (add-watch ok), stay CONNECTED with
# no fault at all, and never hear anything, while the writer's set and create are acknowledged
# and the run goes on for 10 s. The checker built its list of persistent and recursive
# watchers from the events they received, so a watcher that received none was never judged:
# a persistent watch that never works passed every check.
h=H("fn-watch-persistent-never-fires")
h.info("watch",22,"state",50,{"state":"CONNECTED","generation":1,"member":0},51)
h.info("watch",23,"state",50,{"state":"CONNECTED","generation":1,"member":0},52)
h.op("watch",22,51,"add-watch",{"mode":"persistent","path":"/chaos/watch/data"},100,200)
h.op("watch",23,52,"add-watch",{"mode":"recursive","path":"/chaos/watch"},100,200)
h.op("watch",20,50,"create",{"child":0},900,950)
h.op("watch",20,50,"set",{"value":"1"},1000,1100)
h.info("watch",22,"watcher-done",10_000_000,{"mode":"persistent"},51)
h.info("watch",23,"watcher-done",10_000_000,{"mode":"recursive"},52)
h.info("watch",-1,"final",11_000_000,{"data":"1","children":1,"indices":[0]})
h.write()

# watch: a persistent watcher connected to member 0 hears the first set, then nothing more; the
# writer's second set is acknowledged at 1.1 ms, and the watcher stays CONNECTED to member 0
# until it stops at 10 s. The only fault is a pause of member 2 (0.4 ms to 5 s), which does
# not keep member 0 from serving the watcher (a fault that stops the writes also stops their
# acknowledgements; a member that loses its leader drops its clients, which the watcher would
# see). Check 5 (one-shot) already counts only faults of the watcher's member; check 3 counted
# every server fault, so this silence of almost 10 s was excused.
h=H("fn-watch-persistent-silent-other-member-paused")
h.info("watch",22,"state",50,{"state":"CONNECTED","generation":1,"member":0},51)
h.op("watch",22,51,"add-watch",{"mode":"persistent","path":"/chaos/watch/data"},100,200)
h.op("watch",20,50,"set",{"value":"1"},250,300)
h.info("watch",22,"event",320,{"mode":"persistent","path":"/chaos/watch/data","type":"NodeDataChanged"},51)
h.info("nemesis",-1,"fault",400,{"n":1,"kind":"pause","dur_ms":4600,"param":0,"delayed_ms":0,"member":2,"started_ms":0})
h.op("watch",20,50,"set",{"value":"2"},1000,1100)
h.info("nemesis",-1,"fault-end",5_000_000,{"n":1,"kind":"pause","dur_ms":4600,"param":0,"delayed_ms":0,"member":2,"started_ms":0})
h.info("watch",22,"watcher-done",10_000_000,{"mode":"persistent"},51)
h.info("watch",-1,"final",11_000_000,{"data":"2","children":0,"indices":[]})
h.write()

# barrier: the coordinator's remove is acknowledged at 1.1 s and its next create invoked only at
# 6 s; a waiter syncs and waits from 2.0 s and gives up at 5.0 s (passed: false), CONNECTED to
# member 0 throughout, with no fault. After the sync its server had applied the remove, and
# nothing re-created the barrier before the wait ended: a wait that does not pass is a recipe
# that does not let anyone through. Only passes were judged, so a barrier whose wait never
# passed passed the checker.
h=H("fn-barrier-wait-not-passed-while-absent")
h.info("barrier",30,"state",50,{"state":"CONNECTED","generation":1,"member":0},session=40)
h.info("barrier",31,"state",60,{"state":"CONNECTED","generation":1,"member":1},session=41)
h.op("barrier",31,41,"create",{},100,200)
h.op("barrier",31,41,"remove",{},1_000_000,1_100_000,result={"removed":True})
h.op("barrier",30,40,"wait",{},2_000_000,5_000_000,result={"passed":False})
h.op("barrier",31,41,"create",{},6_000_000,6_100_000)
h.write()

# double barrier: both members of round 0 enter within 10 µs of each other, stay CONNECTED, meet
# no fault and no error, and both give up after 5 s without passing; the next round goes
# through. Once all n had entered, the last one's listing saw n nodes and created the ready
# node, which wakes everyone. Only passes were judged (too early? leaving in order? everyone
# who passed leaves?), so a double barrier whose enter never passes passed the checker.
h=H("fn-double-barrier-nobody-passes")
h.info("double-barrier",34,"state",50,{"state":"CONNECTED","generation":1,"member":0},session=41)
h.info("double-barrier",35,"state",60,{"state":"CONNECTED","generation":1,"member":1},session=42)
h.op("double-barrier",34,41,"enter",{"n":2,"round":0},100,5_100_000,result={"passed":False})
h.op("double-barrier",35,42,"enter",{"n":2,"round":0},110,5_110_000,result={"passed":False})
h.op("double-barrier",34,41,"enter",{"n":2,"round":1},5_200_000,5_400_000,result={"passed":True})
h.op("double-barrier",35,42,"enter",{"n":2,"round":1},5_210_000,5_410_000,result={"passed":True})
h.op("double-barrier",34,41,"leave",{"n":2,"round":1},5_600_000,5_700_000,result={"left":True})
h.op("double-barrier",35,42,"leave",{"n":2,"round":1},5_610_000,5_710_000,result={"left":True})
h.write()
