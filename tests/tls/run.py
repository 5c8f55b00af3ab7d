#!/usr/bin/python3
"""The tls step: the integration suite's publish cases, and the TLS cases of
test_tls.py, against workers whose RABBIT_URL is amqps:// (scripts/test.sh
tls starts them so).

usage: /usr/bin/python3 tests/tls/run.py [-k PATTERN]...
"""

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "integration"))

import importlib.util  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "integration_run", os.path.join(here, "..", "integration", "run.py"))
integration = importlib.util.module_from_spec(spec)
spec.loader.exec_module(integration)

import test_batch  # noqa: E402
import test_broker_answers  # noqa: E402
import test_tls  # noqa: E402

# What goes over the AMQP connection: publishing and its answers, confirms,
# nacks, timeouts, heartbeats, a blocked broker, and a broker restart.
PUBLISH_CASES = [
    integration.HealthTest, integration.PromptPublishTest, integration.ErrorTest,
    test_batch.BatchTest, test_batch.ZzBatchBrokerDownTest,
    test_broker_answers.NackTest, test_broker_answers.ZzConfirmTimeoutTest,
    test_broker_answers.ZzHeartbeatTest, test_broker_answers.ZzBlockedBrokerTest,
    integration.ZzBrokerOutageTest,
]

if __name__ == "__main__":
    tls_cases = [c for c in vars(test_tls).values()
                 if isinstance(c, type) and c.__module__ == "test_tls" and
                 c.__name__ != "TLSCase"]
    sys.exit(integration.main(PUBLISH_CASES + tls_cases))
