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

Spool mode (CONTRACT §12): when the workers run with SPOOL_DIR (as the
stack's BB_STATE_DIR/bloodbank.env says; else SPOOL_DIR or BB_SPOOL_DIR
here), a 202 must carry `Bloodbank-Delivery: spooled` and its event's id and
must reach the queue like a 200, no answer may be 503 broker_unavailable, and
duplicates are counted (faultcheck.py). Before the queue is read the spool
must be empty (GET /metrics bloodbank_spool_events 0 and no waiting record
in a segment file) within BB_FAULT_DRAIN_S (30) seconds. The default faults
are then the broker's and three that need a spool: a worker holding spooled
events SIGKILLed (its segment must be locked again, by another worker or its
successor, before the broker returns), a worker SIGKILLed while it forwards
its segment (at least once: duplicates are counted), and the whole pool
restarted while events are spooled (restart-lighttpd; the new workers must
lock every segment). Without a spool those three are skipped.
"""

import http.client
import json
import os
import re
import shlex
import signal
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
# spool mode: the spool must be empty this long after the final poll
DRAIN_DEADLINE_S = float(os.environ.get("BB_FAULT_DRAIN_S") or 30)
# a dead worker's segment must be locked again within this (workers look
# once a second)
ADOPT_DEADLINE_S = 5.0

_url = urllib.parse.urlsplit(bbtest.BB_URL)
HOST, PORT = _url.hostname, _url.port or 80
RUN = uuid.uuid4().hex[:8]


def log(msg):
    print("faults: " + msg, flush=True)


def workers_spool_dir():
    """The SPOOL_DIR of the workers under test: the one scripts/stack.sh
    wrote into their environment file, else ours."""
    ours = os.environ.get("SPOOL_DIR") or os.environ.get("BB_SPOOL_DIR") or ""
    if not bbtest.BB_STATE_DIR:
        return ours
    try:
        with open(os.path.join(bbtest.BB_STATE_DIR, "bloodbank.env")) as f:
            lines = f.read().splitlines()
    except OSError:
        return ours
    theirs = ""
    for ln in lines:
        if ln.startswith("export SPOOL_DIR="):
            words = shlex.split(ln[len("export SPOOL_DIR="):])
            theirs = words[0] if words else ""
    if theirs != ours:
        log("WARNING: the workers run with SPOOL_DIR=%r, not %r" % (theirs, ours))
    return theirs


SPOOL_DIR = workers_spool_dir()
SPOOL = bool(SPOOL_DIR)


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
        r.answered(time.monotonic(), resp.status, data, resp.getheader("Bloodbank-Delivery"))
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


def message_id(props, body):
    """The message's message_id; "!..." when it has none or it is not the
    body's event_id (CONTRACT §6)."""
    try:
        eid = json.loads(body.decode("utf-8")).get("event_id")
    except (ValueError, UnicodeDecodeError, AttributeError):
        eid = None
    mid = props.message_id
    if not mid:
        return "!no message_id (event_id %s)" % eid
    if eid is not None and mid != eid:
        return "!message_id %s, event_id %s" % (mid, eid)
    return mid


def read_queue(name, settle_s=1.0, max_wait_s=15.0):
    """Every message id in the queue, once its depth has not changed for
    settle_s (messages answered 504 may still be routed after the fault);
    then the queue is deleted. In spool mode run_fault first waits until
    the spool is empty (wait_drained)."""
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
                ids.append(message_id(props, body))
            ch.cancel()
            if ch.queue_declare(name, passive=True).method.message_count == 0:
                break
        ch.queue_delete(name)
    finally:
        if conn.is_open:
            conn.close()
    return ids


# ------------------------------------------------------------------ the spool

