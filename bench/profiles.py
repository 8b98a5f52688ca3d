"""Summaries of py-spy's raw (collapsed-stack) profiles: where the app's workers spend time."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

INTERESTING = ("avenue/", "flask/", "flask_limiter/", "flask_login/", "werkzeug/", "gunicorn/",
               "pymongo/", "bson/", "logging/", "PIL/")


def _function(frame: str) -> str:
    """``name (path:line)`` -> ``name (path)``: one entry per function, not per line."""
    head, sep, tail = frame.rpartition(":")
    return f"{head})" if sep and tail.rstrip(")").isdigit() else frame


def summarize(paths: list[Path], top: int = 12) -> list[str]:
    """Self and inclusive shares of the samples in ``paths`` (one case, all workers)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [_function(f) for f in stack.split(";")]
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    if not total:
        return ["(no samples)"]
    lines = [f"{total} samples", "", "self time:", ""]
    lines += [f"- {100 * n / total:4.1f}% `{frame}`" for frame, n in own.most_common(top)]
    lines += ["", "inclusive (app, Flask, Werkzeug, gunicorn, pymongo, logging):", ""]
    picked = [(f, n) for f, n in inclusive.most_common() if any(k in f for k in INTERESTING)]
    lines += [f"- {100 * n / total:4.1f}% `{frame}`" for frame, n in picked[:top * 2]]
    return lines
