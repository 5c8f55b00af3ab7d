#!/usr/bin/python3
"""Bloodbank under a Redis Sentinel failover (tests/sentinel/run.sh sets it up).

Clients publish with unique Idempotency-Keys while the Redis master is killed
(SIGKILL). Checked: every publish answers 200; a newly published event has
its correlation record on the promoted replica within BOUND_S of the kill (N,
printed); every event published SETTLE_S after that is tracked; the debug
endpoints answer a parent-child-grandchild chain published after the
promotion; the Sentinels name the new master, and the old one, back as a
replica, never sees a worker (no SCRIPT LOAD, no EVALSHA); the worker log says
which Sentinel named which master and never holds the Sentinels' password;
last, /healthz answers within 1 s with the master and every Sentinel hung.

Environment (from run.sh): BB_URL, BB_SENTINEL_DIR, BB_SENTINEL_MASTER_PORT,
BB_SENTINEL_REPLICA_PORT, BB_SENTINEL_ABSENT_PORT, BB_SENTINEL_STALE_PORT, BB_SENTINEL_PORTS,
BB_SENTINEL_PASSWORD, BB_WORKER_LOG (where the workers' stderr goes). Knobs: BB_SENTINEL_CLIENTS (4),
BB_SENTINEL_BOUND_S (30).
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from test_tracking import Redis, RedisError  # noqa: E402  (a minimal RESP2 client)

URL = urllib.parse.urlsplit(os.environ["BB_URL"])
DIR = os.environ["BB_SENTINEL_DIR"]
MASTER = int(os.environ["BB_SENTINEL_MASTER_PORT"])
REPLICA = int(os.environ["BB_SENTINEL_REPLICA_PORT"])
ABSENT = int(os.environ["BB_SENTINEL_ABSENT_PORT"])
STALE = int(os.environ["BB_SENTINEL_STALE_PORT"])
SENTINELS = [int(p) for p in os.environ["BB_SENTINEL_PORTS"].split()]
PASSWORD = os.environ["BB_SENTINEL_PASSWORD"]
WORKER_LOG = os.environ["BB_WORKER_LOG"]
CLIENTS = int(os.environ.get("BB_SENTINEL_CLIENTS") or 4)
BOUND_S = float(os.environ.get("BB_SENTINEL_BOUND_S") or 30)
WARM_S = 2.0
# After the first tracked event, every worker is back within its longest
# backoff (5 s) plus the time the other Sentinels take to learn the new
# master (their hello messages go every 2 s).
SETTLE_S = 10.0
RUN = uuid.uuid4().hex[:8]

failures = []


def log(msg):
    print("sentinel: " + msg, flush=True)


def check(ok, what):
    log(("ok: " if ok else "FAILED: ") + what)
    if not ok:
        failures.append(what)
    return ok


# ------------------------------------------------------------------ Redis

def redis(port, *args, password=None, timeout=2.0):
    """One command (after AUTH when password is given); its reply."""
    r = Redis(port, timeout=timeout)
    try:
        if password:
            r.call("AUTH", password)
        return r.call(*args)
    finally:
        r.close()


def record(port, event_id):
    """The correlation record of event_id on the Redis at port, or None."""
    return redis(port, "GET", b"bloodbank:" + uuid.UUID(event_id).bytes)


def sentinel_master(port):
    h, p = redis(port, "SENTINEL", "get-master-addr-by-name", "mymaster",
                 password=PASSWORD)
    return "%s:%s" % (h.decode(), p.decode())


def role(port):
    return redis(port, "ROLE")[0].decode()


# ------------------------------------------------------------------ HTTP

def request(method, path, body=None, headers=None, timeout=15):
    """(status, parsed JSON or None); status 0 when there was no answer."""
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=timeout)
    try:
        h = {"Connection": "close"}
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers=h)
        resp = conn.getresponse()
        data = resp.read()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, None
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        conn.close()


def publish(what, parents=(), key=None):
    """POST /events: (status, event_id or None, time sent)."""
    t = time.monotonic()
    status, doc = request("POST", "/events", {
        "event_type": "sentinel.test", "payload": {"what": what},
        "correlation_ids": list(parents)},
        headers={"Idempotency-Key": key} if key else None)
    return status, (doc or {}).get("event_id") if status == 200 else None, t


def wait_for(predicate, seconds, step=0.1):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if predicate():
                return True
        except (OSError, RedisError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


class Load:
    """CLIENTS threads publishing with unique keys until stop()."""

    def __init__(self):
        self.sent = []          # (time sent, status, event_id)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(c,), daemon=True)
                        for c in range(CLIENTS)]

    def client(self, c):
        n = 0
        while not self.stopping.is_set():
            n += 1
            status, eid, t = publish("load", key="sentinel-%s-%d-%d" % (RUN, c, n))
            with self.lock:
                self.sent.append((t, status, eid))
            time.sleep(0.005)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()


def worker_log():
    try:
        with open(WORKER_LOG, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# ------------------------------------------------------------------ the run

def main():
    sentinel_ports = ", ".join("127.0.0.1:%d" % p for p in SENTINELS)
    check(wait_for(lambda: (request("GET", "/healthz")[1] or {}).get("redis") == "up", 30),
          "the stack is healthy, Redis up, through the Sentinels")
    status, before, _ = publish("before")
    check(status == 200 and wait_for(lambda: record(MASTER, before), 5),
          "an event published before the failover is recorded on the master :%d"
          % MASTER)
    text = worker_log()
    check("Redis Sentinel 127.0.0.1:%d refused" % ABSENT in text,
          "the worker log says the Sentinel listed first (:%d, none there) refused"
          % ABSENT)
    check("Redis master mymaster is at 127.0.0.1:%d (from Sentinel 127.0.0.1:%d)"
          % (REPLICA, STALE) in text and
          "Redis at 127.0.0.1:%d unavailable: not a master (ROLE slave)" % REPLICA in text,
          "the worker log says the stale Sentinel listed second (:%d) named the replica"
          " :%d, which is no master" % (STALE, REPLICA))
    check("Redis master mymaster is at 127.0.0.1:%d (from Sentinel 127.0.0.1:%d)"
          % (MASTER, SENTINELS[0]) in text,
          "the worker log says which Sentinel named the master: the one after the stale"
          " one was asked next")

    load = Load()
    load.start()
    time.sleep(WARM_S)
    with open(os.path.join(DIR, "redis", "%d.pid" % MASTER)) as f:
        pid = int(f.read())
    log_at = len(worker_log())
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    log("killed the master :%d (pid %d) with %d clients publishing" % (MASTER, pid, CLIENTS))

    # N: from the kill to the first newly published event recorded again
    probes = []
    n_s = None
    while time.monotonic() - killed < BOUND_S + 5:
        status, eid, t = publish("probe")
        probes.append(status)
        if eid and wait_for(lambda: record(REPLICA, eid), 1.0, 0.05):
            n_s = t - killed
            break
        time.sleep(0.2)
    recovered = time.monotonic()
    if n_s is not None:
        log("N = %.1f s from the kill to a new event tracked on the promoted "
            "replica :%d (%d probes)" % (n_s, REPLICA, len(probes)))
    check(n_s is not None and n_s < BOUND_S,
          "tracking resumed within %.0f s of the kill" % BOUND_S)

    time.sleep(SETTLE_S + 3)
    load.stop()
    sent = load.sent
    ok = sum(1 for _, s, _ in sent if s == 200)
    others = sorted(set(s for _, s, _ in sent if s != 200))
    log("load: %d publishes, %d answered 200 (others: %s); probes: %d, %d answered 200"
        % (len(sent), ok, others or "none", len(probes), probes.count(200)))
    check(ok == len(sent) and len(sent) > 0 and probes.count(200) == len(probes),
          "every publish answered 200 through the failover")

    tracked = {eid: record(REPLICA, eid) is not None for _, s, eid in sent if eid}
    during = [eid for t, _, eid in sent if eid and killed <= t < killed + (n_s or 0)]
    late = [eid for t, _, eid in sent if eid and t >= recovered + SETTLE_S]
    log("tracked on the new master: %d of %d load events; %d of the %d published "
        "between the kill and N" % (sum(tracked.values()), len(tracked),
                                    sum(tracked[e] for e in during), len(during)))
    check(len(late) > 0 and all(tracked[e] for e in late),
          "all %d load events published %.0f s after N are tracked"
          % (len(late), SETTLE_S))

    # the debug endpoints, from the new master
    _, parent, _ = publish("parent")
    _, child, _ = publish("child", [parent])
    _, grandchild, _ = publish("grandchild", [child])
    check(wait_for(lambda: record(REPLICA, grandchild), 5),
          "a parent, child and grandchild published after the promotion are recorded")
    answers = []
    for _ in range(2 * CLIENTS):
        s1, corr = request("GET", "/debug/correlation/%s" % child)
        s2, chain = request("GET", "/debug/correlation/%s/chain?direction=descendants"
                            % parent)
        answers.append(s1 == 200 and corr["parents"] == [parent] and
                       s2 == 200 and chain["chain"] == [child, grandchild])
    log("debug endpoints: %d of %d pairs of answers right" % (sum(answers), len(answers)))
    check(all(answers), "/debug/correlation and its descendants chain answer from "
          "the new master, whichever worker answers")

    # the old address is not used again, even once a server answers there
    named = [sentinel_master(p) for p in SENTINELS]
    check(named == ["127.0.0.1:%d" % REPLICA] * len(SENTINELS),
          "every Sentinel names the promoted replica :%d (%s)" % (REPLICA, ", ".join(named)))
    subprocess.run(["redis-server", os.path.join(DIR, "redis", "redis-%d.conf" % MASTER)],
                   check=True)
    check(wait_for(lambda: role(MASTER) == "slave", 30, 0.2),
          "the old master, restarted, is made a replica by the Sentinels")
    _, parent2, _ = publish("parent after the old master is back")
    _, child2, _ = publish("child after the old master is back", [parent2])
    check(wait_for(lambda: record(REPLICA, child2) and record(REPLICA, parent2), 5),
          "events published after that are recorded on the new master")
    status, corr = request("GET", "/debug/correlation/%s" % child2)
    check(status == 200 and (corr or {}).get("parents") == [parent2],
          "and the debug endpoint finds them")
    stats = redis(MASTER, "INFO", "commandstats").decode()
    check("cmdstat_script" not in stats and "cmdstat_evalsha" not in stats,
          "no worker logged in to or wrote to the old master :%d since it is back"
          % MASTER)
    text = worker_log()
    after = text[log_at:]
    check("Redis connected at 127.0.0.1:%d" % MASTER not in after,
          "no worker connected to the old master :%d after the kill" % MASTER)
    check("Redis connected at 127.0.0.1:%d" % REPLICA in after and
          "Redis master mymaster is at 127.0.0.1:%d (from Sentinel" % REPLICA in after,
          "the worker log says the Sentinels named the new master :%d" % REPLICA)
    with open(os.path.join(DIR, "stack", "lighttpd-error.log"), errors="replace") as f:
        text += f.read()
    check(PASSWORD not in text,
          "the Sentinels' password appears in no log line (Sentinels %s)" % sentinel_ports)

    # last (the Sentinels go into TILT after being stopped): /healthz within
    # 1 s while the master and every Sentinel hang, connected or not
    hung = [REPLICA] + SENTINELS
    pids = []
    for p in hung:
        with open(os.path.join(DIR, "redis", "%d.pid" % p)) as f:
            pids.append(int(f.read()))
    slowest = 0.0
    answers = []
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(4 * CLIENTS):
            t0 = time.monotonic()
            status, doc = request("GET", "/healthz")
            slowest = max(slowest, time.monotonic() - t0)
            answers.append((status, (doc or {}).get("redis")))
            time.sleep(0.1)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    log("/healthz with the master and the Sentinels hung: slowest %.2f s; %s"
        % (slowest, sorted(set(answers))))
    check(slowest < 1.1, "/healthz answers within 1 s while Redis and every Sentinel hang")
    check(all(a == (200, "down") for a in answers),
          "and says Redis is down")

    if failures:
        log("%d check(s) failed" % len(failures))
        return 1
    log("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
