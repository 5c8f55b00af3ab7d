#!/usr/bin/python3
"""Bloodbank fault suite: concurrent publishers while the broker, Redis or a
worker fails, then the whole queue is read and checked (faultcheck.py says what
is checked, CONTRACT.md §6 why).

usage: /usr/bin/python3 tests/faults/run.py [FAULT...]      (default: all, in order;
                                                            or BB_FAULTS="FAULT ...")
       /usr/bin/python3 tests/faults/run.py --list

It needs a running private stack (scripts/stack.sh; scripts/test.sh faults
starts one) and the environment of the integration suite (see
tests/integration/bbtest.py: BB_URL, BB_AMQP_URL, BB_EXCHANGE, BB_STACK,
BB_STATE_DIR, MAX_BODY_BYTES), plus the settings the workers were started
with: RABBIT_CONFIRM_TIMEOUT_MS, RABBIT_CONNECT_TIMEOUT_MS (the answer-time
bound is their sum plus one second) and BB_WORKERS.

Knobs: BB_FAULT_CLIENTS (4 x BB_WORKERS) concurrent clients; BB_FAULT_WARM (2)
seconds of load before the fault, BB_FAULT_AFTER (4) after it is removed;
BB_FAULT_PACE_MS (5) pause of a client after a 200, BB_FAULT_ERROR_PACE_MS (20)
after anything else; BB_FAULT_LARGE_BYTES (MAX_BODY_BYTES - 8192) size of the
large body; BB_FAULT_SLACK_MS (0) added to the bound (to try the checker: a
negative value makes healthy answers "slow").

Every fault gets a fresh durable queue bound with '#' and fresh workers
(restart-lighttpd); whatever the fault did is undone even when it fails, and a
stack that is not healthy after that is restarted. Exit status 1 when an
invariant fails (or the stack cannot be made healthy).
"""

import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "integration"))

import pika  # noqa: E402

import bbtest  # noqa: E402
from faultcheck import Request, evaluate, event_id  # noqa: E402

PATH = "/events/llm/prompt"
EVENT_TYPE = "llm.prompt"

CONFIRM_MS = int(os.environ.get("RABBIT_CONFIRM_TIMEOUT_MS") or 5000)
CONNECT_MS = int(os.environ.get("RABBIT_CONNECT_TIMEOUT_MS") or 2000)
BOUND_MS = CONNECT_MS + CONFIRM_MS + 1000 + int(os.environ.get("BB_FAULT_SLACK_MS") or 0)
WORKERS = int(os.environ.get("BB_WORKERS") or 4)
# Four clients per worker, so that several publishes are in flight on each
# worker's connection when a fault strikes (a worker answers up to
# WORKER_CONCURRENCY, 16, at once: none waits behind another).
CLIENTS_PER_WORKER = 4
CLIENTS = int(os.environ.get("BB_FAULT_CLIENTS") or CLIENTS_PER_WORKER * WORKERS)
WARM_S = float(os.environ.get("BB_FAULT_WARM") or 2)
AFTER_S = float(os.environ.get("BB_FAULT_AFTER") or 4)
# Busy enough that a publish is usually in flight when the fault strikes; an
# error answer (fast while the broker is down) backs off a little more.
PACE_S = float(os.environ.get("BB_FAULT_PACE_MS") or 5) / 1000.0
ERROR_PACE_S = float(os.environ.get("BB_FAULT_ERROR_PACE_MS") or 20) / 1000.0
LARGE_BYTES = int(os.environ.get("BB_FAULT_LARGE_BYTES")
                  or bbtest.MAX_BODY_BYTES - 8192)
# long enough to measure a hung request, short enough to end the run
CLIENT_TIMEOUT_S = max(15.0, 3.0 * BOUND_MS / 1000.0)
# how long after a worker's SIGKILL lighttpd may still route to it
KILL_NOTICED_S = 1.0
FINAL_DEADLINE_S = 20.0     # publishing must work again within this after the load
HEALTH_DEADLINE_S = 30.0

