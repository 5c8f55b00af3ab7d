"""The operator's subcommands (CONTRACT §11.1): `bloodbank emit` and
`bloodbank trace`, run as an operator runs them, with the workers'
configuration (the stack's bloodbank.env), against the stack's broker and
Redis."""

import json
import os
import pty
import re
import select
import subprocess
import time
import uuid

import pika

import bbtest
from bbtest import BBTestCase, Consumer, get
from test_metrics import REPO, stack_env



def stack_binary():
    """The stack's own bloodbank (the sanitizer build in its passes)."""
    try:
        with open(os.path.join(bbtest.BB_STATE_DIR, "stack.env")) as f:
            for line in f:
                if line.startswith("BB_BIN="):
                    return line.strip().split("=", 1)[1]
    except (OSError, TypeError):
        pass
    return os.path.join(REPO, "src", "bloodbank")


BIN = stack_binary()
LINE = re.compile(r"^( *)(\* |↑ |↓ )(\S+)  (\S+Z)  ([0-9a-f-]{36})(  \(start\))?(  \(again: shown above\))?$")


def cli(*args, stdin=None, env=None, timeout=30):
    """Runs `bloodbank ARGS...` -> (exit status, stdout, stderr)."""
    r = subprocess.run([BIN] + list(args), input=stdin, env=env or stack_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       universal_newlines=True)
    return r.returncode, r.stdout, r.stderr


def read_pty(fd):
    """What a command wrote to its terminal until it closed it (20 s at most
    between writes)."""
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 20)
        if not ready:
            return out
        try:
            chunk = os.read(fd, 4096)
        except OSError:     # EIO: the command has exited
            return out
        if not chunk:
            return out
        out += chunk


def emit(*args, **kw):
    rc, out, err = cli("emit", *args, **kw)
    if rc != 0:
        raise AssertionError("bloodbank emit %s: %d %s" % (args, rc, err))
    return json.loads(out)


class EmitTest(BBTestCase):

    def test_emit_publishes_the_document_it_prints(self):
        c = Consumer()
        rc, out, err = cli("emit", "cli.order", '{"order": 7}')
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        doc = json.loads(out)
        self.assertEqual(doc["event_type"], "cli.order")
        self.assertEqual(doc["payload"], {"order": 7})
        (method, props, body), = c.receive(1)
        self.assertEqual(json.loads(body), doc)
        self.assertEqual(props.message_id, doc["event_id"])
        self.assertEqual(method.routing_key, "cli.order")
        # tracked as a publish through HTTP is, before the command exits
        r = get("/debug/correlation/" + doc["event_id"])
        self.assertEqual(r.status_code, 200, r.text)

    def test_emit_reads_the_payload_from_stdin(self):
        c = Consumer()
        doc = emit("cli.order", stdin='{"from": "stdin"}\n')
        self.assertEqual(doc["payload"], {"from": "stdin"})
        self.assertEqual(len(c.receive(1)), 1)

    def test_emit_validates_a_typed_event_as_the_endpoint_does(self):
        c = Consumer()
        rc, out, err = cli("emit", "llm.prompt", '{"model": "m"}')
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        answer = json.loads(err)
        self.assertEqual(answer["error"], "validation_error", err)
        self.assertEqual(answer["fields"][0]["field"], "prompt")
        self.assertNothingPublished(c)

    def test_emit_with_a_key_twice_is_one_event(self):
        c = Consumer()
        key = "cli-" + str(uuid.uuid4())
        first = emit("--key", key, "cli.order", '{"n": 1}')
        again = emit("--key", key, "cli.order", '{"n": 1}')
        self.assertEqual(first["event_id"], again["event_id"])
        self.assertEqual(len(c.drain()), 1)
        rc, _, err = cli("emit", "--key", key, "cli.order", '{"n": 2}')
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(err)["error"], "validation_error", err)

    def test_emit_parents_become_the_correlation_ids(self):
        a = emit("cli.order", "{}")
        b = emit("cli.order", "{}")
        child = emit("--parent", a["event_id"], "--parent", b["event_id"],
                     "cli.shipped", "{}")
        self.assertEqual(child["correlation_ids"], [a["event_id"], b["event_id"]])

    def test_emit_refuses_bad_arguments_and_publishes_nothing(self):
        c = Consumer()
        for args, why in [
            (["--parent", "not-a-uuid", "cli.order", "{}"], "UUID"),
            (["order/placed", "{}"], "event type"),
            ([], "TYPE is missing"),
            (["--nope", "cli.order", "{}"], "usage"),
            (["cli.order", "{}", "extra"], "too many"),
        ]:
            with self.subTest(args=args):
                rc, out, err = cli("emit", *args)
                self.assertEqual(rc, 2, err)
                self.assertEqual(out, "")
                self.assertIn(why, err)
                self.assertIn("usage: bloodbank emit", err)
        rc, out, err = cli("emit", "cli.order", "{not json")
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(err)["error"], "invalid_json", err)
        self.assertNothingPublished(c)

    def test_emit_against_a_broker_that_is_not_there_fails_within_the_budget(self):
        env = stack_env()
        env["RABBIT_URL"] = "amqp://guest:guest@127.0.0.1:1/"
        env["RABBIT_CONNECT_TIMEOUT_MS"] = "1000"
        start = time.monotonic()
        rc, out, err = cli("emit", "cli.order", "{}", env=env)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(err)["error"], "broker_unavailable", err)
        self.assertNotIn("guest", err)

    def test_emit_help_exits_0(self):
        rc, out, _ = cli("emit", "--help")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("usage: bloodbank emit"), out)


