"""The invariants of the fault suite, as pure functions over what the clients
saw and what the queue held (no network here, so that they can be tested on
made-up data: test_faultcheck.py).

A request is a Request; the queue is the list of message ids read from it
(a message whose message_id is missing or not its body's event_id is read as
an id starting with "!": CONTRACT §6 says message_id = event_id, and
consumers deduplicate on it). CONTRACT.md §6 is what they check:
  - every 200's event is in the queue                              (lost)
  - no event answered 503 broker_unavailable is in the queue        (false "not published")
  - every answer is a 200, or a 503/504 the service wrote (JSON with an
    "error"); anything else -- 500, 502, a web server's own 503, no answer --
    is "other", except on a fault that SIGKILLs workers (or restarts the
    pool), where a request in flight when a worker was killed, or sent
    before lighttpd noticed the death, may be an unknown outcome (a worker
    answers several at once, so one kill can leave several)
  - no answer took longer than the bound (connect + confirm timeout + 1 s)
  - publishing works again after the fault (a final request answers 200)
With the spool on (spool=True, CONTRACT §12) as well:
  - every 202's event is in the queue too                           (lost)
  - a 202 carries `Bloodbank-Delivery: spooled` and the event's id (else "other")
  - no answer is 503 broker_unavailable: within SPOOL_MAX_BYTES an event
    the broker cannot take is spooled                               (unavailable)
  - duplicates (at least once from the spool) are counted, not failed
Without the spool a 202 is a failure.
"""

import json
import uuid

# CONTRACT §5: an idempotent event's id is UUIDv5 over bloodbank:<type>:<key>
ID_NAMESPACE = uuid.UUID("6ba7b812-9dad-11d1-80b4-00c04fd430c8")


def event_id(event_type, key):
    return str(uuid.uuid5(ID_NAMESPACE, "bloodbank:%s:%s" % (event_type, key)))


class Request:
    """One POST and what came back. status None: no answer (error says why)."""

    __slots__ = ("client", "key", "eid", "t0", "t1", "status", "error", "body_id",
                 "large", "final", "delivery")

    def __init__(self, client, key, eid, t0, large=False, final=False):
        self.client, self.key, self.eid, self.t0 = client, key, eid, t0
        self.t1 = None
        self.status = None
        self.error = None      # the "error" member of a JSON answer, or why there was none
        self.body_id = None    # the "event_id" member of a 200 or a 202
        self.large = large
        self.final = final
        self.delivery = None   # the Bloodbank-Delivery header

    def answered(self, t1, status, body, delivery=None):
        self.t1, self.status, self.delivery = t1, status, delivery
        try:
            doc = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            doc = None
        if not isinstance(doc, dict):
            self.error = "not JSON: %r" % body[:80]
        elif status in (200, 202):
            self.body_id = doc.get("event_id")
            if self.body_id != self.eid:
                self.error = "event_id %r, not the key's" % (self.body_id,)
            elif status == 202 and delivery != "spooled":
                self.error = "a 202 with Bloodbank-Delivery %r, not spooled" % (delivery,)
        else:
            self.error = doc.get("error")
            if not isinstance(self.error, str):
                self.error = "no error member: %r" % body[:80]

    def failed(self, t1, why):
        self.t1, self.status, self.error = t1, None, why

    @property
    def ms(self):
        return (self.t1 - self.t0) * 1000.0

    def kind(self):
        """200, 202, 503, 504 (the service's own answers), or 'other'."""
        if self.status == 200 and self.body_id == self.eid:
            return 200
        if self.status == 202 and self.body_id == self.eid and self.delivery == "spooled":
            return 202
        if self.status in (503, 504) and self.error and not self.error.startswith(
                ("not JSON", "no error member")):
            return self.status
        return "other"

    def describe(self, origin=0.0):
        what = self.status if self.status is not None else "no answer"
        return "client %d at %+.1f s: %s %s after %.0f ms%s (key %s)" % (
            self.client, self.t0 - origin, what, self.error or "", self.ms,
            " [large body]" if self.large else "", self.key)