_url = urllib.parse.urlsplit(bbtest.BB_URL)
HOST, PORT = _url.hostname, _url.port or 80
RUN = uuid.uuid4().hex[:8]


def log(msg):
    print("faults: " + msg, flush=True)


def stack(command):
    """scripts/stack.sh COMMAND on the stack under test; its output on failure."""
    bbtest.stack(command)


def try_stack(command):
    try:
        stack(command)
        return True
    except Exception as e:
        log("(restore) %s" % str(e).strip().splitlines()[0])
        return False


# ------------------------------------------------------------------ HTTP

def post(client, key, body, large=False, final=False, timeout=CLIENT_TIMEOUT_S):
    """One POST on a fresh connection; always returns its Request."""
    r = Request(client, key, event_id(EVENT_TYPE, key), time.monotonic(), large, final)
    conn = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        conn.request("POST", PATH, body=body, headers={
            "Content-Type": "application/json", "Idempotency-Key": key,
            "Connection": "close"})
        resp = conn.getresponse()
        data = resp.read()
        r.answered(time.monotonic(), resp.status, data)
    except Exception as e:  # timeout, reset, refused: no answer
        r.failed(time.monotonic(), "%s: %s" % (type(e).__name__, e))
    finally:
        conn.close()
    return r


def small_body(fault, client, n):
    return json.dumps({"prompt": "fault %s, client %d, request %d" % (fault, client, n),
                       "model": "fault-suite"}).encode()


_large = None


def large_body():
    global _large
    if _large is None:
        pad = LARGE_BYTES - len(json.dumps({"prompt": "", "model": "fault-suite"}))
        _large = json.dumps({"prompt": "L" * max(pad, 1), "model": "fault-suite"}).encode()
    return _large


class Load:
    """CLIENTS threads posting unique keys until stop(); while `large` is set,
    clients 0 and 1 post the large body instead."""

    def __init__(self, fault, pace=PACE_S):
        self.fault = fault
        self.pace = pace
        self.requests = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.large = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(c,), daemon=True)
                        for c in range(CLIENTS)]

    def client(self, c):
        n = 0
        while not self.stopping.is_set():
            n += 1
            key = "faults-%s-%s-%d-%d" % (RUN, self.fault, c, n)
            big = self.large.is_set() and c < 2
            r = post(c, key, large_body() if big else small_body(self.fault, c, n), large=big)
            with self.lock:
                self.requests.append(r)
            pace = self.pace if r.kind() == 200 else ERROR_PACE_S
            if pace:
                self.stopping.wait(pace)

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT_S + 5)


def final_poll(fault):
    """POST until a 200, at most FINAL_DEADLINE_S: every attempt is a request."""
    out = []
    deadline = time.monotonic() + FINAL_DEADLINE_S
    n = 0
    while True:
        n += 1
        r = post(99, "faults-%s-%s-final-%d" % (RUN, fault, n),
                 small_body(fault, 99, n), final=True)
        out.append(r)
        if r.kind() == 200 or time.monotonic() >= deadline:
            return out
        time.sleep(0.5)


# ------------------------------------------------------------------ AMQP

def amqp():
    return pika.BlockingConnection(bbtest.amqp_params())


def fresh_queue(name):
    conn = amqp()
    try:
        ch = conn.channel()
        ch.queue_declare(name, durable=True, auto_delete=False)
        ch.queue_bind(name, bbtest.BB_EXCHANGE, routing_key="#")
        ch.queue_purge(name)
    finally:
        conn.close()


def read_queue(name, settle_s=1.0, max_wait_s=15.0):
    """Every message id in the queue, once its depth has not changed for
    settle_s (messages answered 504 may still be routed after the fault);
    then the queue is deleted."""
    deadline = time.monotonic() + max_wait_s
    while True:
        try:
            conn = amqp()
            break
        except Exception:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)
    ids = []
    try:
        ch = conn.channel()
        last, since = -1, time.monotonic()
        while True:
            depth = ch.queue_declare(name, passive=True).method.message_count
            if depth != last:
                last, since = depth, time.monotonic()
            elif time.monotonic() - since >= settle_s or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        ch.basic_qos(prefetch_count=500)
        while True:
            for method, props, body in ch.consume(name, auto_ack=True,
                                                  inactivity_timeout=0.5):
                if method is None:
                    break
                mid = props.message_id
                if not mid:
                    try:
                        mid = json.loads(body.decode("utf-8")).get("event_id")
                    except ValueError:
                        mid = "unparsable message"
                ids.append(mid)
            ch.cancel()
            if ch.queue_declare(name, passive=True).method.message_count == 0:
                break
        ch.queue_delete(name)
    finally:
        if conn.is_open:
            conn.close()
    return ids


