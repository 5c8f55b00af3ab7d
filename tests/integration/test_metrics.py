"""GET /metrics (CONTRACT §4.9), the DOT answer of the chain (§4.8), a real
Prometheus scraping the stack, and worker logs reaching syslog.

The pool totals are checked in the three ways a pool is spawned: lighttpd
bin-path (the stack), spawn-fcgi and the pre-fork master (started here, on
the stack's broker and Redis, each with its own METRICS_PATH, and spoken to
over FastCGI directly). Ports of things started here: BB_TEST_PORT_BASE
(23900) and up.
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request
import uuid

import requests

import bbtest
from bbtest import BBTestCase, get, post

PROMPT = "/events/llm/prompt"
PORT_BASE = int(os.environ.get("BB_TEST_PORT_BASE", "23900"))
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LINE_RE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def parse(text):
    """Exposition text -> {(name, ((label, value), ...)): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE_RE.match(line)
        if not m:
            raise AssertionError("not an exposition line: %r" % line)
        labels = tuple(sorted(re.findall(r'([a-z_]+)="([^"]*)"', m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(metrics, name, **labels):
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape():
    resp = get("/metrics")
    if resp.status_code != 200:
        raise AssertionError("GET /metrics: %d %r" % (resp.status_code, resp.content[:300]))
    return parse(resp.content.decode("utf-8"))


def published(m):
    return value(m, "bloodbank_events_total", outcome="published")


def publish_many(n, threads=8, path=PROMPT):
    """n publishes from several connections at once; returns the statuses."""
    statuses = []
    lock = threading.Lock()
    per = [n // threads + (1 if k < n % threads else 0) for k in range(threads)]

    def run(count):
        for i in range(count):
            s = post(path, json.dumps({"prompt": "metrics %d" % i})).status_code
            with lock:
                statuses.append(s)
    ts = [threading.Thread(target=run, args=(c,)) for c in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return statuses


def stack_pid(name):
    with open(os.path.join(bbtest.BB_STATE_DIR, name)) as f:
        return int(f.read().strip())


def stack_workers():
    """Pids of the stack's workers: lighttpd's children."""
    out = subprocess.run(["pgrep", "-P", str(stack_pid("lighttpd.pid"))],
                         stdout=subprocess.PIPE).stdout.decode()
    return [int(p) for p in out.split()]


def stack_env():
    """The workers' environment as scripts/stack.sh wrote it."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    with open(os.path.join(bbtest.BB_STATE_DIR, "bloodbank.env")) as f:
        for line in f:
            m = re.match(r"^export ([A-Z_]+)=(.*)$", line.strip())
            if m:
                v = m.group(2)
                env[m.group(1)] = subprocess.run(["bash", "-c", "printf %s " + v],
                                                 stdout=subprocess.PIPE).stdout.decode()
    return env


def requests_status(url):
    """The status of GET url, or None when nothing answers."""
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return None


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


# ------------------------------------------------------------------ FastCGI

def fcgi_message(method, path, body=b"", keep=False, headers=None):
    """One FastCGI request's records (FastCGI spec §3, §5); keep sets
    FCGI_KEEP_CONN, as nginx's fastcgi_keep_conn does; headers become
    HTTP_* parameters, as a web server passes them."""
    def record(rtype, content):
        return struct.pack(">BBHHBx", 1, rtype, 1, len(content), 0) + content

    def pairs(params):
        out = b""
        for k, v in params.items():
            k, v = k.encode(), v.encode()
            out += bytes([len(k)]) + (bytes([len(v)]) if len(v) < 128
                                      else struct.pack(">I", len(v) | 0x80000000)) + k + v
        return out
    params = {"REQUEST_METHOD": method, "REQUEST_URI": path, "SCRIPT_NAME": path,
              "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1"}
    if body:
        params["CONTENT_TYPE"] = "application/json"
        params["CONTENT_LENGTH"] = str(len(body))
    for name, v in (headers or {}).items():
        params["HTTP_" + name.upper().replace("-", "_")] = v
    msg = (record(1, struct.pack(">HBxxxxx", 1, 1 if keep else 0)) + record(4, pairs(params))
           + record(4, b""))
    if body:
        msg += record(5, body)
    return msg + record(5, b"")


def fcgi_answer(data, head_out=None):
    """(status, body bytes, rest) from a FastCGI answer's records; rest is
    what follows its FCGI_END_REQUEST, or None when that has not come. The
    answer's headers go into the dict head_out, if given."""
    out = b""
    while len(data) >= 8:
        _, rtype, _, clen, plen = struct.unpack(">BBHHB", data[:7])
        if len(data) < 8 + clen + plen:
            break
        if rtype == 6:
            out += data[8:8 + clen]
        data = data[8 + clen + plen:]
        if rtype == 3:
            head, _, content = out.partition(b"\r\n\r\n")
            if head_out is not None:
                for line in head.decode().split("\r\n"):
                    name, _, v = line.partition(": ")
                    head_out[name] = v
            return int(re.search(rb"Status: (\d+)", head).group(1)), content, data
    return None, out, None


def fcgi_call(port, method, path, body=b"", headers=None, timeout=10):
    """One FastCGI request on a connection of its own -> (status, answer
    headers, body bytes)."""
    head = {}
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(fcgi_message(method, path, body, headers=headers))
        status, content, _ = fcgi_answer(bbtest.read_to_eof(s), head)
    if status is None:
        raise AssertionError("the FastCGI answer ended early: %r" % content[:300])
    return status, head, content


def fcgi_request(port, method, path, body=b"", timeout=10):
    """One FastCGI request on a connection of its own -> (status, body bytes)."""
    status, _, content = fcgi_call(port, method, path, body, timeout=timeout)
    return status, content


def fcgi_kept_request(sock, method, path, body=b""):
    """One request on a kept connection -> (status, body bytes); the
    connection stays open unless the worker closes it."""
    sock.sendall(fcgi_message(method, path, body, keep=True))
    data = b""
    while True:
        status, content, rest = fcgi_answer(data)
        if status is not None:
            if rest:
                raise AssertionError("bytes after FCGI_END_REQUEST: %r" % rest[:100])
            return status, content
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("the worker closed a kept connection mid-answer")
        data += chunk


def fcgi_scrape(port):
    status, content = fcgi_request(port, "GET", "/metrics")
    if status != 200:
        raise AssertionError("GET /metrics over FastCGI: %d %r" % (status, content[:300]))
    return parse(content.decode())


def fcgi_publish_many(port, n, threads=4):
    statuses = []
    lock = threading.Lock()

    def run(count):
        for i in range(count):
            s, _ = fcgi_request(port, "POST", PROMPT, json.dumps({"prompt": "fcgi %d" % i}).encode())
            with lock:
                statuses.append(s)
    ts = [threading.Thread(target=run, args=(n // threads + (k < n % threads),))
          for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return statuses


def load_through_reload(master, log_path, clients, post, timeout):
    """clients threads call post(client, i) -> status in a loop while the
    master, sent SIGHUP a second in, replaces its workers ("reload done" in
    log_path within timeout seconds), and for a second more.
    Returns (statuses, repr of each exception: a reset, an answer cut short)."""
    done = threading.Event()
    answers, broken = [], []

    def client(c):
        i = 0
        while not done.is_set():
            try:
                answers.append(post(c, i))
            except Exception as e:
                broken.append(repr(e))
            i += 1
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        master.send_signal(signal.SIGHUP)
        with open(log_path, "rb") as f:
            wait_for(lambda: b"reload done" in f.read() or f.seek(0), timeout, "reload done")
        time.sleep(1)
    finally:
        done.set()
        for t in threads:
            t.join(30)
    return answers, broken


# ------------------------------------------------------------------ tests

class MetricsTest(BBTestCase):

    def test_metrics_is_prometheus_text_that_promtool_accepts(self):
        resp = get("/metrics")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.headers.get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        self.assertContentLength(resp)
        r = subprocess.run(["promtool", "check", "metrics"], input=resp.content,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        m = parse(resp.content.decode())
        self.assertEqual(value(m, "bloodbank_build_info", version="0.2.0"), 1)

    def test_ten_scrapes_after_n_publishes_all_show_exactly_n(self):
        before = published(scrape())
        n = 60
        statuses = publish_many(n)
        self.assertEqual(statuses, [200] * n)
        for i in range(10):
            with self.subTest(scrape=i):
                m = scrape()
                self.assertEqual(published(m), before + n)
                self.assertEqual(value(m, "bloodbank_workers"), int(os.environ.get("BB_WORKERS", "4")))

    def test_histogram_counts_every_published_event(self):
        m0 = scrape()
        publish_many(5, threads=1)
        m1 = scrape()
        count = value(m1, "bloodbank_publish_duration_seconds_count")
        self.assertEqual(count - value(m0, "bloodbank_publish_duration_seconds_count"), 5)
        self.assertEqual(value(m1, "bloodbank_publish_duration_seconds_bucket", le="+Inf"), count)
        self.assertEqual(count, published(m1))
        self.assertGreater(value(m1, "bloodbank_publish_duration_seconds_sum"),
                           value(m0, "bloodbank_publish_duration_seconds_sum"))

    def test_rejected_events_and_request_codes_are_counted(self):
        m0 = scrape()
        self.assertEqual(post(PROMPT, b'{"model":"no prompt"}').status_code, 422)
        self.assertEqual(post(PROMPT, b'{"prompt":', ).status_code, 400)
        m1 = scrape()
        d = lambda name, **l: value(m1, name, **l) - value(m0, name, **l)  # noqa: E731
        self.assertEqual(d("bloodbank_events_total", outcome="rejected"), 2)
        self.assertEqual(d("bloodbank_http_requests_total", route="prompt", code="422"), 1)
        self.assertEqual(d("bloodbank_http_requests_total", route="prompt", code="400"), 1)
        self.assertEqual(d("bloodbank_events_total", outcome="published"), 0)

    def test_batch_counts_one_per_event(self):
        m0 = scrape()
        items = [{"event_type": "metrics.batch", "payload": {"k": k}} for k in range(3)]
        items.append({"event_type": "metrics.batch"})
        resp = post("/events/batch", json.dumps(items))
        self.assertEqual(resp.status_code, 207, resp.content)
        m1 = scrape()
        d = lambda name, **l: value(m1, name, **l) - value(m0, name, **l)  # noqa: E731
        self.assertEqual(d("bloodbank_events_total", outcome="published"), 3)
        self.assertEqual(d("bloodbank_events_total", outcome="rejected"), 1)
        self.assertEqual(d("bloodbank_http_requests_total", route="batch", code="207"), 1)

    def test_tracking_writes_of_a_burst_are_counted_once_the_workers_are_idle(self):
        # a record's reply is read by the worker's next request, or on its
        # idle tick: without the tick the last burst's stay unread
        time.sleep(2.5)    # the tests before settle first
        m0 = scrape()
        n = 30
        self.assertEqual(publish_many(n), [200] * n)
        time.sleep(2.5)
        m1 = scrape()
        self.assertEqual(value(m1, "bloodbank_tracking_writes_total", outcome="ok")
                         - value(m0, "bloodbank_tracking_writes_total", outcome="ok"), n)

    def test_replays_are_counted(self):
        key = "metrics-%s" % uuid.uuid4().hex
        m0 = scrape()
        for _ in range(2):
            self.assertEqual(post(PROMPT, b'{"prompt":"again"}',
                                  headers={"Idempotency-Key": key}).status_code, 200)
        m1 = scrape()
        self.assertEqual(value(m1, "bloodbank_events_total", outcome="replayed")
                         - value(m0, "bloodbank_events_total", outcome="replayed"), 1)
        self.assertEqual(published(m1) - published(m0), 1)

    def test_scrapes_and_other_routes_are_labelled(self):
        m0 = scrape()
        get("/healthz")
        get("/nowhere")
        m1 = scrape()
        for route, code in (("metrics", "200"), ("healthz", "200"), ("none", "404")):
            with self.subTest(route=route):
                self.assertEqual(value(m1, "bloodbank_http_requests_total", route=route, code=code)
                                 - value(m0, "bloodbank_http_requests_total", route=route,
                                         code=code), 1)

    def test_gauges_show_the_connections_held(self):
        publish_many(8)
        m = scrape()
        self.assertGreaterEqual(value(m, "bloodbank_broker_connected"), 1)
        self.assertLessEqual(value(m, "bloodbank_broker_connected"), value(m, "bloodbank_workers"))
        self.assertGreaterEqual(value(m, "bloodbank_redis_connected"), 1)
        self.assertEqual(value(m, "bloodbank_broker_blocked"), 0)


class DotChainTest(BBTestCase):

    def test_chain_as_dot_is_a_digraph_that_dot_draws(self):
        root = post(PROMPT, b'{"prompt":"dot root"}').json()["event_id"]
        child = post("/events/llm/response",
                     json.dumps({"response": "r", "prompt_id": root})).json()["event_id"]
        grandchild = post("/events/test.dot", b"{}",
                          headers={"X-Correlation-Ids": child}).json()["event_id"]
        resp = get("/debug/correlation/%s/chain?direction=descendants&format=dot" % root)
        self.assertEqual(resp.status_code, 200, resp.content)
        self.assertEqual(resp.headers.get("Content-Type"), "text/vnd.graphviz; charset=utf-8")
        self.assertContentLength(resp)
        text = resp.content.decode()
        self.assertTrue(text.startswith("digraph "), text)
        self.assertIn('"%s" -> "%s";' % (root, child), text)
        self.assertIn('"%s" -> "%s";' % (child, grandchild), text)
        self.assertRegex(text, r'"%s" \[label="llm\.prompt\\n\d{4}-[^"]*", style="rounded,filled,bold"'
                         % root)
        r = subprocess.run(["dot", "-Tsvg"], input=resp.content, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn(b"<svg", r.stdout)
        up = get("/debug/correlation/%s/chain?direction=ancestors&format=dot" % grandchild)
        self.assertIn('"%s" -> "%s";' % (root, child), up.content.decode())

    def test_unknown_format_is_400(self):
        eid = post(PROMPT, b'{"prompt":"dot"}').json()["event_id"]
        self.assertError(get("/debug/correlation/%s/chain?format=png" % eid), 400,
                         "invalid_request")


class ZzMetricsKilledWorkerTest(BBTestCase):
    """SIGKILL every worker of the stack: lighttpd starts new ones, which
    adopt the dead workers' slots; no count is lost."""

    def test_killed_workers_counts_are_kept(self):
        publish_many(20)
        before = scrape()
        victims = stack_workers()
        self.assertTrue(victims)
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: get("/healthz").status_code == 200 and
                 not set(stack_workers()) & set(victims), 20, "new workers")
        after = scrape()
        for key in ("published", "rejected", "replayed"):
            with self.subTest(outcome=key):
                self.assertEqual(value(after, "bloodbank_events_total", outcome=key),
                                 value(before, "bloodbank_events_total", outcome=key))
        self.assertGreater(value(after, "bloodbank_worker_starts_total"),
                           value(before, "bloodbank_worker_starts_total"))
        publish_many(4)
        self.assertEqual(published(scrape()), published(before) + 4)


class ZzMetricsFailureOutcomesTest(BBTestCase):
    """Failures counted by outcome: tracking timeouts with Redis stopped
    (SIGSTOP), unavailable with the broker stopped."""

    def test_tracking_timeouts_are_counted_with_redis_stopped(self):
        pid = stack_pid("redis/redis.pid")
        m0 = scrape()
        os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(6):
                self.assertEqual(post(PROMPT, b'{"prompt":"redis stopped"}').status_code, 200)
            m1 = scrape()
        finally:
            os.kill(pid, signal.SIGCONT)
        d = lambda o: (value(m1, "bloodbank_tracking_writes_total", outcome=o)  # noqa: E731
                       - value(m0, "bloodbank_tracking_writes_total", outcome=o))
        self.assertGreaterEqual(d("timeout"), 1)
        # each write counted once; a reply is read by the worker's next
        # tracking call, so one write may fall on either side of a scrape
        self.assertIn(d("ok") + d("timeout") + d("skipped") + d("error"), (5, 6, 7))
        self.assertEqual(published(m1) - published(m0), 6)

    def test_unavailable_is_counted_and_gauges_drop_with_the_broker_stopped(self):
        publish_many(8)
        self.assertGreaterEqual(value(scrape(), "bloodbank_broker_connected"), 1)
        bbtest.stack("stop-rabbit")
        try:
            # no traffic: each connected worker sees the broker close
            wait_for(lambda: value(scrape(), "bloodbank_broker_connected") == 0, 15,
                     "bloodbank_broker_connected 0")
            m0 = scrape()
            resp = post(PROMPT, b'{"prompt":"broker stopped"}', timeout=15)
            self.assertEqual(resp.status_code, 503, resp.content)
            m1 = scrape()
        finally:
            bbtest.stack("start-rabbit")
        self.assertEqual(value(m1, "bloodbank_events_total", outcome="unavailable")
                         - value(m0, "bloodbank_events_total", outcome="unavailable"), 1)
        self.assertGreaterEqual(value(m1, "bloodbank_broker_connections_total", result="failed"),
                                value(m0, "bloodbank_broker_connections_total", result="failed") + 1)
        wait_for(lambda: post(PROMPT, b'{"prompt":"back"}').status_code == 200, 30,
                 "publishing again")


class PoolCase(BBTestCase):
    """A pool of 4 workers started here on the stack's broker and Redis."""

    WORKERS = 4

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bb-metrics-pool-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.env = stack_env()
        self.env["METRICS_PATH"] = os.path.join(self.dir, "metrics")
        self.env["LOG_TARGET"] = "stderr"

    def wait_pool(self, port):
        wait_for(lambda: self._workers(port) == self.WORKERS, 20, "%d workers" % self.WORKERS)

    def _workers(self, port):
        try:
            return value(fcgi_scrape(port), "bloodbank_workers")
        except OSError:
            return 0


class ZzMasterReloadTest(PoolCase):

    def test_master_pool_totals_survive_a_reload_and_a_killed_worker(self):
        port = PORT_BASE + 1
        log = open(os.path.join(self.dir, "master.log"), "wb")
        self.addCleanup(log.close)
        master = subprocess.Popen([os.path.join(REPO, "src", "bloodbank"), "--workers",
                                   str(self.WORKERS), "--listen", "127.0.0.1:%d" % port],
                                  env=self.env, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            master.terminate()
            master.wait(20)
        self.addCleanup(stop)
        self.wait_pool(port)
        self.assertEqual(fcgi_publish_many(port, 40), [200] * 40)
        for _ in range(10):
            self.assertEqual(published(fcgi_scrape(port)), 40)
        def children():
            return [int(p) for p in subprocess.run(["pgrep", "-P", str(master.pid)],
                                                   stdout=subprocess.PIPE).stdout.split()]
        victim = children()[0]
        os.kill(victim, signal.SIGKILL)
        self.assertEqual(published(fcgi_scrape(port)), 40)
        wait_for(lambda: len(children()) == self.WORKERS and victim not in children(), 10,
                 "the master to replace the killed worker")
        self.wait_pool(port)
        master.send_signal(signal.SIGHUP)
        with open(os.path.join(self.dir, "master.log"), "rb") as f:
            wait_for(lambda: b"reload done" in f.read() or f.seek(0), 30, "reload done")
        self.wait_pool(port)
        m = fcgi_scrape(port)
        self.assertEqual(published(m), 40)
        # 4 first starts, 1 replacement, 4 by the reload
        self.assertEqual(value(m, "bloodbank_worker_starts_total"), 9)
        self.assertEqual(fcgi_publish_many(port, 8), [200] * 8)
        self.assertEqual(published(fcgi_scrape(port)), 48)


class ZzMasterReloadUnderLoadTest(PoolCase):
    """SIGHUP and then SIGTERM to the master while clients keep posting: a
    worker being replaced stops taking requests while one would still fit
    before its kill, so no request is cut short by a SIGKILL."""

    def test_a_reload_under_load_cuts_no_request(self):
        port = PORT_BASE + 6
        path = os.path.join(self.dir, "master.log")
        log = open(path, "wb")
        self.addCleanup(log.close)
        master = subprocess.Popen([os.path.join(REPO, "src", "bloodbank"), "--workers",
                                   str(self.WORKERS), "--listen", "127.0.0.1:%d" % port],
                                  env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: master.poll() is None and (master.kill(), master.wait()))
        self.wait_pool(port)
        def post(c, i):
            return fcgi_request(port, "POST", PROMPT, json.dumps(
                {"prompt": "reload %d %d" % (c, i)}).encode())[0]
        answers, broken = load_through_reload(master, path, 2 * self.WORKERS, post, 40)
        master.terminate()
        self.assertEqual(master.wait(30), 0)
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        self.assertEqual(broken, [], text[-2000:])
        self.assertTrue(answers)
        self.assertEqual(set(answers), {200})
        self.assertNotIn("killing it", text)


class ZzKeptConnectionTest(PoolCase):
    """nginx's fastcgi_keep_conn: the web server keeps a FastCGI connection
    open between requests. The worker watches it beside its other work, so
    an idle kept connection never stops it answering others; stopping, it
    answers on its kept connections until the web server closes them."""

    WORKERS = 1

    def test_kept_connections_are_served_beside_new_ones_and_closed_on_stop(self):
        port = PORT_BASE + 7
        path = os.path.join(self.dir, "master.log")
        log = open(path, "wb")
        self.addCleanup(log.close)
        master = subprocess.Popen([os.path.join(REPO, "src", "bloodbank"), "--workers",
                                   str(self.WORKERS), "--listen", "127.0.0.1:%d" % port],
                                  env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: master.poll() is None and (master.kill(), master.wait()))
        self.wait_pool(port)

        def body(n):
            return json.dumps({"prompt": "kept %d" % n}).encode()
        kept = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(kept.close)
        self.assertEqual(fcgi_kept_request(kept, "POST", PROMPT, body(1))[0], 200)
        # kept and idle: a new connection is answered all the same
        self.assertEqual(fcgi_request(port, "POST", PROMPT, body(2), timeout=5)[0], 200)
        self.assertEqual(fcgi_kept_request(kept, "POST", PROMPT, body(3))[0], 200)
        other = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(other.close)
        self.assertEqual(fcgi_kept_request(other, "GET", "/healthz")[0], 200)
        self.assertEqual(fcgi_kept_request(kept, "POST", PROMPT, body(4))[0], 200)
        self.assertEqual(published(fcgi_scrape(port)), 4)

        master.terminate()
        time.sleep(0.5)
        # stopping, it answers on a kept connection and keeps it: only the
        # web server closes one, so that it never sends into a closed one
        self.assertEqual(fcgi_kept_request(kept, "POST", PROMPT, body(5))[0], 200)
        self.assertEqual(fcgi_kept_request(other, "GET", "/healthz")[0], 200)
        self.assertIsNone(master.poll(), "the worker waits for the web server "
                          "to close its kept connections")
        kept.close()
        time.sleep(0.5)
        self.assertIsNone(master.poll())
        other.close()
        self.assertEqual(master.wait(5), 0)
        with open(path, "rb") as f:
            self.assertNotIn(b"killing it", f.read())


class ZzNginxKeptReloadUnderLoadTest(PoolCase):
    """nginx in front of the master with fastcgi_keep_conn and an upstream
    keepalive, as the shipped site: while clients keep posting, a SIGHUP
    replaces every worker. A stopping worker answers on its kept
    connections until nginx closes them (its upstream keepalive_timeout and
    keepalive_time are shorter than the drain), so nginx never writes a
    request into a connection the worker has closed: no 502, no SIGKILL."""

    def test_a_reload_behind_nginx_keep_alive_loses_no_request(self):
        port = PORT_BASE + 8
        sock = os.path.join(self.dir, "master.sock")
        path = os.path.join(self.dir, "master.log")
        log = open(path, "wb")
        self.addCleanup(log.close)
        master = subprocess.Popen([os.path.join(REPO, "src", "bloodbank"), "--workers",
                                   str(self.WORKERS), "--listen", "unix:" + sock,
                                   "--socket-mode", "0666"],
                                  env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: master.poll() is None and (master.kill(), master.wait()))
        wait_for(lambda: os.path.exists(sock), 10, "the master's socket")
        os.chmod(self.dir, 0o755)  # for nginx's workers
        for d in ("body", "fastcgi"):
            os.mkdir(os.path.join(self.dir, d))
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""worker_processes 2;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx-error.log;
events { worker_connections 256; }
http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/body;
    fastcgi_temp_path %(dir)s/fastcgi;
    upstream bloodbank {
        server unix:%(sock)s; keepalive 8; keepalive_timeout 4s; keepalive_time 5s;
    }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            fastcgi_pass bloodbank;
            fastcgi_keep_conn on;
            include /etc/nginx/fastcgi_params;
        }
    }
}
""" % {"dir": self.dir, "sock": sock, "port": port})
        subprocess.run(["nginx", "-c", conf], check=True)
        self.addCleanup(lambda: subprocess.run(["nginx", "-c", conf, "-s", "stop"],
                                               stderr=subprocess.DEVNULL))
        url = "http://127.0.0.1:%d" % port
        wait_for(lambda: requests_status(url + "/healthz") == 200, 20, "nginx and the pool")

        sessions = {}

        def post(c, i):
            session = sessions.setdefault(c, requests.Session())
            return session.post(url + PROMPT, timeout=15,
                                json={"prompt": "nginx reload %d %d" % (c, i)}).status_code
        answers, broken = load_through_reload(master, path, 8, post, 60)
        kept = subprocess.run(["ss", "-x", "-H", "src", sock], stdout=subprocess.PIPE,
                              universal_newlines=True).stdout.splitlines()
        master.terminate()
        self.assertEqual(master.wait(30), 0)
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        with open(os.path.join(self.dir, "nginx-error.log"), "rb") as f:
            nginx_errors = f.read().decode("utf-8", "replace")
        self.assertEqual(broken, [], text[-2000:])
        self.assertTrue(answers)
        self.assertEqual(set(answers), {200}, (sorted(set(answers)), nginx_errors[-2000:]))
        self.assertNotIn("killing it", text)
        self.assertTrue(kept, "nginx keeps its FastCGI connections open between requests")


class ZzMasterKilledTest(PoolCase):
    """A master that dies by SIGKILL cannot stop its workers; the kernel
    tells them (PR_SET_PDEATHSIG), and they stop as on SIGTERM instead of
    serving on without a master."""

    WORKERS = 2

    def test_the_workers_of_a_killed_master_stop(self):
        port = PORT_BASE + 9
        log = open(os.path.join(self.dir, "master.log"), "wb")
        self.addCleanup(log.close)
        master = subprocess.Popen([os.path.join(REPO, "src", "bloodbank"), "--workers",
                                   str(self.WORKERS), "--listen", "127.0.0.1:%d" % port],
                                  env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.wait_pool(port)
        workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(master.pid)],
                                                  stdout=subprocess.PIPE).stdout.split()]
        self.assertEqual(len(workers), self.WORKERS)
        self.addCleanup(lambda: [os.kill(w, signal.SIGKILL) for w in workers
                                 if os.path.exists("/proc/%d" % w)])
        master.kill()
        master.wait()

        def gone():
            return not any(os.path.exists("/proc/%d" % w) and
                           open("/proc/%d/stat" % w).read().split()[2] != "Z"
                           for w in workers)
        wait_for(gone, 15, "the workers of the killed master to stop")
        with open(os.path.join(self.dir, "master.log"), "rb") as f:
            self.assertEqual(f.read().count(b"worker stopping"), self.WORKERS)


class ZzSpawnFcgiTest(PoolCase):

    def test_spawn_fcgi_pool_totals_across_its_workers(self):
        port = PORT_BASE + 2
        r = subprocess.run(["spawn-fcgi", "-a", "127.0.0.1", "-p", str(port), "-F",
                            str(self.WORKERS), "--", os.path.join(REPO, "src", "bloodbank")],
                           env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        pids = [int(p) for p in re.findall(rb"PID: (\d+)", r.stdout)]

        def stop():
            for p in pids:
                try:
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        self.addCleanup(stop)
        self.assertEqual(len(pids), self.WORKERS, r.stdout)
        self.wait_pool(port)
        self.assertEqual(fcgi_publish_many(port, 40, threads=8), [200] * 40)
        for _ in range(10):
            self.assertEqual(published(fcgi_scrape(port)), 40)
        os.kill(pids[0], signal.SIGKILL)  # spawn-fcgi does not replace it
        wait_for(lambda: self._workers(port) == self.WORKERS - 1, 10, "3 workers")
        self.assertEqual(published(fcgi_scrape(port)), 40)


class PrometheusScrapeTest(BBTestCase):
    """Debian's prometheus scrapes the stack every second."""

    def test_prometheus_sees_exactly_the_published_events(self):
        if shutil.which("prometheus") is None:
            self.fail("prometheus is not installed (scripts/deps.sh installs it)")
        port = PORT_BASE + 3
        d = tempfile.mkdtemp(prefix="bb-prometheus-")
        self.addCleanup(shutil.rmtree, d, True)
        target = urllib.parse.urlparse(bbtest.BB_URL).netloc
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files: [%s]\n"
                    "scrape_configs:\n  - job_name: bloodbank\n"
                    "    static_configs:\n      - targets: ['%s']\n"
                    % (os.path.join(REPO, "etc", "prometheus", "bloodbank-alerts.yml"), target))
        log = open(os.path.join(d, "prometheus.log"), "wb")
        self.addCleanup(log.close)
        prom = subprocess.Popen(["prometheus", "--config.file", os.path.join(d, "prometheus.yml"),
                                 "--storage.tsdb.path", os.path.join(d, "data"),
                                 "--web.listen-address", "127.0.0.1:%d" % port],
                                stdout=log, stderr=subprocess.STDOUT)

        def stop():
            prom.terminate()
            prom.wait(20)
        self.addCleanup(stop)

        def query(q):
            url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(q))
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    res = json.load(r)["data"]["result"]
            except OSError:
                return None
            return float(res[0]["value"][1]) if res else None

        q = 'sum(bloodbank_events_total{outcome="published"})'
        wait_for(lambda: query(q) is not None, 60, "prometheus's first scrape")
        before = published(scrape())
        n = 30
        self.assertEqual(publish_many(n), [200] * n)
        wait_for(lambda: query(q) == before + n, 30, "prometheus to see %d" % (before + n))
        self.assertEqual(query("sum(bloodbank_workers)"), int(os.environ.get("BB_WORKERS", "4")))
        self.assertEqual(query("up"), 1)


class ZzSyslogTest(BBTestCase):
    """LOG_TARGET=syslog: a worker's line reaches rsyslog (syslog_check.sh)."""

    def test_tracking_timeout_line_reaches_rsyslog(self):
        for tool in ("rsyslogd", "unshare"):
            if shutil.which(tool) is None:
                self.fail("%s is not installed (scripts/deps.sh installs it)" % tool)
        r = subprocess.run(["bash", os.path.join(HERE, "syslog_check.sh"), bbtest.BB_STATE_DIR,
                            str(PORT_BASE + 4), str(PORT_BASE + 5)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout.decode())
