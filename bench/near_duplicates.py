#!/usr/bin/env python3
"""Near-duplicates (issue 31): recall and false positives of the perceptual hash, the lookup at a
million images on the embedded database, and what hashing adds to an upload. One run, one table.

1. **Recall.** Every photo (below) is stored as an upload stores it (``pipeline.ingest``: the
   hash comes from the WebP thumb) and then ``--copies`` times more, each copy re-encoded at a
   JPEG quality drawn from 60-95, resized to 50-100 % and cropped by 0-5 % of each side's length
   (split at random between the two edges), all drawn from a fixed seed. A copy counts as
   flagged when a lookup finds it: within ``near_hash.NEAR`` bits *and* sharing a probed band
   (what ``near_duplicates.near`` asks the index for).
2. **False positives** over every pair of distinct pictures: the real photos scikit-image ships
   (skimage/data, the only real photographs on this machine), the test corpus's photos, and
   the corpus generator's scenes (``tests/support/fixtures.scene``, one seed each: distinct
   generated pictures, not variations of one, but not photos either: reported apart).
3. **Lookup at 1,000,000 images** on the embedded database (``secantusd-py``, a fresh folder):
   only the files documents' fields the lookup reads are inserted (``role``, ``owner``,
   ``phash``, ``phash_bands``, ``key``; bulk ``insert_many`` with the lookup's index, the app's
   ``phash_bands``, in place: the bucket's other indexes serve no part of it), hashes
   uniformly random (real libraries are clumpier: more candidates per band). Each query is the
   hash of a stored image with 0-6 bits flipped and an order of its bits (as an upload has
   it); ``near_duplicates.near`` is timed end to end (the ``$in`` on 52 band keys, the candidates'
   hashes, the matches' documents).
4. **Upload cost** on the same database, same run: distinct 12 MP pictures (drawn as the
   corpus's ``photo_12mp.jpg`` is, other seeds) stored through ``Library.store`` (validate,
   render the thumb, write, look up; the other variants are rendered after the clock stops,
   as a request renders them after its answer) into a bucket with all the app's indexes:
   first a small one, then one seeded with as many band matches of each picture as a lookup
   read in step 3 (so each lookup costs what it would at ``--as-if``). Three arms in turn:
   hashing off (``pipeline.near_hash_of`` returning None: no hash, so no lookup), the lookup
   on the uploading thread before the write ("serial", how it ran before), and the lookup
   as the app runs it (``near_duplicates.Lookup``: beside the write on mongod, after the answer on the
   embedded database). The target's rows are beside ÷ off, by the arms' medians and round by
   round (the median of each round's own ratio, free of the machine's drift).

    python3 bench/near_duplicates.py --quick          # 20,000 images, a smoke run
    python3 bench/near_duplicates.py --out bench/results/near-duplicates-2026-11-24.md

Targets: lookup p99 under 50 ms at 1 M; upload slower by under 5 %; recall at least 95 %;
under 1 % of distinct pairs flagged.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import io
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pymongo  # noqa: E402
from avenue.embedded import EmbeddedServer  # noqa: E402
from avenue.media.ingest import near_hash, pipeline  # noqa: E402
from avenue.media.ingest.images import Limits  # noqa: E402
from bson import ObjectId  # noqa: E402
from PIL import Image  # noqa: E402
from tests.support.fixtures import location, scene  # noqa: E402
from tests.support.records import images  # noqa: E402

DB = "avenue_near"
BUCKET = "builder_media"
LOOKUP_TARGET_MS = 50.0
UPLOAD_TARGET = 0.10  # the lookup may make an upload's answer at most 1.1x (store/near_duplicates.py)
RECALL_TARGET = 0.95
FALSE_TARGET = 0.01
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                  "hubble_deep_field.jpg", "retina.jpg", "brick.png", "grass.png", "gravel.png", "camera.png",
                  "moon.png", "coins.png", "page.png", "horse.png", "color.png", "ihc.png", "cell.png",
                  "text.png", "microaneurysms.png", "phantom.png")


def say(text: str) -> None:
    print(f"[near {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def jpeg(im: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    im.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def stored_hash(data: bytes) -> near_hash.NearHash:
    found = pipeline.ingest(data, Limits()).near_hash
    if found is None:
        raise RuntimeError("no near-duplicate hash for a good image")
    return found


def copy_of(im: Image.Image, rng: random.Random) -> tuple[bytes, str]:
    width, height = im.size
    quality, scale, crop = rng.randint(60, 95), rng.uniform(0.5, 1.0), rng.uniform(0.0, 0.05)
    left, top = rng.uniform(0, crop), rng.uniform(0, crop)
    box = (int(width * left), int(height * top), width - int(width * (crop - left)),
           height - int(height * (crop - top)))
    cut = im.crop(box)
    size = (max(1, int(cut.width * scale)), max(1, int(cut.height * scale)))
    cut = cut.resize(size, Image.Resampling.LANCZOS)
    return jpeg(cut, quality), f"q{quality} {scale:.0%} crop {crop:.1%}"


def photos() -> tuple[list[tuple[str, Image.Image]], list[tuple[str, Image.Image]]]:
    """(real photos, corpus photos)."""
    real: list[tuple[str, Image.Image]] = []
    try:
        import skimage

        folder = Path(skimage.__file__).parent / "data"
        real = [(name, Image.open(folder / name).convert("RGB")) for name in SKIMAGE_PHOTOS
                if (folder / name).exists()]
    except ImportError:
        say("scikit-image is not installed (bench/requirements.txt): no real photos")
    good = location() / "images" / "good"
    corpus = [(path.name, Image.open(path).convert("RGB")) for path in sorted(good.glob("*.jpg"))]
    return real, corpus


def measure_recall(args, rows: list, notes: list) -> None:
    real, corpus = photos()
    rng = random.Random(31)
    scenes = [(f"scene {seed}", scene((1600, 1200), seed)) for seed in range(args.scenes_recall)]
    originals = real + corpus + scenes
    flagged = total = 0
    near_only = 0
    missed: list[str] = []
    for name, im in originals:
        first = stored_hash(jpeg(im, 90))
        for _ in range(args.copies):
            data, how = copy_of(im, rng)
            other = stored_hash(data)
            gap = near_hash.distance(first.phash, other.phash)
            # The copy's upload looks the stored picture up: the copy's probes (its hash and
            # its bits' order), the stored picture's bands.
            found = gap <= near_hash.NEAR and bool(
                set(near_hash.probes(other.phash, other.order)) & set(near_hash.bands(first.phash)))
            flagged += found
            near_only += gap <= near_hash.NEAR
            total += 1
            if not found:
                missed.append(f"{name} ({how}: {gap} bits)")
    recall = flagged / total
    rows.append(("recall: copies flagged by a lookup", f"{flagged} of {total} ({recall:.1%}); within "
                 f"{near_hash.NEAR} bits at all: {near_only / total:.1%}", f">= {RECALL_TARGET:.0%}",
                 "met" if recall >= RECALL_TARGET else "missed"))
    notes.append(f"recall over {len(originals)} pictures ({len(real)} real photos from scikit-image, "
                 f"{len(corpus)} corpus JPEGs, {args.scenes_recall} generated scenes) x {args.copies} "
                 "copies; "
                 f"missed: {'; '.join(missed[:12])}{' ...' if len(missed) > 12 else ''}")


def small_hash(im: Image.Image) -> int:
    """The hash of a picture as its thumb gives it (200 px WebP), without the whole pipeline."""
    thumb = im.copy()
    thumb.thumbnail((200, 200))
    out = io.BytesIO()
    thumb.convert("RGB").save(out, "WEBP", quality=80)
    return near_hash.phash(Image.open(io.BytesIO(out.getvalue())))


def false_rate(hashes: list[int]) -> tuple[int, int]:
    pairs = flagged = 0
    for i, first in enumerate(hashes):
        for second in hashes[i + 1:]:
            pairs += 1
            flagged += near_hash.distance(first, second) <= near_hash.NEAR
    return flagged, pairs


def measure_false_positives(args, rows: list, notes: list) -> None:
    real, corpus = photos()
    photo_hashes = [small_hash(im) for _, im in real + corpus]
    flagged, pairs = false_rate(photo_hashes)
    rows.append((f"false positives: {len(photo_hashes)} distinct real photos",
                 f"{flagged} of {pairs:,} pairs ({flagged / max(pairs, 1):.2%})", f"< {FALSE_TARGET:.0%}",
                 "met" if flagged / max(pairs, 1) < FALSE_TARGET else "missed"))
    scenes = [small_hash(scene((480, 360), 10_000 + seed)) for seed in range(args.scenes)]
    flagged, pairs = false_rate(scenes + photo_hashes)
    rows.append((f"false positives: {args.scenes} generated scenes + those photos", f"{flagged} of {pairs:,} "
                 f"pairs ({flagged / max(pairs, 1):.3%})", f"< {FALSE_TARGET:.0%}",
                 "met" if flagged / max(pairs, 1) < FALSE_TARGET else "missed"))
    notes.append(f"distinct pictures: fewer than 1,000 real photos exist here ({len(real)} from "
                 f"scikit-image's data folder, {len(corpus)} in the test corpus); the other {args.scenes} "
                 "are "
                 "scenes the corpus generator draws from distinct seeds (gradients, shapes, grain): distinct "
                 "pictures but not photographs, so that row says less about real libraries than the first")


def from_quadrants(quadrants: list[int]) -> int:
    """The hash whose four 4x4 quadrants (``near_hash.bands`` without the tag) are these."""
    value = 0
    for index, band in enumerate(quadrants):
        top, left = (index // 2) * 4, (index % 2) * 4
        for position in range(16):
            if band >> (15 - position) & 1:
                u, v = top + position // 4, left + position % 4
                value |= 1 << (63 - (u * near_hash.LOW + v))
    return value


def seed_hashes(db, count: int, batch: int, budget: float, as_if: int) -> list[int]:
    """Insert ``count`` hashed originals, or as many as ``budget`` seconds allow, their band
    values drawn so that each is as frequent as among ``as_if`` uniformly random hashes."""
    records = images(db, BUCKET)
    rng = random.Random(7)
    kept: list[int] = []
    started = time.perf_counter()
    span = max(1, min(65536, round(65536 * count / as_if)))
    for start in range(0, count, batch):
        docs = []
        for _ in range(min(batch, count - start)):
            value = from_quadrants([rng.randrange(span) for _ in range(4)])
            if len(kept) < 2000:
                kept.append(value)
            oid = ObjectId()
            docs.append({"_id": oid, "metadata": {
                "role": "original", "owner": "seed", "key": str(oid), "phash": f"{value:016x}",
                "phash_bands": near_hash.bands(value)}})
        records.insert_many(docs, ordered=False)
        if (start // batch) % 50 == 0:
            say(f"seeded {start + len(docs):,} in {time.perf_counter() - started:.0f} s")
        if time.perf_counter() - started > budget:
            say(f"seeding budget spent at {start + len(docs):,}")
            break
    return kept


def measure_lookup(args, db, rows: list, notes: list) -> int:
    """The lookup's p50 and p99 at ``args.images``; returns how many documents a lookup read."""
    from avenue.media.store import near_duplicates
    from avenue.media.store.indexes import files_indexes

    # Only the index the lookup reads (the app's own definition): on the embedded database
    # every other index of a files collection would cut the seeding rate four-fold (pure
    # Python B-trees), and none of them serves this query.
    images(db, BUCKET).create_indexes([i for i in files_indexes() if i.document["name"] == "phash_bands"])
    started = time.perf_counter()
    kept = seed_hashes(db, args.images, 1000, args.seed_budget, max(args.as_if, args.images))
    seconds = time.perf_counter() - started
    args.images = images(db, BUCKET).estimated_document_count()
    notes.append(f"seeded {args.images:,} files documents (hash fields only) in {seconds:.0f} s")
    rng = random.Random(11)
    timings: list[float] = []
    candidates: list[int] = []
    found = 0
    for n in range(args.lookups):
        value = kept[n % len(kept)]
        for bit in rng.sample(range(64), rng.randint(0, 6)):
            value ^= 1 << bit
        # An upload's order of its bits (least certain first): any order asks for as many keys.
        order = "".join("".join(f"{k:x}" for k in rng.sample(range(16), 16)) for _ in range(4))
        query = {"_id": ObjectId(), "metadata": {"role": "original", "phash": f"{value:016x}",
                                                 "phash_order": order}}
        if n < 20:  # how many documents the $in reads (counted apart, not timed)
            candidates.append(images(db, BUCKET).count_documents(
                {"metadata.phash_bands": {"$in": near_hash.probes(value, order)}}))
        t0 = time.perf_counter()
        matches = near_duplicates.near(db, BUCKET, query)
        timings.append((time.perf_counter() - t0) * 1000)
        found += bool(matches)
    p99 = percentile(timings, 99)
    density = f", band values as dense as at {args.as_if:,}" if args.as_if > args.images else ""
    rows.append((f"lookup at {args.images:,} images (embedded database{density})",
                 f"p50 {percentile(timings, 50):.1f} ms, p99 **{p99:.1f} ms** over {args.lookups} lookups "
                 f"({found} found their near copy; {sum(candidates) / len(candidates):.0f} candidates read "
                 "per lookup, over the first 20)", f"p99 < {LOOKUP_TARGET_MS:.0f} ms",
                 "met" if p99 < LOOKUP_TARGET_MS else "missed"))
    explained = db.command("explain", {"find": images(db, BUCKET).name, "filter": {
        "metadata.phash_bands": {"$in": near_hash.probes(kept[0])}}}, verbosity="queryPlanner")
    plan = str(explained.get("queryPlanner", {}).get("winningPlan", {}))
    notes.append(f"the lookup's plan: {'IXSCAN on phash_bands' if 'phash_bands' in plan else plan[:200]}")
    return round(sum(candidates) / len(candidates))