# ------------------------------------------------------------------ the faults

def pause(seconds):
    time.sleep(seconds)


class Fault:
    """inject() and remove() run while the load runs; restore() undoes the
    fault whatever happened (idempotent)."""
    hold = 3.0
    kills = ()      # (start, end) of each worker SIGKILL
    large = False
    pace = PACE_S

    def __init__(self, name, inject, remove, hold=None, doc=""):
        self.name, self._inject, self._remove = name, inject, remove
        self.doc = doc
        if hold is not None:
            self.hold = hold
        self.injected = False
        self.removed = False

    def inject(self):
        self.injected = True
        for c in self._inject:
            stack(c)

    def remove(self):
        for c in self._remove:
            stack(c)
        self.removed = True

    def restore(self):
        if self.injected and not self.removed:
            for c in self._remove:
                try_stack(c)
            self.removed = True


class WorkerKill(Fault):
    """SIGKILL a worker, wait, SIGKILL another one: lighttpd answers the
    requests each was serving itself (unknown outcomes) and respawns them.
    The clients do not pause between requests, so that a killed worker is
    most likely serving one."""
    pace = 0

    def __init__(self):
        super().__init__("worker-kill", [], [], hold=2.0,
                         doc="SIGKILL a worker under load, twice")
        self.kills = []
        self.respawned = None

    def kill(self):
        t0 = time.monotonic()
        stack("kill-worker")
        # until lighttpd has seen the death, it may still hand a new request
        # to the dead worker's socket and answer it 500 itself (seen 0.1 s
        # after a kill at 16 clients)
        self.kills.append((t0, time.monotonic() + KILL_NOTICED_S))

    def inject(self):
        self.injected = True
        self.kill()
        time.sleep(self.hold)
        self.kill()

    def remove(self):
        self.removed = True

    def after(self):
        deadline = time.monotonic() + 5
        while running_workers() < WORKERS and time.monotonic() < deadline:
            time.sleep(0.2)
        self.respawned = running_workers()
        return "lighttpd runs %d of %d workers after the kills" % (self.respawned, WORKERS)


def running_workers():
    """How many workers lighttpd runs now (-1: unknown)."""
    try:
        with open(os.path.join(bbtest.BB_STATE_DIR, "lighttpd.pid")) as f:
            lpid = f.read().strip()
        with open("/proc/%s/task/%s/children" % (lpid, lpid)) as f:
            return len(f.read().split())
    except OSError:
        return -1


def all_faults():
    pause_s = CONFIRM_MS / 1000.0 + 2.0
    faults = [
        Fault("broker-restart", ["stop-rabbit"], ["start-rabbit"], hold=1,
              doc="graceful RabbitMQ stop, then start"),
        Fault("broker-kill", ["kill-rabbit"], ["start-rabbit"], hold=1,
              doc="RabbitMQ SIGKILL, then start"),
        Fault("broker-pause", ["pause-rabbit"], ["resume-rabbit"], hold=pause_s,
              doc="RabbitMQ SIGSTOP for %.0f s (confirm timeout + 2 s), SIGCONT" % pause_s),
        Fault("memory-alarm", ["memory-alarm-on"], ["memory-alarm-off"], hold=4,
              doc="memory alarm (high watermark 0) for 4 s"),
        Fault("disk-alarm", ["disk-alarm-on"], ["disk-alarm-off"], hold=4,
              doc="disk alarm (free limit above free space) for 4 s"),
        Fault("large-body-blocked", ["memory-alarm-on"], ["memory-alarm-off"], hold=6,
              doc="memory alarm for 6 s; clients 0 and 1 post %d-byte bodies meanwhile"
              % len(large_body())),
        Fault("redis-kill", ["kill-redis"], ["start-redis"], hold=3,
              doc="Redis SIGKILL, 3 s later start"),
        Fault("redis-pause", ["pause-redis"], ["resume-redis"], hold=3,
              doc="Redis SIGSTOP for 3 s, SIGCONT"),
        WorkerKill(),
    ]
    faults[5].large = True
    return faults