class TraceTest(BBTestCase):
    """A lineage: root -> a -> {b, c}; d has parents a and c."""

    @classmethod
    def setUpClass(cls):
        cls.root = emit("trace.root", "{}")["event_id"]
        cls.a = emit("--parent", cls.root, "trace.a", "{}")["event_id"]
        cls.b = emit("--parent", cls.a, "trace.b", "{}")["event_id"]
        cls.c = emit("--parent", cls.a, "trace.c", "{}")["event_id"]
        cls.d = emit("--parent", cls.a, "--parent", cls.c, "trace.d", "{}")["event_id"]

    def lines(self, *args):
        rc, out, err = cli("trace", *args)
        self.assertEqual(rc, 0, err)
        got = []
        for line in out.splitlines():
            m = LINE.match(line)
            self.assertTrue(m, "not a tree line: %r" % line)
            got.append((len(m.group(1)), m.group(2).strip(), m.group(3), m.group(5),
                        bool(m.group(6))))
        return got

    def test_trace_draws_both_directions_from_the_start(self):
        self.assertEqual(self.lines(self.a), [
            (0, "*", "trace.a", self.a, True),
            (2, "↑", "trace.root", self.root, False),
            (2, "↓", "trace.b", self.b, False),
            (2, "↓", "trace.c", self.c, False),
            (4, "↓", "trace.d", self.d, False),
            (2, "↓", "trace.d", self.d, False),
        ])

    def test_trace_descendants_of_the_root_only(self):
        got = self.lines("--descendants", self.root)
        self.assertEqual([(depth, t) for depth, _, t, _, _ in got], [
            (0, "trace.root"), (2, "trace.a"), (4, "trace.b"), (4, "trace.c"),
            (6, "trace.d"), (4, "trace.d")])
        rc, out, _ = cli("trace", "--descendants", self.root)
        self.assertEqual(out.count("again: shown above"), 1, out)

    def test_trace_ancestors_go_up_each_parent(self):
        got = self.lines("--ancestors", self.d)
        self.assertEqual([(depth, t) for depth, _, t, _, _ in got], [
            (0, "trace.d"), (2, "trace.a"), (4, "trace.root"), (2, "trace.c"),
            (4, "trace.a")])

    def test_trace_json_is_the_debug_endpoints_answer(self):
        rc, out, err = cli("trace", "--json", "--ancestors", self.d)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), get("/debug/correlation/%s/chain"
                                              "?direction=ancestors" % self.d).json())
        rc, out, err = cli("trace", "--json", self.a)
        self.assertEqual(json.loads(out), get("/debug/correlation/" + self.a).json())

    def test_trace_dot_draws_both_directions(self):
        rc, out, err = cli("trace", "--dot", self.a)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("digraph"), out[:100])
        for parent, child in [(self.root, self.a), (self.a, self.b), (self.c, self.d)]:
            self.assertIn('"%s" -> "%s"' % (parent, child), out)
        rc, out, err = cli("trace", "--dot", "--descendants", self.b)
        self.assertEqual(out, get("/debug/correlation/%s/chain?direction=descendants"
                                  "&format=dot" % self.b).text)

    def test_trace_refuses_bad_ids_and_names_an_unknown_one(self):
        rc, out, err = cli("trace", "not-a-uuid")
        self.assertEqual(rc, 2)
        self.assertIn("UUID", err)
        rc, out, err = cli("trace", "--ancestors", "--descendants", self.a)
        self.assertEqual(rc, 2)
        unknown = str(uuid.uuid4())
        rc, out, err = cli("trace", unknown)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn("no record of event " + unknown, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_trace_with_redis_unreachable_says_so(self):
        env = stack_env()
        env["REDIS_PORT"] = "1"
        rc, out, err = cli("trace", self.a, env=env)
        self.assertEqual(rc, 1)
        self.assertIn("Redis is unreachable", err)

    def test_a_person_at_a_terminal_sees_the_start_in_bold(self):
        def at_terminal(extra):
            env = stack_env()
            env.update(extra)
            pid, fd = pty.fork()
            if pid == 0:
                os.execve(BIN, [BIN, "trace", self.b], env)
            out = read_pty(fd)
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
            return out.decode()
        seen = at_terminal({"TERM": "xterm"})
        first = seen.splitlines()[0]
        self.assertTrue(first.startswith("\x1b[1m* trace.b"), repr(first))
        self.assertIn("↑ trace.a", seen)
        plain = at_terminal({"TERM": "xterm", "NO_COLOR": "1"})
        self.assertNotIn("\x1b[", plain)
        self.assertTrue(plain.startswith("* trace.b"), repr(plain))
        rc, piped, _ = cli("trace", self.b)
        self.assertNotIn("\x1b[", piped)


def bound(pattern):
    """Whether a queue is bound to the exchange with pattern (rabbitmqctl)."""
    r = subprocess.run(["rabbitmqctl", "-n", os.environ.get("BB_NODE", "bbtest@localhost"),
                        "-q", "list_bindings", "source_name", "routing_key"],
                       stdout=subprocess.PIPE, universal_newlines=True)
    return any(line.split("\t") == [bbtest.BB_EXCHANGE, pattern]
               for line in r.stdout.splitlines())


def wait_bound(pattern, proc):
    deadline = time.monotonic() + 20
    while not bound(pattern):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("tail never bound %s: %r" % (pattern, proc.communicate()))
        time.sleep(0.2)


class TailTest(BBTestCase):

    def start_tail(self, *args, env=None):
        proc = subprocess.Popen([BIN, "tail"] + list(args), env=env or stack_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        return proc

    def test_tail_shows_the_matching_events_one_per_line_and_stops_at_count(self):
        tag = "tail%s" % uuid.uuid4().hex[:8]
        proc = self.start_tail("--count", "3", tag + ".a.*", tag + ".b.#")
        wait_bound(tag + ".b.#", proc)
        first = emit(tag + ".a.one", '{"n": 1}')
        emit(tag + ".a.one.two", "{}")          # * is one word: not shown
        emit(tag + ".c", "{}")                  # no pattern: not shown
        second = emit("--parent", first["event_id"], tag + ".b", '{"long": "%s"}' % ("x" * 200))
        third = emit(tag + ".b.x.y", "{}")
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 3, out)
        for line, doc in zip(lines, [first, second, third]):
            time_, type_, id_ = line.split("  ")[:3]
            self.assertEqual((time_, type_, id_),
                             (doc["timestamp"], doc["event_type"], doc["event_id"]))
        self.assertTrue(lines[0].endswith('  {"n":1}'), lines[0])
        self.assertIn("  parents=%s  " % first["event_id"][:8], lines[1])
        self.assertTrue(lines[1].endswith("…"), lines[1])
        self.assertLess(len(lines[1].encode()), 250)

    def test_tail_json_prints_each_published_document(self):
        tag = "tailjson%s" % uuid.uuid4().hex[:8]
        c = Consumer(tag + ".#")
        proc = self.start_tail("--json", "--count", "2", tag + ".#")
        wait_bound(tag + ".#", proc)
        docs = [emit(tag + ".x", '{"k": %d}' % k) for k in range(2)]
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual([json.loads(line) for line in out.splitlines()], docs)
        # its private queue took nothing from anyone else's
        self.assertEqual(len(c.receive(2)), 2)

    def test_ctrl_c_ends_tail_cleanly_and_its_queue_goes_with_it(self):
        tag = "tailint%s" % uuid.uuid4().hex[:8]
        proc = self.start_tail(tag + ".#")
        wait_bound(tag + ".#", proc)
        proc.send_signal(2)  # SIGINT
        out, err = proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(err, "")
        deadline = time.monotonic() + 10
        while bound(tag + ".#") and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertFalse(bound(tag + ".#"), "the private queue outlived tail")

    def test_tail_refuses_bad_patterns_and_counts(self):
        for args, why in [(["llm..prompt"], "not a topic pattern"),
                          (["LLM.*"], "not a topic pattern"),
                          (["llm.pro*"], "not a topic pattern"),
                          (["--count", "0"], "--count"),
                          (["--count", "x"], "--count"),
                          (["--nope"], "usage")]:
            with self.subTest(args=args):
                rc, out, err = cli("tail", *args)
                self.assertEqual(rc, 2, err)
                self.assertIn(why, err)
                self.assertLessEqual(len(err.strip().splitlines()), 2, err)

    def test_tail_without_a_broker_fails_within_the_budget(self):
        env = stack_env()
        env["RABBIT_URL"] = "amqp://guest:guest@127.0.0.1:1/"
        env["RABBIT_CONNECT_TIMEOUT_MS"] = "1000"
        start = time.monotonic()
        rc, out, err = cli("tail", env=env)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(rc, 1)
        self.assertIn("no broker of RABBIT_URL answered", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertNotIn("guest", err)

    def test_a_person_at_a_terminal_sees_each_type_in_bold(self):
        tag = "tailtty%s" % uuid.uuid4().hex[:8]
        env = stack_env()
        env["TERM"] = "xterm"
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(BIN, [BIN, "tail", "--count", "1", tag + ".#"], env)
        try:
            deadline = time.monotonic() + 20
            while not bound(tag + ".#") and time.monotonic() < deadline:
                time.sleep(0.2)
            doc = emit(tag + ".seen", '{"who": "a person"}')
            out = read_pty(fd)
        finally:
            _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        self.assertEqual(out.decode().rstrip("\r\n"),
                         '%s  \x1b[1m%s\x1b[0m  %s  {"who":"a person"}'
                         % (doc["timestamp"], doc["event_type"], doc["event_id"]))


class ReplayTest(BBTestCase):
    """The archive (ARCHIVE_STREAM) and `bloodbank replay`, on an exchange and
    a stream of this test's own, so that no other test's events are
    archived."""

    @classmethod
    def setUpClass(cls):
        tag = "replay%s" % uuid.uuid4().hex[:8]
        cls.exchange, cls.stream = tag, tag + ".archive"
        cls.env = stack_env()
        cls.env.update(RABBIT_EXCHANGE=cls.exchange, ARCHIVE_STREAM=cls.stream)
        cls.start = time.time()
        time.sleep(1.1)  # the archive is read from whole seconds
        cls.docs = [emit("replay.a", '{"i": %d}' % i, env=cls.env) for i in range(3)]
        cls.docs.append(emit("replay.b", '{"i": 3}', env=cls.env))

    @classmethod
    def tearDownClass(cls):
        ch = pika.BlockingConnection(bbtest.amqp_params()).channel()
        for q in (cls.stream, cls.exchange + ".unrouted"):
            ch.queue_delete(q)
        for x in (cls.exchange, cls.exchange + ".unrouted"):
            ch.exchange_delete(x)

    def consumer(self, exchange=None):
        ch = pika.BlockingConnection(bbtest.amqp_params()).channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q, exchange or self.exchange, "#")
        self.addCleanup(ch.connection.close)

        def received(wait=1.0):
            time.sleep(wait)
            got = []
            while True:
                m, props, body = ch.basic_get(q, auto_ack=True)
                if m is None:
                    return got
                got.append((m, props, body))
        return received

    def replay(self, *args, env=None):
        return cli("replay", *args, env=env or self.env, timeout=60)

    def since(self):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.start))

    def test_the_archive_is_a_stream_bound_to_the_exchange(self):
        r = subprocess.run(["rabbitmqctl", "-n", os.environ.get("BB_NODE", "bbtest@localhost"),
                            "-q", "list_queues", "name", "type", "arguments"],
                           stdout=subprocess.PIPE, universal_newlines=True)
        line = [l for l in r.stdout.splitlines() if l.startswith(self.stream + "\t")]
        self.assertEqual(len(line), 1, r.stdout)
        self.assertIn("\tstream\t", line[0])
        self.assertIn("7D", line[0])
        r = subprocess.run(["rabbitmqctl", "-n", os.environ.get("BB_NODE", "bbtest@localhost"),
                            "-q", "list_bindings", "source_name", "destination_name",
                            "routing_key"], stdout=subprocess.PIPE, universal_newlines=True)
        self.assertIn([self.exchange, self.stream, "#"],
                      [l.split("\t") for l in r.stdout.splitlines()])

    def test_dry_run_lists_the_archived_events_and_publishes_nothing(self):
        received = self.consumer()
        rc, out, err = self.replay("--since", self.since(), "--dry-run")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[-1].split(", ")[1:], ["matched 4", "listed 4"], out)
        self.assertEqual([l.split("  ")[2] for l in lines[:-1]],
                         [d["event_id"] for d in self.docs])
        self.assertEqual(received(), [])

    def test_replay_publishes_the_same_messages_again_marked_replayed(self):
        received = self.consumer()
        rc, out, err = self.replay("--since", self.since(), "--type", "replay.a")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^read \d+, matched 3, replayed 3\n$")
        got = received()
        self.assertEqual(len(got), 3, got)
        for (method, props, body), doc in zip(got, self.docs[:3]):
            self.assertEqual(json.loads(body), doc)
            self.assertEqual(props.message_id, doc["event_id"])
            self.assertEqual(method.routing_key, "replay.a")
            self.assertEqual(props.delivery_mode, 2)
            self.assertIs(props.headers.get("x-bloodbank-replayed"), True)
            self.assertNotIn("x-stream-offset", props.headers)
        # the copies went into the archive too, and are never replayed again
        rc, out, err = self.replay("--since", self.since(), "--dry-run")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.endswith(", matched 4, listed 4\n"), out)

    def test_replay_to_another_exchange_and_until(self):
        other = self.exchange + ".other"
        ch = pika.BlockingConnection(bbtest.amqp_params()).channel()
        ch.exchange_declare(other, "topic", auto_delete=True)
        received = self.consumer(other)
        until = self.docs[1]["timestamp"]
        rc, out, err = self.replay("--since", self.since(), "--until", until,
                                   "--to-exchange", other)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.endswith(", matched 2, replayed 2\n"), out)
        self.assertEqual([json.loads(b) for _, _, b in received()], self.docs[:2])
        ch.connection.close()

    def test_a_person_at_a_terminal_sees_the_progress(self):
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(BIN, [BIN, "replay", "--since", self.since(), "--dry-run"],
                      dict(self.env, TERM="xterm"))
        try:
            out = read_pty(fd).decode()
        finally:
            _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        self.assertRegex(out, r"\rread \d+  matched 4  listed 4\r?\n")
        self.assertTrue(out.rstrip().endswith(", matched 4, listed 4"), out)

    def test_replay_to_a_missing_exchange_reads_nothing(self):
        rc, out, err = self.replay("--since", "1h", "--to-exchange", "no-such-exchange")
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn("exchange no-such-exchange does not exist; nothing was read", err)

    def test_replay_refuses_bad_arguments(self):
        for args, why in [([], "--since is missing"),
                          (["--since", "yesterday"], "RFC 3339"),
                          (["--since", "1h", "--until", "2h"], "before --since"),
                          (["--since", "1h", "--type", "replay..a"], "topic pattern"),
                          (["--since", "1h", "extra"], "too many"),
                          (["--nope"], "usage")]:
            with self.subTest(args=args):
                rc, out, err = self.replay(*args)
                self.assertEqual(rc, 2, err)
                self.assertIn(why, err)
                self.assertEqual(out, "")

    def test_replay_without_an_archive_says_so(self):
        rc, out, err = cli("replay", "--since", "1h")
        self.assertEqual(rc, 1)
        self.assertIn("ARCHIVE_STREAM is not set", err)