def spool_events():
    """The pool's bloodbank_spool_events gauge (GET /metrics); None when it
    cannot be read."""
    conn = http.client.HTTPConnection(HOST, PORT, timeout=2)
    try:
        conn.request("GET", "/metrics", headers={"Connection": "close"})
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        if resp.status != 200:
            return None
        m = re.search(r"^bloodbank_spool_events (\d+)", text, re.M)
        return int(m.group(1)) if m else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class Census:
    """What SPOOL_DIR's segment files hold, read without locking (the
    record format is src/spoolrec.h's: a 32-byte head, "BBsp", the state
    byte 'S' waiting / 'F' forwarded / 'A' set aside, the body's length
    big-endian at offset 8)."""

    def __init__(self):
        self.waiting = {}       # segment path -> records waiting ('S')
        self.sizes = {}         # segment path -> bytes, non-empty ones
        self.damaged = {}       # segment path -> offset of an unreadable head
        self.error = None
        try:
            names = os.listdir(SPOOL_DIR)
        except OSError as e:
            self.error = str(e)
            return
        for name in sorted(names):
            if not re.fullmatch(r"segment-\d+", name):
                continue
            path = os.path.join(SPOOL_DIR, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                self.error = str(e)
                continue
            if not data:
                continue
            self.sizes[path] = len(data)
            at, n = 0, 0
            while at + 32 <= len(data):
                if data[at:at + 4] != b"BBsp":
                    self.damaged[path] = at
                    break
                n += data[at + 4] == ord("S")
                at += 32 + int.from_bytes(data[at + 8:at + 12], "big")
            self.waiting[path] = n

    @property
    def total(self):
        return sum(self.waiting.values())


def segment_locked(path):
    """True when some open file description holds a lock on path (the
    workers' OFD locks show in /proc/locks with pid -1, by inode)."""
    try:
        ino = os.stat(path).st_ino
        with open("/proc/locks") as f:
            return any(re.search(r" [0-9a-f]+:[0-9a-f]+:%d " % ino, ln) for ln in f)
    except OSError:
        return False


def worker_pids():
    try:
        with open(os.path.join(bbtest.BB_STATE_DIR, "lighttpd.pid")) as f:
            lpid = f.read().strip()
        with open("/proc/%s/task/%s/children" % (lpid, lpid)) as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def segment_holders():
    """{segment path: [pids]} of lighttpd's workers that have it open."""
    out = {}
    prefix = os.path.join(os.path.realpath(SPOOL_DIR), "segment-")
    for pid in worker_pids():
        d = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(d)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(d, fd))
            except OSError:
                continue
            if target.startswith(prefix):
                out.setdefault(target, []).append(pid)
    return out


