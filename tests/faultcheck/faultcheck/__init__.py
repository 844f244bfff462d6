"""oxka's fault checker; run it with tests/faultcheck/run.sh (see __main__.py and docs/testing.md)."""

import logging

_quiet = logging.getLogger("faultcheck.rdkafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False

# Client settings for the checker's own admin clients and consumers: their connection errors while a
# broker is down are expected and would only bury the fault log.
QUIET = {"logger": _quiet}
