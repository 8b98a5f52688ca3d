"""Target 3b: per-file ingest time of distinct 1 MB images as a bucket grows on SecantusDB."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from data import varied_jpeg

WINDOW = 50


@dataclass
class IngestResult:
    times_ms: list[float] = field(default_factory=list)
    write_ms: list[float] = field(default_factory=list)  # the storage part, when known
    stored_bytes: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def enough(self) -> bool:
        """First-50 and last-50 are disjoint only from 100 files on."""
        return len(self.times_ms) >= 2 * WINDOW

    @property
    def first(self) -> float | None:
        return statistics.median(self.times_ms[:WINDOW]) if self.enough else None

    @property
    def last(self) -> float | None:
        return statistics.median(self.times_ms[-WINDOW:]) if self.enough else None

    @property
    def growth(self) -> float | None:
        if self.first and self.last:
            return self.last / self.first
        return None

    def write_phase(self) -> tuple[float, float] | None:
        """First-50 and last-50 medians of the storage part alone."""
        if len(self.write_ms) < 2 * WINDOW:
            return None
        return statistics.median(self.write_ms[:WINDOW]), statistics.median(self.write_ms[-WINDOW:])


def ingest(put: Callable[[bytes, str], object], base, quality: int, *, count: int,
           seed: int, time_budget_s: float, progress: Callable[[str], None],
           write_ms: Callable[[], float] | None = None) -> IngestResult:
    """Call ``put(data, filename)`` for ``count`` distinct images and time each call.

    Making the next image is not timed.  Stops early (and says so) past ``time_budget_s``.
    """
    result = IngestResult()
    started = time.monotonic()
    for i in range(count):
        data = varied_jpeg(base, seed * 1_000_000 + i, quality)
        t0 = time.perf_counter()
        put(data, f"ingest_{seed}_{i:05d}.jpg")
        result.times_ms.append((time.perf_counter() - t0) * 1000)
        if write_ms is not None:
            result.write_ms.append(write_ms())
        result.stored_bytes += len(data)
        if (i + 1) % 50 == 0:
            progress(f"{i + 1}/{count} files, {result.stored_bytes / 2**20:.0f} MB, "
                     f"last {statistics.median(result.times_ms[-50:]):.0f} ms/file")
        if time.monotonic() - started > time_budget_s:
            result.problems.append(f"stopped after {i + 1} of {count} files: time budget "
                                   f"{time_budget_s:.0f} s")
            break
    result.seconds = time.monotonic() - started
    return result
