"""The store's invariants under every sequence of writes (issue 61; docs/architecture.md,
"Invariants"): hypothesis' stateful testing drives tests/support/model/machine.py's rules and checks
its invariants after every step.

``make test`` runs a short budget of sequences here (the examples' count below); ``make model``
(tests/support/model/run.py) runs the same machine as long as asked and prints what it covered.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.support.model.harness import in_process, on_servers
from tests.support.model.machine import machine

#: make test's budget: a few sequences of ten steps each, most of them in process on mongomock
#: (about 4 s of CPU for five), fewer over the wire, where a sequence costs about 5 s of CPU in
#: process and 9 s on the gunicorn servers; make model (tests/support/model/run.py) runs the
#: same machine for 30 minutes on the servers. ``AVENUE_MODEL_SEQUENCES`` sets all three.
SEQUENCES = int(os.environ.get("AVENUE_MODEL_SEQUENCES", "5"))
WIRE_SEQUENCES = int(os.environ.get("AVENUE_MODEL_SEQUENCES", "2"))
SERVER_SEQUENCES = int(os.environ.get("AVENUE_MODEL_SEQUENCES", "1"))
STEPS = int(os.environ.get("AVENUE_MODEL_STEPS", "10"))
#: pytest-timeout's 300 s is for a hang; a loaded machine runs a harness several times slower.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def budget(sequences: int = SEQUENCES, steps: int = STEPS) -> settings:
    # derandomize: make test tries the same sequences every run (a red CI is reproducible);
    # make model draws new ones (tests/support/model/run.py).
    shrink = [] if os.environ.get("AVENUE_MODEL_NO_SHRINK") else [Phase.shrink]
    phases = [Phase.explicit, Phase.generate, *shrink]
    return settings(max_examples=sequences, stateful_step_count=steps, deadline=None, derandomize=True,
                    database=None, suppress_health_check=list(HealthCheck), phases=phases)


def test_two_workers_in_process_keep_every_invariant(backend, db_name):
    on_mongomock = backend[1].startswith("mongodb://mongomock")
    with in_process(backend, db_name) as harness:
        run_state_machine_as_test(machine(harness),
                                  settings=budget(sequences=SEQUENCES if on_mongomock else WIRE_SEQUENCES))


def test_two_gunicorn_servers_on_secantus_keep_every_invariant(secantus, tmp_path):
    with on_servers(secantus.uri, tmp_path, servers=2, workers=2) as harness:
        run_state_machine_as_test(machine(harness), settings=budget(sequences=SERVER_SEQUENCES))
