#!/usr/bin/python3
"""Bloodbank on a three-node RabbitMQ cluster (tests/cluster/run.sh sets it up).

1. failover: concurrent clients POST llm.prompt events with unique
   Idempotency-Keys; the node the workers are connected to (it is also the
   home node of the classic events.unrouted queue) is SIGKILLed and stays down
   while the load goes on. Then the whole quorum queue bound for llm.prompt is
   read and checked with the fault suite's checker (tests/faults/faultcheck.py):
   every 200's event is in it, no 503 broker_unavailable event is, every answer
   is a 200/503/504 of the service within the answer-time bound, a final
   publish works; and publishing resumed within GAP_BOUND_S of the kill
   (N = kill -> end of the last answer that is not a 200).
2. unroutable events (a type no queue is bound for: alternate exchange ->
   events.unrouted) while that queue is unavailable, each answer recorded:
   a. classic events.unrouted whose home node is down (the killed node);
   b. quorum events.unrouted that has lost its majority (two nodes killed).
   Once the nodes are back, events.unrouted is read: an event answered 200
   must be in it, one answered 503 broker_unavailable must not.
3. the archive (ARCHIVE_STREAM): `bloodbank emit` publishes through the
   cluster to an exchange of this run's own, which declares the stream bound
   to it; the stream's leader node is SIGKILLed, and `bloodbank replay
   --dry-run` through the other two nodes still lists every event, in order.

Environment: what run.sh exports (BB_URL, BB_STATE_DIR, BB_CLUSTER_RUN,
BB_CLUSTER_AMQP_BASE, RABBIT_CONFIRM_TIMEOUT_MS, RABBIT_CONNECT_TIMEOUT_MS,
BB_WORKERS). Knobs: BB_CLUSTER_HOLD (8) seconds of load after the kill,
BB_CLUSTER_GAP_BOUND (15) bound on N in seconds.
"""

import http.client
import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "faults"))
sys.path.insert(0, os.path.join(here, "..", "integration"))

import pika  # noqa: E402

import bbtest  # noqa: E402
from faultcheck import Request, evaluate, event_id  # noqa: E402

# the fault suite's load driver and queue reader (tests/faults/run.py)
_spec = importlib.util.spec_from_file_location(
    "faults_run", os.path.join(here, "..", "faults", "run.py"))
faults = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(faults)

RUN_SH = os.environ["BB_CLUSTER_RUN"]
AMQP_BASE = int(os.environ.get("BB_CLUSTER_AMQP_BASE") or 20670)
HOLD_S = float(os.environ.get("BB_CLUSTER_HOLD") or 8)
GAP_BOUND_S = float(os.environ.get("BB_CLUSTER_GAP_BOUND") or 15)
UNROUTED = bbtest.BB_EXCHANGE + ".unrouted"
UNROUTABLE_TYPE = "cluster.nobody.listens"
RUN = uuid.uuid4().hex[:8]

failures = []


def log(msg):
    print("cluster: " + msg, flush=True)


def check(ok, what):
    log("%s: %s" % ("ok" if ok else "FAILED", what))
    if not ok:
        failures.append(what)


def node_url(n):
    return "amqp://guest:guest@127.0.0.1:%d/" % (AMQP_BASE + n)


def use_node(n):
    """The test's own AMQP connections (bbtest, faults.read_queue) go to node n."""
    bbtest.BB_AMQP_URL = node_url(n)


