#!/usr/bin/env python
# ruff: noqa: E501 - the argument table reads better unwrapped
"""The embedded SecantusDB's stall, reproduced with plain pymongo (docs/production.md, "The
embedded database"): the wedging mix is

    .venv/bin/python bench/embedded_stall.py --tag base --cache-size 80M --buckets 4 --writers 4 \
        --readers 6 --read-batch 2 --read-sleep 1.0 --fresh 2 --probers 1 --duration 180

(wedged within 2-8 s in every run on 2 cores); add ``--insert-chunks 4`` or ``--standalone``
for the two levers that stopped it, ``--pool``, ``--read-mode range``, ``--cs 0`` or the oplog
bounds for those that did not.

Standalone repro of the SecantusDB stall under a GridFS media mix.

Starts a fresh secantusd-py (fresh storage folder), runs readers / writers / a change
stream against it with plain pymongo, and declares a STALL when no operation completes
for --stall seconds.  On a stall: probes ping and find_one (with timeouts), takes
py-spy --native dumps, records RSS / data size, then SIGKILLs the server.

Prints one JSON line (prefix RESULT) at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pymongo
from bson import Binary, ObjectId

CHUNK = 255 * 1024
SECANTUSD = str(Path(sys.executable).with_name("secantusd-py"))
PYSPY = str(Path(sys.executable).with_name("py-spy"))  # pip install py-spy for the dumps

ap = argparse.ArgumentParser()
ap.add_argument("--tag", default="run")
ap.add_argument("--readers", type=int, default=6)
ap.add_argument("--writers", type=int, default=3)
ap.add_argument("--deleters", type=int, default=1, help="threads deleting files + tombstone insert")
ap.add_argument("--cs", type=int, default=1, help="1 = a change stream on media_deletions, 0 = poll it")
ap.add_argument("--pool", type=int, default=0, help="maxPoolSize of the ONE shared client (0 = a client per thread)")
ap.add_argument("--read-mode", choices=["cursor", "range"], default="cursor")
ap.add_argument("--read-batch", type=int, default=4, help="chunks per getMore / per range find")
ap.add_argument("--read-sleep", type=float, default=0.2, help="sleep between batches (slow HTTP client)")
ap.add_argument("--insert-chunks", type=int, default=0, help="chunks per insert_many (0 = whole file at once)")
ap.add_argument("--min-mb", type=float, default=5)
ap.add_argument("--max-mb", type=float, default=12)
ap.add_argument("--seed-files", type=int, default=12)
ap.add_argument("--probers", type=int, default=0, help="threads doing find_one on b0.files every 0.2 s")
ap.add_argument("--buckets", type=int, default=1, help="GridFS buckets; writer i writes bucket i %% K")
ap.add_argument("--delete-sleep", type=float, default=2.0)
ap.add_argument("--keep", type=int, default=0, help="deleters delete while more than KEEP files exist (0 = seed-files)")
ap.add_argument("--restart-check", action="store_true", help="after SIGKILL restart on the same folder and time a find_one")
ap.add_argument("--journal", action="store_true", help="clients write with w:1, j:true (the app default is w:majority, j:true)")
ap.add_argument("--fresh", type=int, default=0, help="readers pick among the newest K files (0 = any)")
ap.add_argument("--cache-size", default="256M")
ap.add_argument("--oplog-max-entries", type=int, default=0)
ap.add_argument("--oplog-retention-seconds", type=float, default=0)
ap.add_argument("--standalone", action="store_true")
ap.add_argument("--duration", type=float, default=240)
ap.add_argument("--stall", type=float, default=30)
ap.add_argument("--outdir", default=str(Path(__file__).resolve().parent / "work" / "embedded-stall" / "runs"))
ap.add_argument("--wt-config", default="", help="WIREDTIGER_CONFIG env for the server (e.g. statistics)")
ap.add_argument("--relay", action="store_true", help="every client through avenue.embedded.relay's one connection (make run's)")
ap.add_argument("--ttl-sweep", type=float, default=None, help="the server's TTL sweeper interval (0: no sweeper thread; make run's)")
ap.add_argument("--ttl-index", type=int, default=0, help="documents in a collection with a TTL index (the app has five; 0 = none)")
ap.add_argument("--writer-sleep", type=float, default=0.0)
args = ap.parse_args()

os.makedirs(args.outdir, exist_ok=True)
run_dir = os.path.join(args.outdir, f"{args.tag}-{int(time.time())}")
os.makedirs(run_dir)
data_dir = os.path.join(os.path.dirname(args.outdir), "data", os.path.basename(run_dir))
os.makedirs(data_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
cmd = [SECANTUSD, "--host", "127.0.0.1", "--port", str(port), "--storage-path", data_dir,
       "--log-level", "WARNING", "--cache-size", args.cache_size]
if args.oplog_max_entries:
    cmd += ["--oplog-max-entries", str(args.oplog_max_entries)]
if args.oplog_retention_seconds:
    cmd += ["--oplog-retention-seconds", str(args.oplog_retention_seconds)]
if args.standalone:
    cmd += ["--standalone"]
if args.ttl_sweep is not None:
    config = os.path.join(run_dir, "secantusd.toml")
    with open(config, "w") as out:
        out.write(f"[storage]\nttl_sweep_seconds = {args.ttl_sweep}\n")
    cmd += ["--config", config]
log = open(os.path.join(run_dir, "server.log"), "wb")
env = dict(os.environ)
if args.wt_config:
    env["WIREDTIGER_CONFIG"] = args.wt_config
server = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
URI = f"mongodb://127.0.0.1:{port}/?directConnection=true"
if args.relay:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from avenue.embedded.relay import SerialRelay

    URI = SerialRelay("127.0.0.1", port).start().uri

lock = threading.Lock()
last_progress = time.monotonic()
stats = {"reads": 0, "read_bytes": 0, "writes": 0, "write_bytes": 0, "deletes": 0,
         "cs_events": 0, "polls": 0, "errors": 0}
stop = threading.Event()
files: list[tuple[str, ObjectId, int]] = []  # (bucket, id, nchunks) of readable files


def progress(key: str, n: int = 1, nbytes: int = 0, bkey: str | None = None) -> None:
    global last_progress
    with lock:
        stats[key] += n
        if bkey:
            stats[bkey] += nbytes
        last_progress = time.monotonic()


shared = None
if args.pool:
    shared = pymongo.MongoClient(URI, maxPoolSize=args.pool, serverSelectionTimeoutMS=120000,
                                 socketTimeoutMS=120000, waitQueueTimeoutMS=120000,
                                 **({"journal": True} if args.journal else {}))


def client() -> pymongo.MongoClient:
    if shared is not None:
        return shared
    return pymongo.MongoClient(URI, serverSelectionTimeoutMS=120000, socketTimeoutMS=120000,
                               **({"journal": True} if args.journal else {}))


def wait_up() -> None:
    c = pymongo.MongoClient(URI, serverSelectionTimeoutMS=500)
    t0 = time.monotonic()
    while True:
        try:
            c.admin.command("ping")
            break
        except Exception:
            if time.monotonic() - t0 > 30:
                raise
            time.sleep(0.1)
    c.close()


def put_file(db, size: int, bucket: str = "b0") -> tuple[str, ObjectId, int]:
    """App-style put_files: every chunk with insert_many, then the files doc."""
    fid = ObjectId()
    data = os.urandom(size)
    docs = [{"files_id": fid, "n": n, "data": Binary(data[o:o + CHUNK])}
            for n, o in enumerate(range(0, size, CHUNK))]
    step = args.insert_chunks or len(docs)
    for i in range(0, len(docs), step):
        db[f"{bucket}.chunks"].insert_many(docs[i:i + step], ordered=True)
    db[f"{bucket}.files"].insert_one({"_id": fid, "length": size, "chunkSize": CHUNK,
                                   "uploadDate": time.time(), "filename": f"{fid}.jpg"})
    return bucket, fid, len(docs)


def rand_size() -> int:
    return int(random.uniform(args.min_mb, args.max_mb) * 1024 * 1024)


def reader() -> None:
    db = client()["avenue"]
    while not stop.is_set():
        with lock:
            if not files:
                continue
            bucket, fid, nch = random.choice(files[-args.fresh:] if args.fresh else files)
        chunks = db[f"{bucket}.chunks"]
        try:
            got = 0
            if args.read_mode == "cursor":
                cur = chunks.find({"files_id": fid}, {"_id": 0, "n": 1, "data": 1}).sort("n", 1) \
                    .batch_size(args.read_batch)
                for i, ch in enumerate(cur):
                    got += len(ch["data"])
                    if (i + 1) % args.read_batch == 0:
                        progress("reads", 0)
                        time.sleep(args.read_sleep)
                        if stop.is_set():
                            break
                cur.close()
            else:
                n = 0
                while n < nch and not stop.is_set():
                    batch = list(chunks.find({"files_id": fid, "n": {"$gte": n, "$lt": n + args.read_batch}},
                                             {"_id": 0, "n": 1, "data": 1}).sort("n", 1))
                    if not batch:
                        break
                    got += sum(len(c["data"]) for c in batch)
                    n += len(batch)
                    progress("reads", 0)
                    time.sleep(args.read_sleep)
            progress("reads", 1, got, "read_bytes")
        except Exception as e:  # noqa: BLE001
            with lock:
                stats["errors"] += 1
            print("reader error", type(e).__name__, str(e)[:200], flush=True)
            time.sleep(1)


def writer(idx: int) -> None:
    db = client()["avenue"]
    bucket = f"b{idx % args.buckets}"
    while not stop.is_set():
        try:
            size = rand_size()
            rec = put_file(db, size, bucket)
            with lock:
                files.append(rec)
            progress("writes", 1, size, "write_bytes")
            if args.writer_sleep:
                time.sleep(args.writer_sleep)
        except Exception as e:  # noqa: BLE001
            with lock:
                stats["errors"] += 1
            print("writer error", type(e).__name__, str(e)[:200], flush=True)
            time.sleep(1)


def deleter() -> None:
    db = client()["avenue"]
    while not stop.is_set():
        time.sleep(args.delete_sleep if args.delete_sleep else 0.05)
        with lock:
            if len(files) <= (args.keep or args.seed_files):
                continue
            bucket, fid, _ = files.pop(random.randrange(len(files)))
        try:
            db[f"{bucket}.files"].delete_one({"_id": fid})
            db[f"{bucket}.chunks"].delete_many({"files_id": fid})
            db["media_deletions"].insert_one({"bucket": bucket, "ids": [fid], "at": time.time()})
            progress("deletes")
        except Exception as e:  # noqa: BLE001
            with lock:
                stats["errors"] += 1
            print("deleter error", type(e).__name__, str(e)[:200], flush=True)


def watcher() -> None:
    db = client()["avenue"]
    try:
        with db["media_deletions"].watch([{"$match": {"operationType": "insert"}}],
                                         max_await_time_ms=1000) as stream:
            while stream.alive and not stop.is_set():
                ch = stream.try_next()
                if ch is not None:
                    progress("cs_events")
    except Exception as e:  # noqa: BLE001
        print("watch ended", type(e).__name__, str(e)[:200], flush=True)
        poller()


def poller() -> None:
    db = client()["avenue"]
    since = 0.0
    while not stop.is_set():
        try:
            for d in db["media_deletions"].find({"at": {"$gt": since}}).sort("at", 1).limit(100):
                since = d["at"]
            progress("polls", 0)
        except Exception as e:  # noqa: BLE001
            print("poll error", type(e).__name__, str(e)[:200], flush=True)
        time.sleep(1)


def prober() -> None:
    db = client()["avenue"]
    while not stop.is_set():
        try:
            db["b0.files"].find_one({}, sort=[("_id", -1)])
            progress("polls", 0)
        except Exception as e:  # noqa: BLE001
            print("prober error", type(e).__name__, str(e)[:200], flush=True)
        time.sleep(0.2)


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def du_bytes(path: str) -> int:
    total = 0
    for root, _, fs in os.walk(path):
        for f in fs:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


used_probe = None  # a 1-connection client that did a storage read before the stall


def probe_used_ping() -> str:
    t0 = time.monotonic()
    try:
        used_probe.admin.command("ping")
        return f"ok {time.monotonic() - t0:.2f}s"
    except Exception as e:  # noqa: BLE001
        return f"FAIL {type(e).__name__} after {time.monotonic() - t0:.1f}s"


def probe(command: str) -> str:
    """Run one cheap command on a fresh connection with a 10 s socket timeout."""
    c = pymongo.MongoClient(URI, serverSelectionTimeoutMS=5000, socketTimeoutMS=10000, connectTimeoutMS=5000)
    t0 = time.monotonic()
    try:
        if command == "ping":
            c.admin.command("ping")
        elif command == "find_one_small":
            c["avenue"]["media_deletions"].find_one({}, {"_id": 1})
        elif command == "find_one_files":
            c["avenue"]["b0.files"].find_one({}, {"_id": 1})
        elif command == "count_small":
            c["avenue"]["media_deletions"].estimated_document_count()
        elif command == "serverStatus":
            c.admin.command("serverStatus")
        return f"ok {time.monotonic() - t0:.2f}s"
    except Exception as e:  # noqa: BLE001
        return f"FAIL {type(e).__name__} after {time.monotonic() - t0:.1f}s"
    finally:
        c.close()


def pyspy(name: str) -> None:
    out = os.path.join(run_dir, name)
    try:
        r = subprocess.run([PYSPY, "dump", "--native", "--pid", str(server.pid)],
                           capture_output=True, timeout=120, text=True)
        with open(out, "w") as f:
            f.write(r.stdout + r.stderr)
    except Exception as e:  # noqa: BLE001
        with open(out, "w") as f:
            f.write(f"py-spy failed: {e}\n")


def main() -> None:
    wait_up()
    db = pymongo.MongoClient(URI)["avenue"]
    for k in range(args.buckets):
        db[f"b{k}.chunks"].create_index([("files_id", 1), ("n", 1)], unique=True)
        db[f"b{k}.files"].create_index([("filename", 1), ("uploadDate", 1)])
    db["media_deletions"].insert_one({"bucket": "b0", "ids": [], "at": 0.0})
    if args.ttl_index:  # as the app's rate limits, purge outbox, deletions, links, audit log
        import datetime as dt
        db["expiring"].create_index([("at", 1)], expireAfterSeconds=86400)
        db["expiring"].insert_many([{"at": dt.datetime.now(dt.UTC)} for _ in range(args.ttl_index)])
    for i in range(args.seed_files):
        files.append(put_file(db, rand_size(), f"b{i % args.buckets}"))
    print(f"seeded {args.seed_files} files; server pid {server.pid} port {port}", flush=True)
    global used_probe
    used_probe = pymongo.MongoClient(URI, maxPoolSize=1, serverSelectionTimeoutMS=5000, socketTimeoutMS=10000)
    used_probe["avenue"]["media_deletions"].find_one({})

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(args.readers)]
    threads += [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(args.writers)]
    threads += [threading.Thread(target=deleter, daemon=True) for _ in range(args.deleters)]
    threads += [threading.Thread(target=prober, daemon=True) for _ in range(args.probers)]
    threads.append(threading.Thread(target=watcher if args.cs else poller, daemon=True))
    t_start = time.monotonic()
    global last_progress
    last_progress = t_start
    for t in threads:
        t.start()

    wedged = False
    wedge_t = None
    samples = []
    next_sample = t_start
    while True:
        now = time.monotonic()
        if now >= next_sample:
            with lock:
                s = dict(stats)
            samples.append({"t": round(now - t_start), "rss_mb": rss_kb(server.pid) // 1024,
                            "du_mb": du_bytes(data_dir) // 2**20, **s})
            print(json.dumps(samples[-1]), flush=True)
            next_sample += 10
        if server.poll() is not None:
            print("server exited", server.returncode, flush=True)
            break
        if now - last_progress > args.stall:
            wedged = True
            wedge_t = round(last_progress - t_start)
            break
        if now - t_start > args.duration:
            break
        time.sleep(1)

    result = {"tag": args.tag, "argv": sys.argv[1:], "wedged": wedged,
              "time_to_wedge_s": wedge_t, "ran_s": round(time.monotonic() - t_start),
              "stats": dict(stats), "rss_mb": rss_kb(server.pid) // 1024,
              "du_mb": du_bytes(data_dir) // 2**20, "run_dir": run_dir}
    if wedged:
        pyspy("pyspy-1.txt")
        result["probes"] = {c: probe(c) for c in ("ping", "serverStatus", "find_one_small",
                                                  "find_one_files", "count_small")}
        result["probes"]["ping_on_connection_that_did_a_read"] = probe_used_ping()
        time.sleep(5)
        pyspy("pyspy-2.txt")
    stop.set()
    with open(os.path.join(run_dir, "samples.json"), "w") as f:
        json.dump(samples, f)
    try:
        sizes = []
        for f in os.listdir(data_dir):
            p = os.path.join(data_dir, f)
            if os.path.isfile(p):
                sizes.append((os.stat(p).st_blocks * 512 // 2**20, f))
        sizes.sort(reverse=True)
        result["top_files_mb"] = sizes[:6]
        result["log_files_mb"] = sum(sz for sz, f in sizes if f.startswith("WiredTigerLog"))
    except OSError:
        pass
    wb = max(stats["write_bytes"], 1)
    result["rss_mb_per_gb_written"] = round(result["rss_mb"] / (wb / 2**30), 1)
    result["du_mb_per_gb_written"] = round(result["du_mb"] / (wb / 2**30), 1)
    result["written_gb"] = round(wb / 2**30, 2)
    # SIGTERM first (to observe whether it stops), then SIGKILL.
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(10)
        result["sigterm"] = "stopped"
    except subprocess.TimeoutExpired:
        result["sigterm"] = "ignored(10s)"
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)
    if args.restart_check:
        t0 = time.monotonic()
        srv2 = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        try:
            c = pymongo.MongoClient(URI, serverSelectionTimeoutMS=60000, socketTimeoutMS=60000)
            c["avenue"]["media_deletions"].find_one({})
            n = c["avenue"]["b0.files"].count_documents({})
            result["restart"] = f"answered find_one after {time.monotonic() - t0:.1f}s; b0.files count {n}"
        except Exception as e:  # noqa: BLE001
            result["restart"] = f"FAIL {type(e).__name__}: {str(e)[:100]}"
        finally:
            os.killpg(srv2.pid, signal.SIGKILL)
            srv2.wait(10)
    with open(os.path.join(run_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("RESULT " + json.dumps(result), flush=True)
    for f in os.listdir(data_dir):
        if f.startswith("WiredTigerStat"):
            shutil.copy(os.path.join(data_dir, f), run_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    os._exit(0)


if __name__ == "__main__":
    try:
        main()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