class Verdict:
    def __init__(self):
        self.counts = {200: 0, 202: 0, 503: 0, 504: 0, "other": 0}
        self.requests = 0
        self.spool = False
        self.lost = []              # 200s (and 202s) whose event is not in the queue
        self.false_np = []
        self.unavailable = []       # spool on: 503 broker_unavailable answers
        self.spooled_without = []   # spool off: 202 answers
        self.unknown = []
        self.other = []
        self.slow = []
        self.slowest_ms = 0.0
        self.recovered_s = None     # fault removed -> end of the last answer that is not a 200
        self.final_ok = False
        self.in_queue_504 = 0
        self.foreign = 0            # messages in the queue that no request of ours explains
        self.duplicates = 0         # extra copies of a message_id
        self.malformed = 0          # messages without message_id = event_id
        self.spool_peak = None      # set by the caller: most events spooled at once
        self.drained_s = None       # set by the caller: removal -> spool empty
        self.failures = []          # one line per broken invariant

    @property
    def ok(self):
        return not self.failures


def evaluate(requests, queue_ids, bound_ms, removed_at, kills=(), spool=False):
    """requests: every Request of the fault (load and final polls);
    queue_ids: the message ids read from the queue (one per message; "!..."
      for a message without message_id = event_id);
    removed_at: when the fault was certainly gone, i.e. its removal command
      returned (monotonic, same clock as Request.t0);
    kills: (start, end) of each SIGKILL of a worker, or of a restart of the
      pool (monotonic): a request in flight then may be left without a true
      answer;
    spool: the workers run with SPOOL_DIR (CONTRACT §12)."""
    v = Verdict()
    v.spool = spool
    in_queue = {}
    for mid in queue_ids:
        if mid.startswith("!"):
            v.malformed += 1
            continue
        in_queue[mid] = in_queue.get(mid, 0) + 1
    v.duplicates = sum(n - 1 for n in in_queue.values())
    ours = {r.eid for r in requests}
    v.foreign = sum(1 for mid in in_queue if mid not in ours)

    v.requests = len(requests)
    strange = []
    for r in requests:
        k = r.kind()
        v.counts[k] += 1
        if r.t1 is not None:
            v.slowest_ms = max(v.slowest_ms, r.ms)
            if r.ms > bound_ms:
                v.slow.append(r)
        if k in (200, 202) and r.eid not in in_queue:
            v.lost.append(r)
        if k == 503 and r.error == "broker_unavailable" and r.eid in in_queue:
            v.false_np.append(r)
        if spool and k == 503 and r.error == "broker_unavailable":
            v.unavailable.append(r)
        if not spool and k == 202:
            v.spooled_without.append(r)
        if k == 504 and r.eid in in_queue:
            v.in_queue_504 += 1
        if k == "other":
            strange.append(r)
    # a SIGKILLed worker leaves the requests it held without a true answer
    def at_a_kill(r):
        end = r.t1 if r.t1 is not None else float("inf")
        return any(r.t0 <= k1 and end >= k0 for k0, k1 in kills)
    v.unknown = [r for r in strange if at_a_kill(r)]
    v.other = [r for r in strange if not at_a_kill(r)]
    v.counts["other"] = len(v.other)
    finals = [r for r in requests if r.final]
    v.final_ok = bool(finals) and finals[-1].kind() == 200
    if v.final_ok:
        # from the fault's removal on, how long until the answers are all 200
        last_bad = max((r.t1 for r in requests if r.kind() != 200), default=removed_at)
        v.recovered_s = max(0.0, last_bad - removed_at)

    if v.lost:
        v.failures.append("%d answered %s but not in the queue"
                          % (len(v.lost), "200 or 202" if spool else "200"))
    if v.unavailable:
        v.failures.append("%d answered 503 broker_unavailable with the spool on"
                          % len(v.unavailable))
    if v.spooled_without:
        v.failures.append("%d answered 202 without a spool" % len(v.spooled_without))
    if v.malformed:
        v.failures.append("%d messages in the queue without message_id = event_id"
                          % v.malformed)
    if v.false_np:
        v.failures.append("%d answered 503 broker_unavailable but in the queue"
                          % len(v.false_np))
    if v.other:
        v.failures.append("%d answers not %s from the service"
                          % (len(v.other), "200/202/503/504" if spool else "200/503/504"))
    if v.slow:
        v.failures.append("%d answers slower than %d ms (slowest %.0f ms)"
                          % (len(v.slow), bound_ms, v.slowest_ms))
    if not v.final_ok:
        v.failures.append("publishing did not work again after the fault")
    return v