# ------------------------------------------------------------------ one fault

def healthy(deadline_s):
    """A publish answers 200 within deadline_s."""
    deadline = time.monotonic() + deadline_s
    n = 0
    while True:
        n += 1
        r = post(98, "faults-%s-health-%d-%s" % (RUN, n, uuid.uuid4().hex[:6]),
                 b'{"prompt":"health"}', timeout=10)
        if r.kind() == 200:
            return True
        if time.monotonic() >= deadline:
            log("no healthy publish within %.0f s: last %s" % (deadline_s, r.describe(r.t0)))
            return False
        time.sleep(0.5)


def make_healthy():
    """Fresh workers and a publish that works; restart the whole stack if not."""
    try_stack("restart-lighttpd")
    if healthy(HEALTH_DEADLINE_S):
        return True
    log("restarting the whole stack")
    try_stack("stop")
    if not try_stack("start"):
        return False
    try:
        bbtest.ensure_exchange()
    except Exception as e:
        log(str(e))
        return False
    return healthy(HEALTH_DEADLINE_S)


def run_fault(f):
    qname = "faults.%s.%s" % (RUN, f.name)
    fresh_queue(qname)
    load = Load(f.name, f.pace)
    t_start = time.monotonic()
    marks = {}
    note = ""
    try:
        load.start()
        time.sleep(WARM_S)
        marks["inject"] = time.monotonic()
        f.inject()
        if f.large:
            load.large.set()
        marks["injected"] = time.monotonic()
        time.sleep(f.hold)
        load.large.clear()
        marks["remove"] = time.monotonic()
        f.remove()
        marks["removed"] = time.monotonic()
        time.sleep(AFTER_S)
    finally:
        load.stop()
        marks["stopped"] = time.monotonic()
        f.restore()
    stuck = [t for t in load.threads if t.is_alive()]
    requests = list(load.requests)
    requests += final_poll(f.name)
    if hasattr(f, "after"):
        note = f.after()
    ids = read_queue(qname)
    v = evaluate(requests, ids, BOUND_MS, marks["removed"], kills=f.kills)
    dump(f.name, requests, ids, marks["inject"])
    if stuck:
        v.failures.append("%d clients still waiting after the load stopped" % len(stuck))
    return v, marks, t_start, note, requests


def dump(name, requests, ids, origin):
    """Every request of the fault, for a closer look: STATE_DIR/faults/NAME.tsv"""
    d = os.path.join(bbtest.BB_STATE_DIR or "/tmp", "faults")
    os.makedirs(d, exist_ok=True)
    seen = set(ids)
    with open(os.path.join(d, name + ".tsv"), "w") as f:
        f.write("start_s\tms\tclient\tstatus\terror\tin_queue\tlarge\tkey\n")
        for r in sorted(requests, key=lambda r: r.t0):
            f.write("%.3f\t%.0f\t%d\t%s\t%s\t%d\t%d\t%s\n" % (
                r.t0 - origin, r.ms, r.client, r.status, (r.error or "").replace("\t", " "),
                r.eid in seen, r.large, r.key))


HEADER = "%-19s %6s %6s %5s %5s %5s %5s %6s %7s %8s %9s  %s" % (
    "fault", "reqs", "200", "503", "504", "other", "lost", "false", "unknown",
    "slowest", "recovered", "result")