class DoctorTest(BBTestCase):
    """`bloodbank doctor` green on the healthy stack, and naming the broken
    part, with what to do, on a broken one."""

    def env(self, **extra):
        env = stack_env()
        env["HTTP_PORT"] = os.environ.get("BB_HTTP_PORT", "18682")
        env.update(extra)
        return env

    def doctor(self, **extra):
        rc, out, err = cli("doctor", env=self.env(**extra), timeout=60)
        lines = {}
        for line in out.splitlines():
            m = re.match(r"^\[(ok|FAIL|skip)\] *([^:]+): (.*)$", line)
            self.assertTrue(m, "not a check line: %r" % line)
            lines.setdefault(m.group(2), []).append((m.group(1), m.group(3)))
        return rc, lines, err

    def test_a_healthy_stack_is_green(self):
        rc, lines, err = self.doctor()
        self.assertEqual(rc, 0, (lines, err))
        for part in ("configuration", "broker", "unrouted queue", "redis", "metrics",
                     "web server"):
            self.assertEqual([o for o, _ in lines[part]], ["ok"], (part, lines))
        self.assertEqual(lines["archive"][0][0], "skip")
        self.assertIn("answers 200", lines["web server"][0][1])

    def test_wrong_broker_credentials_are_named(self):
        url = stack_env()["RABBIT_URL"].replace("guest:guest@", "guest:wrong@")
        rc, lines, err = self.doctor(RABBIT_URL=url)
        self.assertEqual(rc, 1)
        (outcome, text), = lines["broker"]
        self.assertEqual(outcome, "FAIL")
        self.assertIn("ACCESS_REFUSED", text)
        self.assertIn("check RABBIT_URL", text)
        self.assertNotIn("wrong", text)
        self.assertEqual(lines["redis"][0][0], "ok")
        self.assertIn("1 check failed", err)

    def test_redis_that_does_not_answer_is_named(self):
        rc, lines, err = self.doctor(REDIS_PORT="1")
        self.assertEqual(rc, 1)
        self.assertEqual(lines["redis"][0][0], "FAIL")
        self.assertIn("Connection refused", lines["redis"][0][1])
        self.assertEqual(lines["broker"][0][0], "ok")

    def test_a_secret_readable_by_everyone_is_named(self):
        d = self.tmpdir()
        ini = os.path.join(d, "bloodbank.ini")
        with open(ini, "w") as f:
            f.write("[http]\napi_token = s3cret-token\n")
        os.chmod(ini, 0o644)
        rc, lines, err = self.doctor(BLOODBANK_CONFIG=ini)
        self.assertEqual(rc, 1)
        self.assertEqual(lines["configuration file"],
                         [("FAIL", "%s holds api_token and is readable by every user: "
                                   "chmod o-rwx %s" % (ini, ini))])
        os.chmod(ini, 0o640)
        rc, lines, err = self.doctor(BLOODBANK_CONFIG=ini)
        self.assertEqual(lines["configuration file"][0][0], "ok")
        self.assertNotIn("s3cret", repr(lines))

    def test_a_refused_schema_file_is_named(self):
        d = self.tmpdir()
        with open(os.path.join(d, "cli.order.json"), "w") as f:
            f.write('{"type": "object", "minLenght": 3}')
        rc, lines, err = self.doctor(SCHEMA_DIR=d)
        self.assertEqual(rc, 1)
        (outcome, text), = lines["event schemas"]
        self.assertEqual(outcome, "FAIL")
        self.assertIn("cli.order.json", text)
        self.assertIn("minLenght", text)

    def test_metrics_the_workers_cannot_write_and_no_web_server_are_named(self):
        d = self.tmpdir()
        os.chmod(d, 0o755)
        rc, lines, err = self.doctor(METRICS_PATH=os.path.join(d, "metrics"), HTTP_PORT="1")
        self.assertEqual(rc, 1)
        self.assertEqual(lines["metrics"][0][0], "FAIL")
        self.assertIn("is not writable by", lines["metrics"][0][1])
        self.assertEqual(lines["web server"][0][0], "FAIL")
        self.assertIn("nothing answers at 127.0.0.1:1", lines["web server"][0][1])
        self.assertIn("2 checks failed", err)

    def test_a_configuration_that_does_not_load_stops_there(self):
        rc, lines, err = self.doctor(RABBIT_CONFIRM_TIMEOUT_MS="soon")
        self.assertEqual(rc, 1)
        self.assertEqual(list(lines), ["configuration"])
        self.assertIn("RABBIT_CONFIRM_TIMEOUT_MS", lines["configuration"][0][1])

    def tmpdir(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="bb-doctor-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


def rabbitmqctl(*args):
    headers = ["--no-table-headers"] if args[0].startswith("list_") else []
    return subprocess.run(["rabbitmqctl", "-n", os.environ.get("BB_NODE", "bbtest@localhost"),
                           "-q"] + list(args) + headers,
                          stdout=subprocess.PIPE, universal_newlines=True).stdout


class CommandsTest(BBTestCase):

    def test_every_command_has_help_and_refuses_unknown_options(self):
        for name in ("doctor", "emit", "replay", "tail", "trace"):
            with self.subTest(command=name):
                rc, out, err = cli(name, "--help")
                self.assertEqual(rc, 0, err)
                self.assertTrue(out.startswith("usage: bloodbank %s" % name), out)
                rc, out, err = cli(name, "--no-such-option")
                self.assertEqual(rc, 2)
                self.assertIn("usage: bloodbank %s" % name, err)

    def test_tail_whose_broker_goes_away_exits_1_at_once(self):
        tag = "tailgone%s" % uuid.uuid4().hex[:8]
        proc = subprocess.Popen([BIN, "tail", tag + ".#"], env=stack_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        wait_bound(tag + ".#", proc)
        queue = [l.split("\t")[1] for l in rabbitmqctl(
            "list_bindings", "source_name", "destination_name", "routing_key").splitlines()
            if l.split("\t")[2:] == [tag + ".#"]][0]
        channel = [l.split("\t")[1] for l in rabbitmqctl(
            "list_consumers", "queue_name", "channel_pid").splitlines()
            if l.split("\t")[0] == queue][0]
        conn = [l.split("\t")[1] for l in rabbitmqctl(
            "list_channels", "pid", "connection").splitlines()
            if l.split("\t")[0] == channel][0]
        closed = time.monotonic()
        rabbitmqctl("close_connection", conn, "the test takes the broker away")
        out, err = proc.communicate(timeout=15)
        self.assertLess(time.monotonic() - closed, 5)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(err.strip(), "bloodbank tail: the broker closed the connection")