def seed_candidates(db, bucket: str, value: int, order: str, count: int, seed: int = 5) -> int:
    """``count`` originals of other pictures (hashes far from ``value``) that share one of
    ``value``'s probed band keys each, spread over the keys: what a lookup of ``value`` reads
    in a library as dense as the lookup's step measured, without seeding a million."""
    rng = random.Random(seed)
    keys = near_hash.probes(value, order)
    docs = []
    for n in range(count):
        other = rng.getrandbits(64)
        while near_hash.distance(other, value) <= 2 * near_hash.NEAR:
            other = rng.getrandbits(64)
        own = near_hash.bands(other)
        key = keys[n % len(keys)]
        own[key >> near_hash.BAND_BITS] = key  # that band's value shared, the others its own
        oid = ObjectId()
        docs.append({"_id": oid, "filename": f"seed-{n}.jpg", "metadata": {
            "role": "original", "owner": "bench", "key": str(oid), "phash": f"{other:016x}",
            "phash_bands": own}})
    if docs:
        images(db, bucket).insert_many(docs, ordered=False)
    return images(db, bucket).count_documents({"metadata.phash_bands": {"$in": keys}})


ARMS = ("off", "serial", "beside")


def upload_round(library, pictures: list[bytes]) -> tuple[dict[str, list[float]], int, dict]:
    """``pictures`` uploaded, one per arm in turn: each arm's times (ms), how many "beside"
    answers came without their lookup, and the writes' and lookups' own times (ms)."""
    from avenue.media import Library, Media
    from avenue.media.store import near_duplicates, originals
    from avenue.media.store.originals import Upload

    # What a request leaves for after its answer (the pending variants) is run after the
    # clock stops, as the route does: the upload path is what the uploader waits for.
    after: list = []

    class AfterTheClock(Media):
        def later(self, job):
            after.append(job)
            return False

    library = Library(library.shelf.db, library.shelf.bucket, AfterTheClock())
    real = pipeline.near_hash_of, near_duplicates._threads_unsafe, originals.write_all, near_duplicates.near
    real_beside, real_link_late = near_duplicates.background.beside, near_duplicates.Lookup._link_late
    parts: dict[str, list[float]] = {"write": [], "lookup": []}
    # A lookup the answer did not wait for goes on after it, and links its group: both are
    # waited for after the clock stops, so the next upload (of any arm) does not share the
    # database with them (which would slow it, and flatter or spoil the ratio).
    begun: list = []
    linked = threading.Semaphore(0)

    def beside(target, *args):
        future = real_beside(target, *args)
        begun.append(future)
        return future

    def link_late(self, done, created):
        try:
            real_link_late(self, done, created)
        finally:
            linked.release()

    def no_near_hash(renditions, disabled, pixels=None):  # pipeline.near_hash_of's signature
        return None

    def timed(name, function):
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                parts[name].append((time.perf_counter() - t0) * 1000)
        return run

    originals.write_all, near_duplicates.near = timed("write", real[2]), timed("lookup", real[3])
    near_duplicates.background.beside, near_duplicates.Lookup._link_late = beside, link_late
    arms: dict[str, list[float]] = {arm: [] for arm in ARMS}
    unanswered = 0
    try:
        for n, picture in enumerate(pictures):
            arm = ARMS[n % len(ARMS)]
            pipeline.near_hash_of = real[0] if arm != "off" else no_near_hash
            # "serial": the lookup on the uploading thread, as before it ran beside the write
            # (the seam mongomock uses: before the writes; the same work as after them).
            near_duplicates._threads_unsafe = (lambda db: True) if arm == "serial" else real[1]
            t0 = time.perf_counter()
            stored = library.store(Upload(f"u{n}.jpg", io.BytesIO(picture)), owner="bench", kind="upload")
            arms[arm].append((time.perf_counter() - t0) * 1000)
            late = arm == "beside" and stored.near is None
            unanswered += late
            concurrent.futures.wait(begun)
            begun.clear()
            if late:
                linked.acquire(timeout=60)
            for job in after:
                job()
            after.clear()
    finally:
        (pipeline.near_hash_of, near_duplicates._threads_unsafe, originals.write_all,
         near_duplicates.near) = real
        near_duplicates.background.beside, near_duplicates.Lookup._link_late = real_beside, real_link_late
    return arms, unanswered, parts


