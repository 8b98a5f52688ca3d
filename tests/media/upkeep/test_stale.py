"""upkeep/stale.py, the rerender: variants made with other settings than today's (the variant
table and the formats patched here) are rendered again from their originals (which stay byte for
byte), each new file switched in place of the old one; stale renditions on request removed;
resumable and bounded. One run at a time and the API's lock: tests/api/test_rerender.py."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from bson import ObjectId

from avenue.media import Buckets, formats
from avenue.media.buckets import RENDITIONS
from avenue.media.ingest import variants
from avenue.media.store import renditions, storage
from avenue.media.store.originals import store
from avenue.media.store.rerender import stale_of
from avenue.media.upkeep import stale
from avenue.ops import rerender as job
from tests.helpers import image_bytes, library_upload
from tests.support.records import IMAGE, images, record

PICTURES = ("good/progressive.jpg", "good/png16.png", "good/alpha.png", "good/grayscale.jpg")


def originals(db, bucket: str = Buckets.UPLOADS) -> list[dict]:
    return list(images(db, bucket).find(IMAGE).sort("_id", 1))


def listed(doc: dict) -> dict[tuple[str, str], dict]:
    return {(name, fmt): info for name, formats_ in doc["metadata"]["variants"].items()
            for fmt, info in formats_.items()}


def original_hashes(db, bucket: str = Buckets.UPLOADS) -> dict:
    return {doc["_id"]: hashlib.sha256(storage.read_all(db, bucket, doc)).hexdigest()
            for doc in originals(db, bucket)}


def upload_all(db, bucket: str = Buckets.UPLOADS) -> list[dict]:
    return [store(db, bucket, image_bytes(name), filename=name.split("/")[-1]).doc for name in PICTURES]


def smaller_thumb(monkeypatch) -> None:
    monkeypatch.setitem(variants.VARIANTS, "thumb", (150, 150, "fit"))


def everything(db, bucket: str = Buckets.UPLOADS) -> list[dict]:
    """Every files document of ``bucket``, as JSON (what "nothing changed" compares)."""
    return [json.loads(json.dumps(doc, default=str)) for doc in db[f"{bucket}.files"].find({}).sort("_id", 1)]


def test_uploads_record_their_recipe_and_nothing_is_stale(db):
    upload_all(db)
    for doc in originals(db):
        entries = listed(doc)
        assert entries and all(info.get("recipe") == variants.recipe(name, fmt)
                               for (name, fmt), info in entries.items())
        assert stale_of(doc) == []
        for info in entries.values():
            stored = db[f"{Buckets.UPLOADS}.files"].find_one({"_id": info["id"]})
            assert stored["metadata"]["recipe"] == info["recipe"]
    report = job.run(db)
    assert report.variants_rerendered == 0 and report.images_checked == len(PICTURES)


def test_a_smaller_thumb_rerenders_exactly_the_thumbs_and_keeps_the_originals_byte_for_byte(db, monkeypatch):
    upload_all(db)
    before = {doc["_id"]: listed(doc) for doc in originals(db)}
    hashes = original_hashes(db)
    smaller_thumb(monkeypatch)

    report = job.run(db)

    assert report.images_rerendered == len(PICTURES)
    assert report.variants_rerendered == 2 * len(PICTURES)  # the thumb in WebP and in its fallback
    assert original_hashes(db) == hashes
    files = db[f"{Buckets.UPLOADS}.files"]
    for doc in originals(db):
        after, old = listed(doc), before[doc["_id"]]
        assert set(after) == set(old)
        for pair, info in after.items():
            if pair[0] == "thumb":
                assert info["id"] != old[pair]["id"]
                assert files.find_one({"_id": old[pair]["id"]}) is None  # the old file removed
                new = files.find_one({"_id": info["id"]})
                assert max(new["metadata"]["width"], new["metadata"]["height"]) <= 150
                assert new["metadata"]["key"].endswith(f"/thumb.{pair[1]}")
                assert info["recipe"] == variants.recipe("thumb", pair[1])
            else:
                assert info == old[pair]  # untouched
    assert job.run(db).variants_rerendered == 0  # nothing stale any more


def test_a_changed_default_quality_rerenders_only_that_formats_variants(db, monkeypatch):
    upload_all(db)
    before = {doc["_id"]: listed(doc) for doc in originals(db)}
    webp = formats.BY_NAME["webp"]
    monkeypatch.setitem(formats.BY_NAME, "webp", dataclasses.replace(
        webp, quality=70, save=lambda quality, progressive: {"quality": quality or 70, "method": 4}))

    report = job.run(db)

    assert report.variants_rerendered == 4 * len(PICTURES)  # thumb, card, gallery, og in WebP
    for doc in originals(db):
        for pair, info in listed(doc).items():
            assert (info["id"] != before[doc["_id"]][pair]["id"]) == (pair[1] == "webp")


def test_the_variant_url_serves_the_old_bytes_until_the_switch_then_the_new_ones(app, client, db, editor,
                                                                                monkeypatch):
    media = library_upload(client, editor)
    url = media["variant_urls"]["thumb"]["webp"]
    old = client.get(url)
    assert old.status_code == 200
    smaller_thumb(monkeypatch)
    seen = []

    def pause(name: str, fmt: str) -> None:
        # The new file is stored; the original still lists the old one.
        during = client.get(url)
        seen.append((name, fmt, during.status_code, during.data == old.data))

    with app.app_context():
        report = job.run(db, buckets=[Buckets.BUILDER], before_switch=pause)
    assert report.variants_rerendered == 2
    assert ("thumb", "webp", 200, True) in seen
    after = client.get(url)
    assert after.status_code == 200 and after.data != old.data
    doc = record(db, Buckets.BUILDER, ObjectId(media["id"]))
    new = db[f"{Buckets.BUILDER}.files"].find_one({"_id": listed(doc)[("thumb", "webp")]["id"]})
    assert after.data == storage.read_all(db, Buckets.BUILDER, new)


def test_an_interrupted_run_resumes_where_it_stopped_and_does_each_variant_once(db, monkeypatch):
    upload_all(db)
    hashes = original_hashes(db)
    smaller_thumb(monkeypatch)
    done: list = []
    real = stale.rerender

    def counted(db_, bucket, doc, media, **kwargs):
        written = real(db_, bucket, doc, media, **kwargs)
        done.extend((doc["_id"], entry["variant"], entry["format"]) for entry in written)
        return written

    monkeypatch.setattr(stale, "rerender", counted)
    calls = {"n": 0}

    def crash_on_the_third_image(name: str, fmt: str) -> None:
        calls["n"] += 1
        if calls["n"] == 5:  # the third image's first variant: its new file stored, not switched
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        job.run(db, before_switch=crash_on_the_third_image)
    ids = [doc["_id"] for doc in originals(db)]
    assert stale.checkpoint(db)["last_id"] == ids[1]
    assert {entry[0] for entry in done} == set(ids[:2])

    report = job.run(db, resume=True)

    assert report.images_checked == len(PICTURES) - 2  # after the checkpoint only
    assert len(done) == len(set(done)) == 2 * len(PICTURES)  # each thumb once
    assert {entry[0] for entry in done} == set(ids)
    assert stale.checkpoint(db) is None
    assert original_hashes(db) == hashes
    files = db[f"{Buckets.UPLOADS}.files"]
    for doc in originals(db):
        assert stale_of(doc) == []
        ids_listed = {info["id"] for info in listed(doc).values()}
        held_by = (doc["metadata"].get("content") or {}).get("id", doc["_id"])  # the file of its bytes
        on_disk = {f["_id"] for f in files.find({"metadata.original_id": doc["_id"]}, {"_id": 1})}
        assert on_disk == ids_listed | {held_by}  # no leftover of the interrupted write


def test_a_dry_run_lists_what_is_stale_and_changes_nothing(db, monkeypatch, runner):
    upload_all(db)
    smaller_thumb(monkeypatch)
    before = everything(db)

    report = job.run(db, dry_run=True)
    result = runner.invoke(args=["rerender", "--dry-run"])

    assert report.variants_rerendered == 0 and len(report.stale) == 2 * len(PICTURES)
    assert {(item["variant"], item["id"]) for item in report.stale} == {
        ("thumb", str(doc["_id"])) for doc in originals(db)}
    assert result.exit_code == 0, result.output
    assert result.output.count("would re-render uploads") == 2 * len(PICTURES)
    assert f"would re-render {2 * len(PICTURES)} stale variants" in result.output
    assert everything(db) == before
    assert stale.checkpoint(db) is None


def test_the_cpu_share_sleeps_in_proportion_to_each_render(db, monkeypatch):
    upload_all(db)
    smaller_thumb(monkeypatch)
    now = {"t": 0.0}
    real = stale.rerender

    def two_seconds(*args, **kwargs):
        now["t"] += 2.0  # each image's render takes two seconds of the injected clock
        return real(*args, **kwargs)

    monkeypatch.setattr(stale, "rerender", two_seconds)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now["t"] += seconds

    report = job.run(db, cpu_share=0.25, clock=lambda: now["t"], sleep=sleep)

    assert slept == [pytest.approx(6.0)] * len(PICTURES)  # 2 s rendering, 6 s yielded: a quarter
    assert report.render_seconds == pytest.approx(2.0 * len(PICTURES))
    assert report.render_seconds / report.seconds == pytest.approx(0.25)
    assert job.run(db, cpu_share=1.0, clock=lambda: now["t"], sleep=sleep).slept_seconds == 0


def test_the_limit_stops_after_that_many_images_and_resume_finishes(db, monkeypatch, runner):
    upload_all(db)
    smaller_thumb(monkeypatch)
    first = runner.invoke(args=["rerender", "--limit", "1", "--quiet"])
    assert first.exit_code == 0, first.output
    assert "re-rendered 2 variants of 1 images" in first.output and "--resume" in first.output
    assert sum(1 for doc in originals(db) if stale_of(doc)) == len(PICTURES) - 1
    rest = runner.invoke(args=["rerender", "--resume", "--json"])
    assert rest.exit_code == 0, rest.output
    summary = json.loads(rest.output)
    assert summary["variants_rerendered"] == 2 * (len(PICTURES) - 1)
    assert summary["images_checked"] == len(PICTURES) - 1
    assert all(stale_of(doc) == [] for doc in originals(db))
    recorded = db["ops_runs"].find_one({"_id": "rerender"})["counts"]
    assert recorded["variants_rerendered"] == 2 * (len(PICTURES) - 1)


class Encoded:
    def __init__(self, fmt: str) -> None:
        self.data, self.width, self.height, self.format = b"x" * 100, 10, 10, fmt


def keep(db, key: str, fmt: str) -> dict:
    wanted = renditions.Wanted(Buckets.UPLOADS, ObjectId(), "", key, fmt)
    return renditions.keep(db, wanted, Encoded(fmt), private=False)


def test_stale_renditions_on_request_are_removed_and_the_others_kept(db, monkeypatch):
    webp = keep(db, "w_800", "webp")
    own_quality = keep(db, "w_800,q_50", "webp")
    jpeg = keep(db, "w_800", "jpeg")
    unrecorded = keep(db, "w_400", "jpeg")
    db[f"{RENDITIONS}.files"].update_one({"_id": unrecorded["_id"]}, {"$unset": {"metadata.recipe": ""}})
    assert job.run(db, dry_run=True).stale == [
        {"kind": "rendition", "bucket": RENDITIONS, "id": str(unrecorded["_id"])}]
    webp_format = formats.BY_NAME["webp"]
    monkeypatch.setitem(formats.BY_NAME, "webp", dataclasses.replace(
        webp_format, quality=70, save=lambda quality, progressive: {"quality": quality or 70, "method": 4}))

    report = job.run(db)

    assert report.renditions_checked == 4 and report.renditions_removed == 2
    left = {doc["_id"] for doc in db[f"{RENDITIONS}.files"].find({}, {"_id": 1})}
    assert left == {own_quality["_id"], jpeg["_id"]}  # q_50 is its own quality; JPEG unchanged
    assert webp["_id"] not in left and unrecorded["_id"] not in left
    assert renditions.total(db)["files"] == 2


def test_the_api_starts_one_bounded_run_in_the_background_and_shows_its_progress(client, db, admin, auth,
                                                                               monkeypatch):
    upload_all(db)
    smaller_thumb(monkeypatch)
    threads = []
    real_start = job.start

    def start(*args, **kwargs):
        run, thread = real_start(*args, **kwargs)
        threads.append(thread)
        return run, thread

    monkeypatch.setattr(job, "start", start)
    assert client.get("/api/admin/rerender", headers=admin).get_json() == {"run": None}
    stale = client.get("/api/admin/rerender?stale=1", headers=auth.token("ops")).get_json()["stale"]
    assert stale == {"variants": 2 * len(PICTURES), "renditions": 0, "images": len(PICTURES)}
    assert client.post("/api/admin/rerender", json={"cpu_share": 0}, headers=admin).status_code == 400
    assert client.post("/api/admin/rerender", json={"limit": 0}, headers=admin).status_code == 400
    for body in ({"cpu_share": 0}, {"limit": 0}, {"limit": 2**70}, {"limit": True}, {"limit": 1.5},
                 {"cpu_share": "0.5"}, {"cpu_share": 1.01}, {"cpu_share": None}):
        refused = client.post("/api/admin/rerender", json=body, headers=admin)
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_field", body
    assert client.post("/api/admin/rerender", json={}, headers=auth.token("ops")).status_code == 403

    started = client.post("/api/admin/rerender", json={"limit": 2, "cpu_share": 1}, headers=admin)

    assert started.status_code == 202, started.get_json()
    assert started.get_json()["state"] == "running" and started.get_json()["limit"] == 2
    threads[0].join(60)
    assert not threads[0].is_alive()
    run = client.get("/api/admin/rerender?stale=1", headers=admin).get_json()
    assert run["run"]["state"] == "finished" and run["run"]["id"] == started.get_json()["id"]
    assert run["run"]["counts"]["variants_rerendered"] == 4 and run["run"]["stopped_at_limit"] is True
    assert run["stale"]["variants"] == 2 * (len(PICTURES) - 2)
    assert db["ops_runs"].find_one({"_id": "rerender"})["ok"] is True
