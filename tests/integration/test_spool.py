"""The spool (CONTRACT §12): a pool of the pre-fork master, started here
with a SPOOL_DIR of its own, reaches the stack's broker through a TCP relay
that the tests cut (connections refused: the broker is unavailable), stall
(bytes held: a publish's outcome becomes unknown) and mend. Redis is the
stack's."""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import bbtest
from test_metrics import (PORT_BASE, REPO, PoolCase, fcgi_call, fcgi_scrape,
                          value, wait_for)

RUN = uuid.uuid4().hex[:8]
# the broker's attempts are short, so that a cut relay is seen at once
CONNECT_MS = "500"
CONFIRM_MS = "1500"


class Relay:
    """127.0.0.1:port -> the stack's AMQP port, byte for byte."""

    def __init__(self, port, target):
        self.port, self.target = port, target
        self.listener = None
        self.conns = []
        self.stalled = False
        self.lock = threading.Lock()

    def up(self):
        self.stalled = False
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def cut(self):
        """Refuses connections and drops the open ones."""
        with self.lock:
            if self.listener:
                # shut down first: a close alone does not end an accept()
                # waiting in another thread
                try:
                    self.listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.listener.close()
                self.listener = None
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns = []

    def stall(self):
        self.stalled = True

    def _accept(self, s):
        while True:
            try:
                a, _ = s.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(self.target)
            except OSError:
                a.close()
                continue
            with self.lock:
                self.conns += [a, b]
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a, b):
        peer = {a: b, b: a}
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 0.2)
                if self.stalled:
                    continue
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peer[s].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            a.close()
            b.close()


def post_event(port, event_type, payload, key=None, parents=None):
    """POST /events/TYPE over FastCGI -> (status, headers, document)."""
    headers = {}
    if key:
        headers["Idempotency-Key"] = key
    if parents:
        headers["X-Correlation-Ids"] = ",".join(parents)
    status, head, body = fcgi_call(port, "POST", "/events/" + event_type,
                                   json.dumps(payload).encode(), headers)
    return status, head, json.loads(body)