def measure_upload(args, db, rows: list, notes: list, candidates: int) -> None:
    from avenue.media import Media
    from avenue.media.store.library import Library

    # Distinct 12 MP pictures, one per upload, drawn as the corpus's photo_12mp.jpg is (the
    # same generator, other seeds, quality 85): no upload is a near copy of another, as most
    # uploads are not (a near copy adds its group's labels, one write per member).
    # A bucket with every index the app keeps (a store writes through them all): first as
    # the run leaves it (a small library: a lookup reads next to nothing), then seeded with
    # as many band matches of each picture as a lookup read in step 3 (a library as dense
    # as ``--as-if``): each lookup then reads them, as it would there.
    library = Library(db, "uploads", Media())
    for phase in ("small", "dense"):
        say(f"upload: {phase} library")
        offset = 100 if phase == "small" else 200
        pictures = [jpeg(scene((4000, 3000), offset + n), 85) for n in range(args.uploads * len(ARMS))]
        library_note = "a small library"
        if phase == "dense":
            read = []
            for n, picture in enumerate(pictures):
                hashed = pipeline.ingest_for_answer(picture, Limits()).near_hash
                if ARMS[n % len(ARMS)] != "off" and hashed is not None:
                    read.append(seed_candidates(db, "uploads", hashed.phash, hashed.order, candidates, n))
            library_note = (f"{sum(read) / len(read):.0f} band matches read per lookup, as at "
                            f"{max(args.as_if, args.images):,}")
        arms, unanswered, parts = upload_round(library, pictures)
        off = percentile(arms["off"], 50)
        beside, serial = percentile(arms["beside"], 50) / off, percentile(arms["serial"], 50) / off
        # Each round's three uploads run one after the other: the median of their own ratios
        # leaves out the machine's drift over the run, which moved the medians' ratio more
        # than the code did (bench/results/near-duplicates-2026-11-25-after-writes.md).
        paired = percentile([b / o for b, o in zip(arms["beside"], arms["off"], strict=True)], 50)
        rows.append((f"12 MP upload answered, hashing and lookup on ÷ off ({library_note})",
                     f"**{beside:.3f}x** with the lookup as the app runs it (beside the write; after "
                     f"the answer on the embedded database) (median {percentile(arms['beside'], 50):.0f} ms "
                     f"vs {off:.0f} ms; round by round {paired:.3f}x; {unanswered} of "
                     f"{args.uploads} answered without it); "
                     f"{serial:.3f}x with it before the write, as it ran until now "
                     f"({percentile(arms['serial'], 50):.0f} ms); {args.uploads} each, in turn",
                     f"< {1 + UPLOAD_TARGET:.2f}x", "met" if beside < 1 + UPLOAD_TARGET else "missed"))
        notes.append(f"{phase} library: upload times (ms), in turn: " + "; ".join(
            f"{arm} {', '.join(f'{t:.0f}' for t in times)}" for arm, times in arms.items())
            + f"; the write's median {percentile(parts['write'], 50):.0f} ms, the lookup's "
            f"{percentile(parts['lookup'], 50):.0f} ms")
    data = (location() / "images" / "good" / "photo_12mp.jpg").read_bytes()
    hash_ms = []
    renditions = pipeline.ingest(data, Limits()).renditions
    thumb = next(r for r in renditions if r.name == "thumb" and r.format == "webp")
    for _ in range(30):
        t0 = time.perf_counter()
        near_hash.compute(thumb.data, frozenset())
        hash_ms.append((time.perf_counter() - t0) * 1000)
    notes.append("hash + palette alone from the 12 MP photo's thumb: median "
                 f"{percentile(hash_ms, 50):.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 images, fewer copies and lookups")
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--as-if", type=int, default=0, help="draw band values as frequent as among this "
                        "many images (the candidates a lookup reads at that size, from a smaller store)")
    parser.add_argument("--seed-budget", type=float, default=float("inf"),
                        help="stop seeding after this many seconds (the table says how many were seeded)")
    parser.add_argument("--uploads", type=int, default=6,
                        help="12 MP uploads with hashing on (and as many off)")
    parser.add_argument("--copies", type=int, default=8, help="copies per photo for the recall")
    parser.add_argument("--scenes", type=int, default=1000, help="generated scenes for the false positives")
    parser.add_argument("--scenes-recall", type=int, default=20, help="generated scenes among the recall's")
    parser.add_argument("--folder", type=Path, help="the embedded database's folder (default: a temp one)")
    parser.add_argument("--only", choices=["quality", "scale"], help="only recall and false positives, "
                        "or only the lookup and the upload")
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    args = parser.parse_args()
    if args.quick:
        args.images, args.lookups, args.uploads, args.copies, args.scenes = 20_000, 50, 2, 3, 100
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = [f"load average at start: {os.getloadavg()[0]:.2f} (2 cores, shared)"]
    if args.only != "scale":
        say("recall")
        measure_recall(args, rows, notes)
        say("false positives")
        measure_false_positives(args, rows, notes)
    if args.only == "quality":
        return report(args, rows, notes)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="avenue-near-"))
    database = EmbeddedServer(folder / "db", log_path=folder / "db.log").start(timeout=600)
    try:
        client = pymongo.MongoClient(database.uri)
        db = client[DB]
        say("lookup")
        candidates = measure_lookup(args, db, rows, notes)
        say("upload")
        from avenue.media.store.indexes import chunks_indexes, files_indexes

        db["uploads.files"].create_indexes(files_indexes())
        db["uploads.chunks"].create_indexes(chunks_indexes())
        measure_upload(args, db, rows, notes, candidates)
        client.close()
    finally:
        database.stop()
    return report(args, rows, notes)


def report(args, rows: list, notes: list) -> int:
    lines = [
        f"# Near-duplicates, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "| what | measured | target | |",
        "| --- | --- | --- | --- |",
        *(f"| {what} | {figure} | {target} | {met} |" for what, figure, target, met in rows),
        "",
        *(f"- {note}" for note in notes),
        "",
        f"Command: `python3 bench/near_duplicates.py{' --quick' if args.quick else ''}"
        f"{f' --only {args.only}' if args.only else ''}` "
        f"({sys.platform}, {os.cpu_count()} cores).",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0 if all(row[3] == "met" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
