"""``make model``: the store model (tests/support/model/machine.py) for as long as asked, then what it
covered.

    .venv/bin/python -m tests.support.model.run --minutes 30                 # 2 gunicorn servers x 2 workers
    .venv/bin/python -m tests.support.model.run --minutes 5 --harness process # 2 apps in this process

The servers run on a SecantusDB this command starts (its data in a temporary folder, removed
after). Sequences are drawn afresh (not derandomized, as ``make test``'s are) until the time
is up; a failure stops the run with hypothesis' shortest sequence, printed as code. The
report: steps, sequences, each rule's and each invariant's count.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from avenue.embedded import EmbeddedServer
from tests.support.model.harness import in_process, on_servers
from tests.support.model.machine import COVERAGE, machine, steps_taken


def reporting(cls: type) -> type:
    """``cls`` with each rule and invariant printing the first exception it raises, with its
    traceback, before hypothesis sees it: on the servers a failing sequence may not replay
    alike (the servers' state is not the strategy's), and hypothesis then reports only its
    FlakyStrategyDefinition, not what failed (a 10-minute run on 2026-11-27 ended so)."""
    printed: list[bool] = []

    def wrap(name: str, function: Any) -> Any:
        @functools.wraps(function)  # copies hypothesis' rule and invariant markers too
        def step(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except BaseException:
                if not printed:
                    printed.append(True)
                    print(f"store model: the first failure, in {name}:", file=sys.stderr, flush=True)
                    traceback.print_exc(file=sys.stderr)
                raise
        return step

    for name, value in list(vars(cls).items()):
        if callable(value) and any(attr.startswith("hypothesis_stateful") for attr in vars(value)):
            setattr(cls, name, wrap(name, value))
    return cls


def report(started: float, failed: BaseException | None) -> str:
    lines = [f"store model: {time.monotonic() - started:.0f} s, {steps_taken()} steps, "
             f"{COVERAGE['sequences']} sequences, {'FAILED' if failed else 'no invariant broken'}"]
    for prefix in ("rule:", "invariant:", "state:"):
        counted = sorted((name, count) for name, count in COVERAGE.items() if name.startswith(prefix))
        shown = ", ".join(f"{name[len(prefix):]} {count}" for name, count in counted)
        lines.append(f"{prefix[:-1]}s ({len(counted)}): {shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--harness", choices=("servers", "process"), default="servers")
    parser.add_argument("--steps", type=int, default=25, help="steps per sequence")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--no-shrink", action="store_true",
                        help="print a failing sequence as found (shrinking on servers can take long)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    deadline = started + args.minutes * 60
    phases = [Phase.explicit, Phase.generate] + ([] if args.no_shrink else [Phase.shrink])
    budget = settings(max_examples=5, stateful_step_count=args.steps, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), phases=phases)
    failed: BaseException | None = None
    with tempfile.TemporaryDirectory(prefix="avenue-model-") as folder:
        server = EmbeddedServer(Path(folder) / "db", cache_size="1G", log_path=Path(folder) / "db.log",
                                standalone=True, die_with_parent=True)
        server.start()
        try:
            import pymongo

            harness = (on_servers(server.uri, Path(folder), servers=2, workers=args.workers)
                       if args.harness == "servers" else
                       in_process((pymongo.MongoClient, server.uri), "avenue_model"))
            with harness as built:
                while time.monotonic() < deadline and failed is None:
                    try:
                        run_state_machine_as_test(reporting(machine(built)), settings=budget)
                    except BaseException as error:  # noqa: BLE001 - reported, then the exit code
                        failed = error
                    print(report(started, None), flush=True)
        finally:
            server.kill()
    print(report(started, failed))
    if failed is not None:  # with hypothesis' notes: the failing sequence, as code
        traceback.print_exception(failed, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
