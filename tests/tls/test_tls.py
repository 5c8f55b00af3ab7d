"""amqps: the workers publish over TLS (tests/tls/run.py starts them so), and
refuse a broker whose certificate does not verify.

Environment (scripts/test.sh tls): BB_TLS_PKI, the directory tests/tls/pki.sh
made; BB_AMQPS_PORT, the node's TLS listener (it asks for a client
certificate); the workers' RABBIT_URL is amqps://guest:guest@localhost:PORT/
with RABBIT_TLS_CA, _CERT and _KEY from that directory.
"""

import json
import os
import time

import bbtest
from bbtest import BBTestCase, Consumer, get, post
from test_tracking import WorkerSettingsCase

PKI = os.environ.get("BB_TLS_PKI", "")
PORT = os.environ.get("BB_AMQPS_PORT", "")
EVENT = "/events/tls.checked"
BODY = json.dumps({"ok": True})


class TLSCase(BBTestCase):

    LOGS = ("lighttpd.out", "lighttpd-error.log")  # lighttpd hands on the workers' stderr

    def setUp(self):
        if not (PKI and PORT):
            self.skipTest("BB_TLS_PKI and BB_AMQPS_PORT are needed")
        self.log_start = {name: len(self.read_log(name)) for name in self.LOGS}

    @staticmethod
    def read_log(name):
        try:
            with open(os.path.join(bbtest.BB_STATE_DIR, name), "rb") as f:
                return f.read()
        except OSError:
            return b""

    def new_log(self):
        """What the workers logged since the test started."""
        return "".join(self.read_log(n)[self.log_start[n]:].decode(errors="replace")
                       for n in self.LOGS)

    def whole_log(self):
        return "".join(self.read_log(n).decode(errors="replace") for n in self.LOGS)

    def assertRefused(self, reason):
        """Publishing answers 503 and publishes nothing, /healthz says the
        broker is down, and the workers' log says why."""
        with Consumer() as c:
            self.assertError(post(EVENT, BODY), 503, "broker_unavailable")
            self.assertNothingPublished(c)
        doc = self.assertJSONResponse(get("/healthz"), 503)
        self.assertEqual(doc.get("rabbitmq"), "down", doc)
        deadline = time.monotonic() + 5
        while reason not in self.new_log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = self.new_log()
        self.assertIn(reason, log)
        self.assertNotIn("guest:guest", log)


class TLSPublishTest(TLSCase):

    def test_publish_goes_over_tls(self):
        with Consumer() as c:
            doc = self.assertJSONResponse(post(EVENT, BODY), 200)
            msgs = c.receive(1)
        self.assertEqual([m[1].message_id for m in msgs], [doc["event_id"]])
        self.assertIn("over TLS", self.whole_log())


class ZzWrongCATest(TLSCase, WorkerSettingsCase):
    SETTINGS = {"RABBIT_TLS_CA": os.path.join(PKI, "other-ca.pem")}

    def test_broker_signed_by_another_ca_is_refused(self):
        self.assertRefused("(TLS) failed: self-signed certificate in certificate chain")


class ZzSystemStoreTest(TLSCase, WorkerSettingsCase):
    """With no RABBIT_TLS_CA the system's store is used: OpenSSL takes it
    from SSL_CERT_FILE when set, so pointing that at the test CA proves the
    store is loaded at all (librabbitmq 0.11 does not load it itself)."""
    SETTINGS = {"RABBIT_TLS_CA": "", "SSL_CERT_FILE": os.path.join(PKI, "ca.pem")}

    def test_system_store_verifies_the_broker(self):
        with Consumer() as c:
            self.assertJSONResponse(post(EVENT, BODY), 200)
            self.assertEqual(len(c.receive(1)), 1)


class ZzSystemStoreRefusesTest(TLSCase, WorkerSettingsCase):
    SETTINGS = {"RABBIT_TLS_CA": ""}

    def test_test_ca_is_not_in_the_system_store(self):
        self.assertRefused("(TLS) failed: self-signed certificate in certificate chain")


class ZzWrongHostTest(TLSCase, WorkerSettingsCase):
    SETTINGS = {"RABBIT_URL": "amqps://guest:guest@127.0.0.1:%s/" % PORT}

    def test_certificate_for_another_name_is_refused(self):
        self.assertRefused("(TLS) failed: the broker's certificate does not name this host")


class ZzNoClientCertificateTest(TLSCase, WorkerSettingsCase):
    SETTINGS = {"RABBIT_TLS_CERT": "", "RABBIT_TLS_KEY": ""}

    def test_broker_that_wants_a_client_certificate_refuses(self):
        # the broker's alert (tlsv13 alert certificate required) is added when
        # OpenSSL read it before the broker closed the connection
        self.assertRefused("AMQP login failed: a SSL error occurred")


class ZzNoVerifyTest(TLSCase, WorkerSettingsCase):
    SETTINGS = {"RABBIT_TLS_CA": os.path.join(PKI, "other-ca.pem"),
                "RABBIT_TLS_VERIFY": "false"}

    def test_unverified_broker_is_used_with_a_warning(self):
        with Consumer() as c:
            self.assertJSONResponse(post(EVENT, BODY), 200)
            self.assertEqual(len(c.receive(1)), 1)
        # logged when the workers start (after the last restart, the only
        # one with verification off)
        self.assertIn("RABBIT_TLS_VERIFY is false", self.whole_log())