def cluster(*args):
    r = subprocess.run(["bash", RUN_SH] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0:
        raise RuntimeError("run.sh %s failed:\n%s" % (" ".join(map(str, args)), out))
    return out


def bloodbank_connections(ask):
    """Bloodbank's AMQP connections in the cluster (asked of node ask), per node."""
    out = cluster("ctl", ask, "list_connections", "--no-table-headers", "pid",
                  "client_properties")
    per = {1: 0, 2: 0, 3: 0}
    for line in out.splitlines():
        pid, _, props = line.partition("\t")     # pid: <bbcN@localhost.X.Y.Z>
        if '"connection_name","bloodbank"' in props and pid.startswith("<bbc"):
            per[int(pid[4:].split("@")[0])] += 1
    return per


def home_node(queue, n):
    """The node a classic queue lives on, asked of node n."""
    out = cluster("ctl", n, "list_queues", "--no-table-headers", "name", "pid")
    for line in out.splitlines():
        f = line.split("\t")
        if f[0] == queue and len(f) > 1:
            return f[1].strip("<>").split(".")[0]
    return None


def amqp_do(n, fn):
    conn = pika.BlockingConnection(pika.URLParameters(node_url(n)))
    try:
        return fn(conn.channel())
    finally:
        if conn.is_open:
            conn.close()


def post_unroutable(label, n):
    key = "cluster-%s-%s-%d" % (RUN, label, n)
    r = Request(0, key, event_id(UNROUTABLE_TYPE, key), time.monotonic())
    body = json.dumps({"probe": label, "n": n}).encode()
    conn = http.client.HTTPConnection(faults.HOST, faults.PORT, timeout=30)
    try:
        conn.request("POST", "/events/" + UNROUTABLE_TYPE, body=body, headers={
            "Content-Type": "application/json", "Idempotency-Key": key,
            "Connection": "close"})
        resp = conn.getresponse()
        r.answered(time.monotonic(), resp.status, resp.read())
    except Exception as e:
        r.failed(time.monotonic(), "%s: %s" % (type(e).__name__, e))
    finally:
        conn.close()
    return r


def probe(label, count=3):
    """count unroutable events one after the other; their Requests."""
    out = [post_unroutable(label, i) for i in range(count)]
    for r in out:
        log("  %s: %s" % (label, r.describe(r.t0)))
    return out


def judge_unroutable(label, reqs, ids):
    """The probes' answers against what events.unrouted holds."""
    held = set(ids)
    for r in reqs:
        where = "in %s" % UNROUTED if r.eid in held else "not in %s" % UNROUTED
        log("  %s: answered %s %s after %.0f ms; %s"
            % (label, r.status, r.error or "", r.ms, where))
        if r.kind() == 200:
            check(r.eid in held, "%s: a 200 is in %s" % (label, UNROUTED))
        elif r.error == "broker_unavailable":
            check(r.eid not in held, "%s: a 503 broker_unavailable is not in %s"
                  % (label, UNROUTED))
        check(r.kind() != "other", "%s: the answer is a 200/503/504 of the service" % label)


# ------------------------------------------------------------------ 1. failover

def failover():
    qname = "cluster.%s.failover" % RUN
    use_node(1)
    bbtest.ensure_exchange()
    amqp_do(1, lambda ch: (
        ch.queue_declare(qname, durable=True, arguments={"x-queue-type": "quorum"}),
        ch.queue_bind(qname, bbtest.BB_EXCHANGE, routing_key=faults.EVENT_TYPE)))

    before = probe("unroutable-baseline", 1)
    load = faults.Load("failover")
    load.start()
    time.sleep(faults.WARM_S)
    conns = bloodbank_connections(1)
    victim = max(conns, key=conns.get)
    log("Bloodbank's connections per node: %s; killing node %d" % (conns, victim))
    home = home_node(UNROUTED, victim)
    check(home == "bbc%d@localhost" % victim,
          "%s (classic) lives on the node the workers use (home %s)" % (UNROUTED, home))
    t_kill = time.monotonic()
    try:
        cluster("kill-node", victim)
        time.sleep(HOLD_S)
    finally:
        load.stop()
    t_stop = time.monotonic()
    requests = list(load.requests) + faults.final_poll("failover")
    alive = [n for n in (1, 2, 3) if n != victim]
    conns_after = bloodbank_connections(alive[0])
    log("Bloodbank's connections per node after the kill: %s" % conns_after)

    use_node(alive[0])
    ids = faults.read_queue(qname)
    v = evaluate(requests, ids, faults.BOUND_MS, t_kill)
    faults.dump("cluster-failover", requests, ids, t_kill)
    bad = [r for r in requests if r.kind() != 200]
    gap_end = max((r.t1 for r in bad), default=t_kill)
    n_s = max(0.0, gap_end - t_kill)
    after_gap = [r for r in requests if r.kind() == 200 and r.t0 > gap_end and not r.final]
    first_ok = min((r.t1 for r in requests if r.kind() == 200 and r.t0 >= t_kill),
                   default=None)
    log("failover: %d requests: %d x 200, %d x 503, %d x 504, %d other; answers not 200: %s"
        % (v.requests, v.counts[200], v.counts[503], v.counts[504], v.counts["other"],
           summary(bad)))
    log("failover: N = %.2f s from the kill to the end of the last answer that is not a 200"
        "; first 200 begun after the kill ended at +%s; slowest answer %.0f ms (bound %d ms);"
        " %d x 200 begun after the gap, in the %.1f s of load left"
        % (n_s, "%.2f s" % (first_ok - t_kill) if first_ok else "never",
           v.slowest_ms, faults.BOUND_MS, len(after_gap), t_stop - gap_end))
    check(not v.lost, "every 200's event is in the queue (%d lost)" % len(v.lost))
    check(not v.false_np, "no 503 broker_unavailable event is in the queue (%d found)"
          % len(v.false_np))
    check(not v.other, "every answer is a 200/503/504 of the service (%d other)"
          % len(v.other))
    check(not v.slow, "no answer slower than %d ms (%d were)" % (faults.BOUND_MS, len(v.slow)))
    check(v.final_ok, "a publish after the load answers 200")
    check(n_s <= GAP_BOUND_S, "publishing resumed within %.0f s of the kill (N = %.2f s)"
          % (GAP_BOUND_S, n_s))
    check(len(after_gap) > 0, "the load got 200s after the gap (%d)" % len(after_gap))
    check(conns_after[victim] == 0 and sum(conns_after.values()) == sum(conns.values()),
          "the workers hold as many connections as before, all to live nodes")
    return victim, alive, before


def summary(reqs):
    c = {}
    for r in reqs:
        k = "%s %s" % (r.status, r.error or "")
        c[k] = c.get(k, 0) + 1
    return ", ".join("%d x %s" % (v, k) for k, v in sorted(c.items())) or "none"


# ------------------------------------------------------------------ 2. unroutable

def read_unrouted(n):
    """Every message id in events.unrouted (asked of node n); the queue is emptied."""
    def take(ch):
        ids = []
        while True:
            method, props, _ = ch.basic_get(UNROUTED, auto_ack=True)
            if method is None:
                return ids
            ids.append(props.message_id)
    return amqp_do(n, take)


def unroutable(victim, alive, baseline):
    log("unroutable events, classic %s on the dead node %d:" % (UNROUTED, victim))
    classic = probe("classic-home-down")
    cluster("start-node", victim)
    ids = read_unrouted(victim)
    judge_unroutable("unroutable-baseline", baseline, ids)
    judge_unroutable("classic-home-down", classic, ids)

    # the same queue as quorum (Bloodbank, configured classic here, uses it as it is)
    def requeue(ch):
        ch.queue_delete(UNROUTED)
        ch.queue_declare(UNROUTED, durable=True, arguments={
            "x-queue-type": "quorum", "x-max-length-bytes": 1 << 30,
            "x-overflow": "reject-publish"})
        ch.queue_bind(UNROUTED, UNROUTED)
    amqp_do(victim, requeue)
    healthy = probe("quorum-healthy", 1)
    conns = bloodbank_connections(victim)
    keep = max(conns, key=conns.get)
    down = [n for n in (1, 2, 3) if n != keep]
    log("unroutable events, quorum %s without a majority (nodes %s down, the workers on %d):"
        % (UNROUTED, down, keep))
    for n in down:
        cluster("kill-node", n)
    quorum = probe("quorum-no-majority")
    for n in down:
        cluster("start-node", n)
    time.sleep(2)   # the queue elects a leader and applies what it was sent
    ids = read_unrouted(keep)
    judge_unroutable("quorum-healthy", healthy, ids)
    judge_unroutable("quorum-no-majority", quorum, ids)


# ------------------------------------------------------------------ 3. archive

def stream_leader(stream, n):
    """The node that leads a stream (or quorum queue), asked of node n."""
    out = cluster("ctl", n, "list_queues", "--no-table-headers", "name", "leader")
    for line in out.splitlines():
        f = line.split("\t")
        if f[0] == stream and len(f) > 1:
            return int(f[1].split("@")[0][3:])    # bbcN@localhost
    return None


def archive():
    from test_metrics import REPO, stack_env
    bloodbank = os.path.join(REPO, "src", "bloodbank")
    exchange = "cluster.%s.archived" % RUN
    env = stack_env()
    env.update(RABBIT_URL=",".join(node_url(n) for n in (1, 2, 3)),
               RABBIT_EXCHANGE=exchange, ARCHIVE_STREAM=exchange + ".stream")

    def cli(*args, nodes=(1, 2, 3)):
        e = dict(env, RABBIT_URL=",".join(node_url(n) for n in nodes))
        return subprocess.run([bloodbank] + list(args), env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    ids = []
    for i in range(20):
        r = cli("emit", "cluster.archived", json.dumps({"i": i}))
        if r.returncode != 0:
            check(False, "bloodbank emit through the cluster: %s" % r.stderr)
            return
        ids.append(json.loads(r.stdout)["event_id"])
    leader = stream_leader(exchange + ".stream", 1)
    check(leader in (1, 2, 3), "the archive stream has a leader (node %s)" % leader)
    if leader not in (1, 2, 3):
        return
    log("archive: 20 events in %s.stream; SIGKILL its leader, node %d" % (exchange, leader))
    cluster("kill-node", leader)
    try:
        alive = [n for n in (1, 2, 3) if n != leader]
        r = cli("replay", "--since", since, "--dry-run", nodes=alive)
        listed = [line.split("  ")[2] for line in r.stdout.splitlines()[:-1]]
        log("archive: replay --dry-run through nodes %s: %s" % (
            alive, r.stdout.splitlines()[-1] if r.stdout else r.stderr.strip()))
        check(r.returncode == 0 and listed == ids,
              "the archive lists every event, in order, with its leader node down")
    finally:
        cluster("start-node", leader)


def main():
    log("%s; answer-time bound %d ms; %d clients" % (bbtest.BB_URL, faults.BOUND_MS,
                                                     faults.CLIENTS))
    victim, alive, baseline = failover()
    unroutable(victim, alive, baseline)
    archive()
    if failures:
        log("FAILED: %d check(s): %s" % (len(failures), "; ".join(failures)))
        return 1
    log("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