class SpoolCase(PoolCase):
    """A pool of two workers with a spool, behind a relay to the broker."""

    WORKERS = 2
    PORT = PORT_BASE + 12
    MAX_BYTES = None
    SPOOL_SUBDIR = "spool"
    TMPFS_BYTES = None      # the spool on a tmpfs of this size: a disk that fills

    def setUp(self):
        super().setUp()
        self.relay = Relay(PORT_BASE + 13, ("127.0.0.1", bbtest.amqp_params().port))
        self.relay.up()
        self.addCleanup(self.relay.cut)
        self.spool = os.path.join(self.dir, self.SPOOL_SUBDIR)
        os.makedirs(os.path.join(self.dir, "spool"))
        if self.TMPFS_BYTES:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0777" % self.TMPFS_BYTES,
                            "bloodbank-spool-test", self.spool], check=True)
            self.addCleanup(subprocess.run, ["umount", self.spool])
        # doctor, run as root, checks it for the workers' user
        os.chmod(self.dir, 0o755)
        os.chmod(os.path.join(self.dir, "spool"), 0o777)
        creds = bbtest.amqp_params().credentials
        self.env.update({
            "RABBIT_URL": "amqp://%s:%s@127.0.0.1:%d/" % (creds.username, creds.password,
                                                         self.relay.port),
            "SPOOL_DIR": self.spool,
            "RABBIT_CONNECT_TIMEOUT_MS": CONNECT_MS,
            "RABBIT_CONFIRM_TIMEOUT_MS": CONFIRM_MS,
        })
        if self.MAX_BYTES:
            self.env["SPOOL_MAX_BYTES"] = str(self.MAX_BYTES)
        self.type = "spool.%s.%s" % (RUN, self._testMethodName[-20:].replace("_", "-"))
        self.consumer = bbtest.Consumer(self.type)
        self.addCleanup(self.consumer.close)
        self.master = None
        self.start_master()

    def start_master(self):
        self.log = open(os.path.join(self.dir, "master.log"), "ab")
        self.addCleanup(self.log.close)
        self.master = subprocess.Popen(
            [os.path.join(REPO, "src", "bloodbank"), "--workers", str(self.WORKERS),
             "--listen", "127.0.0.1:%d" % self.PORT],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        master = self.master
        self.addCleanup(lambda: master.poll() is None and (master.terminate(),
                                                            master.wait(30)))
        self.wait_pool(self.PORT)

    def stop_master(self):
        self.master.terminate()
        self.assertEqual(self.master.wait(30), 0)

    def metrics(self):
        return fcgi_scrape(self.PORT)

    def spooled_now(self):
        return value(self.metrics(), "bloodbank_spool_events")

    def wait_forwarded(self, timeout=20):
        wait_for(lambda: self.spooled_now() == 0, timeout, "the spool to empty")

    def queued_ids(self, n):
        got = self.consumer.receive(n, timeout=10)
        extra = self.consumer.drain(0.5)
        return [p.message_id for _, p, _ in got + extra]

    def doctor_line(self):
        """doctor's spool line."""
        r = subprocess.run([os.path.join(REPO, "src", "bloodbank"), "doctor"], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        (line,) = [ln for ln in r.stdout.decode().splitlines() if " spool: " in ln]
        return line

    def master_log(self):
        with open(os.path.join(self.dir, "master.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")


class ZzSpoolTest(SpoolCase):

    def test_broker_unavailable_spools_202_and_forwards_on_return(self):
        self.relay.cut()
        answers = []
        for i in range(6):
            answers.append(post_event(self.PORT, self.type, {"i": i},
                                      key="k%d-%s" % (i, RUN) if i % 2 else None))
        parent = answers[0][2]["event_id"]
        answers.append(post_event(self.PORT, self.type, {"child": 1}, parents=[parent]))
        status, head, body = fcgi_call(self.PORT, "POST", "/events/batch", json.dumps(
            [{"event_type": self.type, "payload": {"b": k}} for k in range(3)]).encode())
        for s, h, doc in answers:
            self.assertEqual(s, 202, doc)
            self.assertEqual(h.get("Bloodbank-Delivery"), "spooled")
            self.assertEqual(doc["event_type"], self.type)
        batch = json.loads(body)
        self.assertEqual(status, 207, batch)
        self.assertEqual((batch["published"], batch["failed"], batch["spooled"]), (0, 0, 3))
        self.assertEqual([r["status"] for r in batch["results"]], [202] * 3)
        ids = [doc["event_id"] for _, _, doc in answers] + \
              [r["event_id"] for r in batch["results"]]

        # a retry of a spooled key is a replay: 202 again, never spooled twice
        s, h, doc = post_event(self.PORT, self.type, {"i": 1}, key="k1-%s" % RUN)
        self.assertEqual((s, h.get("Idempotent-Replayed"), h.get("Bloodbank-Delivery")),
                         (202, "true", "spooled"))
        self.assertEqual(doc, answers[1][2])
        m = self.metrics()
        self.assertEqual(value(m, "bloodbank_spool_events"), 10)
        self.assertGreater(value(m, "bloodbank_spool_bytes"), 10 * 200)
        self.assertGreater(value(m, "bloodbank_spool_oldest_seconds"), 0)
        self.assertEqual(value(m, "bloodbank_events_total", outcome="spooled"), 10)
        self.assertEqual(value(m, "bloodbank_http_requests_total", route="generic",
                               code="202"), 8)
        self.assertEqual(self.consumer.drain(0.2), [])
        self.assertRegex(self.doctor_line(), r"^\[ok\] +spool: %s: 10 events waiting "
                         r"\(\d+ bytes of SPOOL_MAX_BYTES 1073741824\), the oldest \d+ s old$"
                         % self.spool)

        self.relay.up()
        self.wait_forwarded()
        self.assertEqual(sorted(self.queued_ids(10)), sorted(ids))
        m = self.metrics()
        self.assertEqual(value(m, "bloodbank_events_total", outcome="forwarded"), 10)
        self.assertEqual(value(m, "bloodbank_spool_oldest_seconds"), 0)
        for name in os.listdir(self.spool):
            self.assertEqual(os.path.getsize(os.path.join(self.spool, name)), 0, name)
        # once forwarded: the claim is done (200) and the lineage recorded
        s, h, doc = post_event(self.PORT, self.type, {"i": 1}, key="k1-%s" % RUN)
        self.assertEqual((s, h.get("Idempotent-Replayed"), h.get("Bloodbank-Delivery")),
                         (200, "true", None))
        self.assertEqual(doc, answers[1][2])
        lineage = bbtest.get("/debug/correlation/%s" % parent).json()
        self.assertEqual(lineage["children"], [answers[6][2]["event_id"]])
        self.assertEqual(self.consumer.drain(0.5), [])
        self.assertRegex(self.doctor_line(), r"^\[ok\] +spool: %s is empty" % self.spool)

    def test_emit_spools_and_the_workers_forward_it(self):
        self.relay.cut()
        r = subprocess.run([os.path.join(REPO, "src", "bloodbank"), "emit", self.type,
                            '{"emitted":true}'], env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["payload"], {"emitted": True})
        self.assertIn(b"the event is spooled in %s" % self.spool.encode(), r.stderr)
        # emit's own segment, unlocked once it exited, is adopted by a worker
        wait_for(lambda: self.spooled_now() == 1, 10, "a worker to adopt emit's segment")
        self.relay.up()
        self.wait_forwarded()
        self.assertEqual(self.queued_ids(1), [doc["event_id"]])

    def test_unknown_outcome_is_never_spooled(self):
        # both workers connected: a connect that stalls writes nothing,
        # and is spooled
        def connected():
            self.assertEqual(post_event(self.PORT, self.type, {"warm": 1})[0], 200)
            return value(self.metrics(), "bloodbank_broker_connected") == self.WORKERS
        wait_for(connected, 10, "both workers connected")
        self.relay.stall()
        s, h, doc = post_event(self.PORT, self.type, {"stalled": 1})
        self.assertEqual((s, doc["error"]), (504, "broker_timeout"))
        self.assertIsNone(h.get("Bloodbank-Delivery"))
        self.assertEqual(self.spooled_now(), 0)

    def test_spooled_events_survive_a_killed_worker_and_a_restarted_pool(self):
        self.relay.cut()
        ids = []
        # concurrent posts, so that both workers spool some
        lock = threading.Lock()

        def client(c):
            for i in range(15):
                s, _, doc = post_event(self.PORT, self.type, {"c": c, "i": i})
                with lock:
                    ids.append((s, doc.get("event_id")))
        ts = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual({s for s, _ in ids}, {202})
        segments = [n for n in os.listdir(self.spool) if os.path.getsize(
            os.path.join(self.spool, n)) > 0]
        self.assertEqual(len(segments), 2, "both workers spooled: %s" % segments)
        self.assertEqual(self.spooled_now(), 60)

        workers = [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(self.master.pid)], stdout=subprocess.PIPE).stdout.split()]
        os.kill(workers[0], signal.SIGKILL)
        # its successor (or the other worker) adopts its segment
        wait_for(lambda: self.spooled_now() == 60, 10, "the dead worker's events counted again")
        self.stop_master()
        self.start_master()
        wait_for(lambda: self.spooled_now() == 60, 10, "the new pool to adopt every segment")
        self.relay.up()
        self.wait_forwarded()
        self.assertEqual(sorted(self.queued_ids(60)), sorted(i for _, i in ids))

    def test_damaged_record_is_set_aside_and_the_rest_forwarded(self):
        self.relay.cut()
        answers = [post_event(self.PORT, self.type, {"n": n}) for n in range(3)]
        self.assertEqual([a[0] for a in answers], [202] * 3)
        self.stop_master()
        # the second event's payload, in whichever worker's segment it is
        for name in os.listdir(self.spool):
            path = os.path.join(self.spool, name)
            data = bytearray(open(path, "rb").read())
            if b'{"n":1}' in data:
                data[data.index(b'{"n":1}') + 5] ^= 0x01
                open(path, "wb").write(bytes(data))
        self.start_master()
        self.relay.up()
        self.wait_forwarded()
        got = self.queued_ids(2)
        self.assertEqual(sorted(got), sorted([answers[0][2]["event_id"],
                                              answers[2][2]["event_id"]]))
        self.assertEqual(value(self.metrics(), "bloodbank_spool_set_aside_total"), 1)
        self.assertEqual(len(os.listdir(os.path.join(self.spool, "aside"))), 1)
        self.assertIn("was set aside", self.master_log())
        self.assertRegex(self.doctor_line(), r"^\[FAIL\] spool: 1 damaged record set aside "
                         r"in %s/aside: events answered 202" % self.spool)


class ZzSpoolBoundTest(SpoolCase):
    """SPOOL_MAX_BYTES: beyond it, 503 as without a spool."""

    MAX_BYTES = 2000

    def test_a_full_spool_answers_503(self):
        self.relay.cut()
        answers = [post_event(self.PORT, self.type, {"fill": "x" * 100})
                   for _ in range(12)]
        statuses = [a[0] for a in answers]
        self.assertIn(202, statuses)
        self.assertIn(503, statuses)
        self.assertEqual(statuses, sorted(statuses), "202s, then 503s")
        for s, h, doc in answers:
            if s == 503:
                self.assertEqual(doc["error"], "broker_unavailable")
                self.assertIsNone(h.get("Bloodbank-Delivery"))
        spooled = [doc["event_id"] for s, _, doc in answers if s == 202]
        total = sum(os.path.getsize(os.path.join(self.spool, n))
                    for n in os.listdir(self.spool))
        self.assertLessEqual(total, self.MAX_BYTES)
        # said at most once a minute by each worker, not once an event
        self.assertIn("is full", self.master_log())
        self.assertLessEqual(self.master_log().count("is full"), self.WORKERS)
        self.relay.up()
        self.wait_forwarded()
        self.assertEqual(sorted(self.queued_ids(len(spooled))), sorted(spooled))


class ZzSpoolUnwritableTest(SpoolCase):
    """A SPOOL_DIR that cannot be used: 503 as without a spool, said in the
    log once a minute, never a 202."""

    SPOOL_SUBDIR = "missing"

    def test_an_unusable_spool_answers_503(self):
        self.relay.cut()
        answers = [post_event(self.PORT, self.type, {"n": n}) for n in range(4)]
        self.assertEqual({(a[0], a[2]["error"]) for a in answers},
                         {(503, "broker_unavailable")})
        log = self.master_log()
        self.assertIn("cannot open a segment", log)
        # each worker says it once
        self.assertLessEqual(log.count("cannot open a segment"), self.WORKERS)
        self.relay.up()
        self.assertEqual(self.consumer.drain(1.5), [])


class ZzSpoolDiskFullTest(SpoolCase):
    """A disk that fills (a 64 KiB tmpfs): 503 as without a spool once an
    append fails, said once a minute, and nothing of a failed append is
    ever published."""

    TMPFS_BYTES = 64 * 1024

    def test_a_full_disk_answers_503_and_publishes_nothing_of_it(self):
        self.relay.cut()
        answers = [post_event(self.PORT, self.type, {"fill": "y" * 200, "n": n})
                   for n in range(300)]
        statuses = [a[0] for a in answers]
        self.assertIn(202, statuses)
        self.assertEqual(statuses[-50:], [503] * 50)
        for s, h, doc in answers:
            if s == 503:
                self.assertEqual(doc["error"], "broker_unavailable")
        log = self.master_log()
        self.assertIn("cannot append: No space left on device", log)
        self.assertLessEqual(log.count("cannot append"), self.WORKERS)
        spooled = [doc["event_id"] for s, _, doc in answers if s == 202]
        self.relay.up()
        self.wait_forwarded()
        self.assertEqual(sorted(self.queued_ids(len(spooled))), sorted(spooled))