def line(name, v):
    rec = "%.1fs" % v.recovered_s if v.recovered_s is not None else "never"
    return "%-19s %6d %6d %5d %5d %5d %5d %6d %7d %6.0fms %9s  %s" % (
        name, v.requests, v.counts[200], v.counts[503], v.counts[504], v.counts["other"],
        len(v.lost), len(v.false_np), len(v.unknown), v.slowest_ms, rec,
        "ok" if v.ok else "FAILED")


def details(f, v, marks, note):
    o = marks["inject"]
    log("%s: %s; injected at +0.0 s (took %.1f s), removed at +%.1f s (took %.1f s), "
        "load stopped at +%.1f s; 504s found in the queue: %d; bound %d ms%s%s"
        % (f.name, f.doc, marks["injected"] - o, marks["remove"] - o,
           marks["removed"] - marks["remove"], marks["stopped"] - o, v.in_queue_504,
           BOUND_MS, "; duplicates in the queue: %d" % v.duplicates if v.duplicates else "",
           "; " + note if note else ""))
    for what, rs in (("lost", v.lost), ("false not-published", v.false_np),
                     ("other", v.other), ("unknown", v.unknown), ("slow", v.slow)):
        if rs:
            log("  %s (%d), e.g.:" % (what, len(rs)))
            for r in sorted(rs, key=lambda r: r.t0)[:4]:
                log("    " + r.describe(o))
    for msg in v.failures:
        log("  FAILED: " + msg)


def main(argv):
    faults = all_faults()
    if "--list" in argv:
        for f in faults:
            print("%-19s %s" % (f.name, f.doc))
        return 0
    wanted = argv or os.environ.get("BB_FAULTS", "").split()
    if wanted:
        names = {f.name for f in faults}
        unknown = [a for a in wanted if a not in names]
        if unknown:
            print("unknown fault(s): %s; --list shows them" % " ".join(unknown))
            return 2
        faults = [f for f in faults if f.name in wanted]

    global CLIENTS
    running = running_workers()
    if 0 < running < WORKERS:
        # lighttpd 1.4.69 starts min-procs (default 4) of max-procs workers
        log("WARNING: BB_WORKERS=%d but lighttpd runs %d workers" % (WORKERS, running))
        if "BB_FAULT_CLIENTS" not in os.environ:
            CLIENTS = CLIENTS_PER_WORKER * running
    log("%s, amqp %s; %d clients, %d workers, bound %d ms (connect %d + confirm %d + 1000), "
        "client timeout %.0f s" % (bbtest.BB_URL, bbtest.BB_AMQP_URL, CLIENTS, WORKERS,
                                   BOUND_MS, CONNECT_MS, CONFIRM_MS, CLIENT_TIMEOUT_S))
    bbtest.ensure_exchange()
    rows, failed = [], []
    for i, f in enumerate(faults):
        if i and not make_healthy():
            log("the stack is not healthy before %s: giving up" % f.name)
            failed.append(f.name)
            rows.append("%-19s not run: the stack could not be made healthy" % f.name)
            break
        try:
            v, marks, _, note, _ = run_fault(f)
        except Exception as e:
            log("%s: the harness failed: %s: %s" % (f.name, type(e).__name__, e))
            failed.append(f.name)
            rows.append("%-19s harness error: %s" % (f.name, e))
            continue
        finally:
            f.restore()
        details(f, v, marks, note)
        print(HEADER)
        print(line(f.name, v), flush=True)
        rows.append(line(f.name, v))
        if not v.ok:
            failed.append(f.name)
    print("\nfaults: summary (answer-time bound %d ms; lost = 200 not in the queue, false = "
          "503 broker_unavailable in the queue, unknown = allowed outcome of a killed worker, "
          "recovered = from the end of the fault's removal (start-rabbit returned: the node is up; "
          "SIGCONT sent; alarm cleared) to the end of the last answer that is not a 200)"
          % BOUND_MS)
    print(HEADER)
    for r in rows:
        print(r)
    if failed:
        print("faults: FAILED: %s" % " ".join(failed))
        return 1
    print("faults: all %d passed" % len(faults))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # the fault at hand was undone on the way out
        print("faults: interrupted", flush=True)
        sys.exit(130)