def wait_gone(pid, timeout_s=5.0):
    """Until pid has exited (a zombie counts: its files are closed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except (OSError, IndexError):
            return True
        time.sleep(0.02)
    return False


def wait_adopted(paths, gone=()):
    """Until every segment of paths is locked again (by a live worker: the
    pids of gone are dead), at most ADOPT_DEADLINE_S. Returns (seconds,
    {path: holders}, [paths not locked])."""
    t0 = time.monotonic()
    while True:
        left = [p for p in paths if not segment_locked(p)]
        if not left or time.monotonic() - t0 >= ADOPT_DEADLINE_S:
            held = segment_holders()
            return (time.monotonic() - t0,
                    {p: [w for w in held.get(os.path.realpath(p), []) if w not in gone]
                     for p in paths}, left)
        time.sleep(0.05)


class SpoolWatch:
    """Samples the pool's bloodbank_spool_events every 0.25 s while a fault
    runs: the most events spooled at once, and when the spool last became
    empty."""

    def __init__(self):
        self.samples = []       # (monotonic, events)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.is_set():
            n = spool_events()
            if n is not None:
                self.samples.append((time.monotonic(), n))
            self.stopping.wait(0.25)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(5)

    def peak(self):
        return max((n for _, n in self.samples), default=0)

    def emptied_at(self):
        """The first sample of 0 after the last one above 0 (None: never
        empty at the end, or never spooled)."""
        samples = sorted(self.samples)
        last_full = max((k for k, (_, n) in enumerate(samples) if n), default=None)
        if last_full is None or last_full + 1 >= len(samples):
            return None
        return samples[last_full + 1][0]


def wait_drained(deadline_s=DRAIN_DEADLINE_S):
    """Until the spool is empty: the gauge is 0 and no segment file holds a
    waiting record. (None, when it was seen empty), or (what was left at
    the deadline, None)."""
    deadline = time.monotonic() + deadline_s
    while True:
        n, c = spool_events(), Census()
        if n == 0 and c.total == 0 and c.error is None:
            return None, time.monotonic()
        if time.monotonic() >= deadline:
            held = segment_holders()
            return ("the spool is not empty %.0f s after the load: gauge %s, waiting %s%s%s"
                    % (deadline_s, n, ", ".join("%s %d (held by %s)"
                                               % (os.path.basename(p), w,
                                                  held.get(os.path.realpath(p)) or "nobody")
                                               for p, w in c.waiting.items() if w) or "none",
                       "; damaged: %s" % c.damaged if c.damaged else "",
                       "; " + c.error if c.error else ""), None)
        time.sleep(0.25)


# ------------------------------------------------------------------ the faults

def pause(seconds):
    time.sleep(seconds)


class Fault:
    """inject() and remove() run while the load runs; restore() undoes the
    fault whatever happened (idempotent)."""
    hold = 3.0
    kills = ()      # (start, end) of each worker SIGKILL (or pool restart)
    large = False
    pace = PACE_S
    spool_only = False

    def __init__(self, name, inject, remove, hold=None, doc=""):
        self.name, self._inject, self._remove = name, inject, remove
        self.doc = doc
        if hold is not None:
            self.hold = hold
        self.injected = False
        self.removed = False
        self.problems = []      # invariants of the fault itself that broke

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


class SpoolFault(Fault):
    """A fault of the spool's own: the broker stopped, then started; what
    happened to the spool meanwhile is said in note."""
    spool_only = True
    spooling_s = 2.0

    def __init__(self, name, doc, hold=1.0):
        super().__init__(name, ["stop-rabbit"], ["start-rabbit"], hold=hold, doc=doc)
        self.kills = []
        self.note = ""

    def spool_a_while(self):
        self.injected = True
        stack("stop-rabbit")
        time.sleep(self.spooling_s)

    def after(self):
        return self.note


class SpooledWorkerKill(SpoolFault):
    """The broker stopped; once events are spooled, the worker whose segment
    holds the most waiting events is SIGKILLed: its segment must be locked
    again (adopted by another worker, or by its successor) before the broker
    starts, and each of its 202s must reach the queue."""

    def __init__(self):
        super().__init__("worker-kill-spooled", "RabbitMQ stopped; %.0f s of spooling, then "
                         "SIGKILL the worker holding the most spooled events; start"
                         % self.spooling_s)

    def inject(self):
        self.spool_a_while()
        census, held = Census(), segment_holders()
        # the fullest segment held by a live worker
        cands = sorted(((w, p) for p, w in census.waiting.items()
                        if w and held.get(os.path.realpath(p))), reverse=True)
        if not cands:
            self.problems.append("no worker held spooled events to kill (waiting %s)"
                                 % census.waiting)
            return
        waiting, path = cands[0]
        pid = held[os.path.realpath(path)][0]
        before = set(worker_pids())
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        log("worker %d: SIGKILL (it held %s, %d events waiting)"
            % (pid, os.path.basename(path), waiting))
        if not wait_gone(pid):
            self.problems.append("worker %d still there 5 s after its SIGKILL" % pid)
        self.kills.append((t0, time.monotonic() + KILL_NOTICED_S))
        took, holders, left = wait_adopted([path], gone=(pid,))
        if left:
            self.problems.append("%s (%d events) of the killed worker %d not adopted within "
                                 "%.0f s" % (os.path.basename(path), waiting, pid,
                                             ADOPT_DEADLINE_S))
            return
        who = holders[path]
        self.note = ("killed worker %d held %s (%d events waiting): locked again %.1f s "
                     "later, by %s" % (pid, os.path.basename(path), waiting, took,
                                       ", ".join("worker %d (%s)" % (w, "another worker"
                                                 if w in before else "its successor")
                                                 for w in who) or "a worker"))


class ForwardingWorkerKill(SpoolFault):
    """The broker stopped and events spooled; once it is back and a
    segment's events are being forwarded, its worker is SIGKILLed mid-way:
    what it forwarded but had not yet marked may be published twice
    (counted as dup), nothing may be lost, and the segment must be locked
    again."""
    FORWARD_WAIT_S = 15.0   # reconnect backoff (up to 5 s) and then some

    def __init__(self):
        super().__init__("worker-kill-forwarding", "RabbitMQ stopped for 2 s of spooling, "
                         "started; SIGKILL a worker while it forwards its segment", hold=2.0)

    def remove(self):
        stack("start-rabbit")
        self.removed = True
        census = Census()
        full = {p: w for p, w in census.waiting.items() if w >= 50}
        if not full:
            self.problems.append("no segment held 50 events when the broker started: %s"
                                 % census.waiting)
            return
        # the first of them whose waiting events start going down
        deadline = time.monotonic() + self.FORWARD_WAIT_S
        path = None
        while path is None and time.monotonic() < deadline:
            now = Census().waiting
            for p, w in full.items():
                if 0 < now.get(p, 0) <= w - 10:
                    path, left = p, now[p]
                    break
            else:
                time.sleep(0.02)
        if path is None:
            self.problems.append("no segment was forwarded within %.0f s of the broker's start"
                                 % self.FORWARD_WAIT_S)
            return
        holders = segment_holders().get(os.path.realpath(path), [])
        if len(holders) != 1:
            self.note = "%s held by %s when it was being forwarded: no kill" % (
                os.path.basename(path), holders or "nobody")
            return
        pid = holders[0]
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        if not wait_gone(pid):
            self.problems.append("worker %d still there 5 s after its SIGKILL" % pid)
        self.kills.append((t0, time.monotonic() + KILL_NOTICED_S))
        log("worker %d: SIGKILL while forwarding %s (%d of %d events were waiting)"
            % (pid, os.path.basename(path), left, full[path]))
        took, _, unlocked = wait_adopted([path], gone=(pid,))
        waiting = Census().waiting.get(path, 0)
        if unlocked and waiting:
            self.problems.append("%s (%d events waiting) not adopted within %.0f s of the "
                                 "kill" % (os.path.basename(path), waiting, ADOPT_DEADLINE_S))
        self.note = ("worker %d killed forwarding %s (%d of %d waiting); %s" % (
            pid, os.path.basename(path), left, full[path],
            "locked again %.1f s later" % took if not unlocked else
            "empty (forwarded) %.1f s later" % took))


class SpooledPoolRestart(SpoolFault):
    """The broker stopped; once events are spooled, lighttpd and all its
    workers are restarted (restart-lighttpd): the new workers must lock
    every segment holding events before the broker starts, and every 202
    must reach the queue. Requests while lighttpd is down have no answer
    (unknown outcomes, as at a kill)."""

    def __init__(self):
        super().__init__("pool-restart-spooled", "RabbitMQ stopped; %.0f s of spooling, "
                         "restart lighttpd and its workers; start" % self.spooling_s)

    def inject(self):
        self.spool_a_while()
        old = set(worker_pids())
        t0 = time.monotonic()
        stack("restart-lighttpd")
        self.kills.append((t0, time.monotonic() + KILL_NOTICED_S))
        census = Census()
        paths = [p for p, w in census.waiting.items() if w]
        if not paths:
            self.problems.append("no events spooled before the pool's restart")
            return
        took, holders, left = wait_adopted(paths, gone=old)
        if left:
            self.problems.append("segments not locked by the new workers within %.0f s: %s"
                                 % (ADOPT_DEADLINE_S, ", ".join(
                                     "%s (%d events)" % (os.path.basename(p),
                                                         census.waiting[p]) for p in left)))
        who = sorted({w for ws in holders.values() for w in ws})
        self.note = ("pool restarted in %.1f s; %d events waiting in %d segments then, "
                     "locked %.1f s later by new worker(s) %s"
                     % (self.kills[0][1] - KILL_NOTICED_S - t0, census.total, len(paths),
                        took, ", ".join(map(str, who)) or "?"))


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
        SpooledWorkerKill(),
        ForwardingWorkerKill(),
        SpooledPoolRestart(),
    ]
    faults[5].large = True
    return faults


# what a spool pass runs unless told: the broker's faults, and the spool's own
SPOOL_FAULTS = ("broker-restart", "broker-kill", "broker-pause", "memory-alarm",
                "disk-alarm", "worker-kill-spooled", "worker-kill-forwarding",
                "pool-restart-spooled")


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
    watch = SpoolWatch() if SPOOL else None
    t_start = time.monotonic()
    marks = {}
    note = ""
    try:
        if watch:
            watch.start()
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
    undrained = None
    if watch:
        # the forwarders need a few seconds after the broker returns
        undrained, empty_at = wait_drained()
        watch.stop()
        if empty_at is not None:
            watch.samples.append((empty_at, 0))
    ids = read_queue(qname)
    v = evaluate(requests, ids, BOUND_MS, marks["removed"], kills=f.kills, spool=SPOOL)
    if watch:
        v.spool_peak = watch.peak()
        emptied = watch.emptied_at()
        if emptied is not None:
            v.drained_s = max(0.0, emptied - marks["removed"])
    dump(f.name, requests, ids, marks["inject"])
    if undrained:
        v.failures.append(undrained)
    v.failures.extend(f.problems)
    if stuck:
        v.failures.append("%d clients still waiting after the load stopped" % len(stuck))
    return v, marks, t_start, note, requests


def dump(name, requests, ids, origin):
    """Every request of the fault, for a closer look: STATE_DIR/faults/NAME.tsv"""
    d = os.path.join(bbtest.BB_STATE_DIR or "/tmp", "faults")
    os.makedirs(d, exist_ok=True)
    seen = set(ids)
    with open(os.path.join(d, name + ".tsv"), "w") as f:
        f.write("start_s\tms\tclient\tstatus\terror\tin_queue\tlarge\tdelivery\tkey\n")
        for r in sorted(requests, key=lambda r: r.t0):
            f.write("%.3f\t%.0f\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n" % (
                r.t0 - origin, r.ms, r.client, r.status, (r.error or "").replace("\t", " "),
                r.eid in seen, r.large, r.delivery or "", r.key))


if SPOOL:
    HEADER = "%-22s %6s %6s %6s %5s %5s %5s %5s %5s %5s %7s %8s %9s %6s %7s  %s" % (
        "fault", "reqs", "200", "202", "503", "504", "other", "lost", "false", "dup",
        "unknown", "slowest", "recovered", "peak", "drained", "result")
else:
    HEADER = "%-19s %6s %6s %5s %5s %5s %5s %6s %7s %8s %9s  %s" % (
        "fault", "reqs", "200", "503", "504", "other", "lost", "false", "unknown",
        "slowest", "recovered", "result")


def line(name, v):
    rec = "%.1fs" % v.recovered_s if v.recovered_s is not None else "never"
    result = "ok" if v.ok else "FAILED"
    if SPOOL:
        drained = "%.1fs" % v.drained_s if v.drained_s is not None else "-"
        return "%-22s %6d %6d %6d %5d %5d %5d %5d %5d %5d %7d %6.0fms %9s %6s %7s  %s" % (
            name, v.requests, v.counts[200], v.counts[202], v.counts[503], v.counts[504],
            v.counts["other"], len(v.lost), len(v.false_np), v.duplicates, len(v.unknown),
            v.slowest_ms, rec, v.spool_peak if v.spool_peak is not None else "-", drained,
            result)
    return "%-19s %6d %6d %5d %5d %5d %5d %6d %7d %6.0fms %9s  %s" % (
        name, v.requests, v.counts[200], v.counts[503], v.counts[504], v.counts["other"],
        len(v.lost), len(v.false_np), len(v.unknown), v.slowest_ms, rec, result)


def details(f, v, marks, note):
    o = marks["inject"]
    log("%s: %s; injected at +0.0 s (took %.1f s), removed at +%.1f s (took %.1f s), "
        "load stopped at +%.1f s; 504s found in the queue: %d; bound %d ms%s%s"
        % (f.name, f.doc, marks["injected"] - o, marks["remove"] - o,
           marks["removed"] - marks["remove"], marks["stopped"] - o, v.in_queue_504,
           BOUND_MS, "; duplicates in the queue: %d" % v.duplicates if v.duplicates else "",
           "; " + note if note else ""))
    if v.foreign or v.malformed:
        log("  messages in the queue that no request explains: %d; without message_id = "
            "event_id: %d" % (v.foreign, v.malformed))
    for what, rs in (("lost", v.lost), ("false not-published", v.false_np),
                     ("503 broker_unavailable with the spool on", v.unavailable),
                     ("202 without a spool", v.spooled_without),
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
            print("%-22s %s%s" % (f.name, f.doc, " (spool only)" if f.spool_only else ""))
        return 0
    wanted = argv or os.environ.get("BB_FAULTS", "").split()
    if wanted:
        names = {f.name for f in faults}
        unknown = [a for a in wanted if a not in names]
        if unknown:
            print("unknown fault(s): %s; --list shows them" % " ".join(unknown))
            return 2
        faults = [f for f in faults if f.name in wanted]
    elif SPOOL:
        faults = [f for f in faults if f.name in SPOOL_FAULTS]
    if not SPOOL:
        skipped = [f.name for f in faults if f.spool_only]
        if skipped:
            log("skipped (they need the workers' SPOOL_DIR): %s" % " ".join(skipped))
        faults = [f for f in faults if not f.spool_only]
        if not faults:
            log("nothing to run")
            return 0

    global CLIENTS
    running = running_workers()
    if 0 < running < WORKERS:
        # lighttpd 1.4.69 starts min-procs (default 4) of max-procs workers
        log("WARNING: BB_WORKERS=%d but lighttpd runs %d workers" % (WORKERS, running))
        if "BB_FAULT_CLIENTS" not in os.environ:
            CLIENTS = CLIENTS_PER_WORKER * running
    log("%s, amqp %s; %d clients, %d workers, bound %d ms (connect %d + confirm %d + 1000), "
        "client timeout %.0f s; %s" % (bbtest.BB_URL, bbtest.BB_AMQP_URL, CLIENTS, WORKERS,
                                       BOUND_MS, CONNECT_MS, CONFIRM_MS, CLIENT_TIMEOUT_S,
                                       "spool on: SPOOL_DIR=%s" % SPOOL_DIR if SPOOL
                                       else "spool off"))
    if SPOOL:
        c = Census()
        if c.error:
            log("SPOOL_DIR cannot be read: %s" % c.error)
            return 1
    bbtest.ensure_exchange()
    t_suite = time.monotonic()
    rows, failed = [], []
    for i, f in enumerate(faults):
        if i and not make_healthy():
            log("the stack is not healthy before %s: giving up" % f.name)
            failed.append(f.name)
            rows.append("%-22s not run: the stack could not be made healthy" % f.name)
            break
        try:
            v, marks, _, note, _ = run_fault(f)
        except Exception as e:
            log("%s: the harness failed: %s: %s" % (f.name, type(e).__name__, e))
            failed.append(f.name)
            rows.append("%-22s harness error: %s" % (f.name, e))
            continue
        finally:
            f.restore()
        details(f, v, marks, note)
        print(HEADER)
        print(line(f.name, v), flush=True)
        rows.append(line(f.name, v))
        if not v.ok:
            failed.append(f.name)
    if SPOOL:
        print("\nfaults: summary, spool on (answer-time bound %d ms; 202 = spooled; lost = 200 "
              "or 202 not in the queue; 503 must hold no broker_unavailable; false = 503 "
              "broker_unavailable in the queue; dup = extra copies of a message_id in the "
              "queue (at least once); unknown = allowed outcome of a killed worker or of "
              "the pool's restart; recovered = from the end of the fault's removal "
              "(start-rabbit returned: the node is up; SIGCONT sent; alarm cleared) to the "
              "end of the last answer that is not a 200; peak = most events in the spool at "
              "once (GET /metrics every 0.25 s); drained = from the removal to the spool "
              "seen empty)" % BOUND_MS)
    else:
        print("\nfaults: summary (answer-time bound %d ms; lost = 200 not in the queue, "
              "false = 503 broker_unavailable in the queue, unknown = allowed outcome of a "
              "killed worker, recovered = from the end of the fault's removal (start-rabbit "
              "returned: the node is up; SIGCONT sent; alarm cleared) to the end of the last "
              "answer that is not a 200)" % BOUND_MS)
    print(HEADER)
    for r in rows:
        print(r)
    took = time.monotonic() - t_suite
    if failed:
        print("faults: FAILED: %s (%.0f s)" % (" ".join(failed), took))
        return 1
    print("faults: all %d passed (%.0f s)" % (len(faults), took))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # the fault at hand was undone on the way out
        print("faults: interrupted", flush=True)
        sys.exit(130)
