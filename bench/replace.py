#!/usr/bin/env python3
"""What replacing a 12 MP photo in place costs, next to what users did before: one table, one run.

On the embedded database (a fresh SecantusDB folder) and the app in this process (Flask's test
client, so the figures are the app's work and the database's, without a network or a worker
pool), each round measures, for a 12 MP JPEG in the builder library:

- **replace in place**: ``PUT /api/builder/media/{id}`` with another 12 MP photo (validate,
  decode, render 8 renditions, write them, copy the old version to the trash, switch, remove
  the old files), then one ``GET`` of an old URL (the 308) and of the new URL (200);
- **the baseline, upload + re-point + delete** (what an editor had to do before): ``POST`` the
  new photo, ``PUT`` the page to point at it, ``DELETE`` the old media (into the trash);
- **a plain upload** of the same photo (``POST``), for scale.

Every round uses fresh bytes (a JPEG comment changes the hash, the pixels stay), so nothing is
deduplicated. Medians of ``--rounds``; the ratio is replace ÷ baseline in the same run.

    python3 bench/replace.py                      # 7 rounds
    python3 bench/replace.py --rounds 15 --out bench/results/replace-2026-11-23.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from avenue.embedded import EmbeddedServer  # noqa: E402

from data import photo_12mp, with_comment  # noqa: E402

SECRET = "bench-replace-secret-key-0123456789abcdef"
DB = "bench_replace"


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-replace-") as folder:
        photo = photo_12mp(ROOT, Path(folder)).read_bytes()
        database = EmbeddedServer(Path(folder) / "db", log_path=Path(folder) / "db.log").start()
        try:
            rows = run(database.uri, photo, args.rounds)
        finally:
            database.stop()
    table = report(rows, args.rounds, len(photo))
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


def run(uri: str, photo: bytes, rounds: int) -> dict[str, list[float]]:
    from avenue import create_app
    from tests.support import tokens

    app = create_app({"TESTING": True, "AVENUE_ENV": "testing", "SECRET_KEY": SECRET, "MONGO_URI": uri,
                      "MONGO_DB": DB, "RATELIMIT_ENABLED": False,
                      "AVENUE_HISTORY_INTERVAL_SECONDS": 0})
    with app.app_context():
        from avenue.db import get_db, get_mongo

        get_mongo().ensure_indexes()
        headers = tokens.issue(get_db(), "editor", "bench@example.com")
    client = app.test_client()
    counter = iter(range(1_000_000))

    def fresh() -> bytes:
        return with_comment(photo, f"bench-replace-{next(counter)}-{time.time_ns()}")

    def post() -> dict:
        answer = client.post("/api/builder/media", headers=headers,
                             data={"file": (io.BytesIO(fresh()), "photo.jpg")})
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()

    times: dict[str, list[float]] = {k: [] for k in (
        "upload", "replace", "redirect", "new_get", "base_upload", "base_repoint", "base_delete")}
    post()  # warm-up: imports, first renders, indexes
    for _ in range(rounds):
        start = time.perf_counter()
        media = post()
        times["upload"].append(_ms(start))
        page = client.put("/api/builder/pages/bench", headers=headers, json={
            "title": "Bench", "blocks": [{"type": "image", "media_id": media["id"]}], "published": True})
        assert page.status_code == 200, page.get_json()

        start = time.perf_counter()
        answer = client.put(f"/api/builder/media/{media['id']}", headers=headers,
                            data={"file": (io.BytesIO(fresh()), "photo-v2.jpg")})
        times["replace"].append(_ms(start))
        assert answer.status_code == 200, answer.get_json()
        new = answer.get_json()
        start = time.perf_counter()
        moved = client.get(media["url"])
        times["redirect"].append(_ms(start))
        assert moved.status_code == 308, moved.status_code
        start = time.perf_counter()
        served = client.get(new["url"])
        times["new_get"].append(_ms(start))
        assert served.status_code == 200 and len(served.data) == new["bytes"]

        # The baseline: a new upload, the page re-pointed, the old media deleted.
        start = time.perf_counter()
        other = post()
        times["base_upload"].append(_ms(start))
        start = time.perf_counter()
        page = client.put("/api/builder/pages/bench", headers=headers, json={
            "title": "Bench", "blocks": [{"type": "image", "media_id": other["id"]}], "published": True})
        times["base_repoint"].append(_ms(start))
        assert page.status_code == 200
        start = time.perf_counter()
        gone = client.delete(f"/api/builder/media/{media['id']}", headers=headers)
        times["base_delete"].append(_ms(start))
        assert gone.status_code == 204, gone.get_json()
    return times


def report(times: dict[str, list[float]], rounds: int, size: int) -> str:
    med = {k: statistics.median(v) for k, v in times.items()}
    replace_total = med["replace"] + med["redirect"]
    baseline = med["base_upload"] + med["base_repoint"] + med["base_delete"]
    load = os.getloadavg()
    lines = [
        f"# Replace in place: a 12 MP photo — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `python3 bench/replace.py --rounds {rounds}`. The app in-process (Flask test client) on a "
        f"fresh embedded SecantusDB; a {size / 1e6:.1f} MB 4000x3000 JPEG, fresh bytes every call; "
        f"medians of {rounds} rounds; load average at the end {load[0]:.2f} (2 cores).",
        "",
        "| measurement | ms (median) | ratio |",
        "| --- | ---: | ---: |",
        "| replace in place: `PUT /api/builder/media/{id}` (validate + 8 renditions + store, old "
        f"version to the trash, switch) | {med['replace']:.0f} | |",
        f"| then an old URL: `GET` → 308 to the new one | {med['redirect']:.1f} | |",
        f"| then the new URL: `GET` → 200 (the new original, streamed) | {med['new_get']:.1f} | |",
        f"| **replace + redirect** | **{replace_total:.0f}** | "
        f"**{replace_total / baseline:.2f}x** the baseline |",
        f"| baseline: upload the new photo (`POST`) | {med['base_upload']:.0f} | |",
        f"| baseline: re-point the page (`PUT /api/builder/pages/…`) | {med['base_repoint']:.1f} | |",
        f"| baseline: delete the old media (into the trash) | {med['base_delete']:.0f} | |",
        f"| **baseline: upload + re-point + delete** | **{baseline:.0f}** | 1.00x |",
        f"| a plain upload of such a photo, for scale | {med['upload']:.0f} | "
        f"replace is {med['replace'] / med['upload']:.2f}x |",
        "",
        "The replace does the baseline's work in one call (render the new bytes, move the old ones to",
        "the trash) and keeps the id, so no page or product is rewritten and no old URL breaks.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
