"""The console's bulk upload queue (avenue/console/static/js/upload-queue.js), run under node
with a fake sender: the concurrency limit, what is skipped, retried and refused, progress and
the summary. The browser side (XHR, the panel, a folder) is tests/system/test_console_bulk_upload.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "avenue" / "console" / "static" / "js" / "upload-queue.js"
NODE = shutil.which("node") or shutil.which("nodejs")

# A fake sender and clock for the scripts below: `answers[name]` is the list of answers the
# file's tries get in turn ({status, body, retryAfter} or "network"); `log` records each try
# and how many sends were in flight then; `sleeps` the delays the queue waited.
PRELUDE = """
const log = [];
const sleeps = [];
let inFlight = 0;
let most = 0;
function file(name, type = 'image/jpeg', size = 1000) { return {name, type, size}; }
function sender(answers) {
  return async (f, progress, abort) => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    log.push(f.name);
    const next = (answers[f.name] || []).shift() || {status: 201, body: {id: f.name}};
    progress(0.5);
    await new Promise((resolve) => setTimeout(resolve, 5));
    inFlight -= 1;
    if (next === 'network') throw new Error('network');
    progress(1);
    return next;
  };
}
async function sleep(ms) { sleeps.push(ms); }
const refusal = (status, code, message, retryAfter = null) =>
  ({status, body: {error: {code, message}}, retryAfter});
"""


def run(script: str):
    """The JSON value the script's last expression ``result`` holds, under node, the module as ``q``."""
    if NODE is None:
        pytest.fail("node is missing: run `make node` (apt-get install -y nodejs)")
    code = (f"import * as q from {json.dumps(MODULE.as_uri())};\n{PRELUDE}\n{script}\n"
            "console.log(JSON.stringify(result));")
    done = subprocess.run([NODE, "--input-type=module", "-e", code], capture_output=True, text=True,
                          timeout=60, check=False, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_it_sends_at_most_two_files_at_a_time_and_stores_them_all():
    result = run("""
        const queue = new q.UploadQueue({send: sender({}), sleep});
        queue.add(Array.from({length: 10}, (_, n) => file(`p${n}.jpg`)));
        const summary = await queue.start();
        const result = {most, sent: log.length, counts: summary.counts, text: summary.text,
                        overall: queue.overall()};
    """)
    assert result["most"] == 2 and result["sent"] == 10
    assert result["counts"]["stored"] == 10 and result["overall"] == 1
    assert result["text"] == "10 stored of 10 file(s)."


def test_it_skips_files_that_are_not_images_before_sending_them():
    result = run("""
        const queue = new q.UploadQueue({send: sender({}), sleep});
        queue.add([file('a.jpg'), file('notes.txt', 'text/plain'), file('b.png', ''), file('c.doc', ''),
                   file('.DS_Store', '')]);
        const summary = await queue.start();
        const result = {log, counts: summary.counts, problems: summary.problems.map((p) => p.line)};
    """)
    assert sorted(result["log"]) == ["a.jpg", "b.png"]  # b.png has no type: judged by its name
    assert result["counts"]["skipped"] == 2 and result["counts"]["total"] == 4  # .DS_Store not listed
    assert result["problems"] == ["notes.txt: skipped: Not an image (text/plain); not sent.",
                                  "c.doc: skipped: Not an image (unknown type); not sent."]


def test_a_refusal_is_never_retried_and_the_summary_gives_the_api_s_reason():
    result = run("""
        const queue = new q.UploadQueue({send: sender({
          'big.jpg': [refusal(413, 'image_too_large', 'The image is larger than 10 MB.')],
          'bad.jpg': [refusal(422, 'corrupt_image', 'The image is corrupt.')],
          'doc.jpg': [refusal(415, 'unsupported_image', 'The file is not an image.')],
          'same.jpg': [{status: 200, body: {}}],
        }), sleep});
        queue.add([file('big.jpg'), file('bad.jpg'), file('doc.jpg'), file('same.jpg'), file('ok.jpg')]);
        const summary = await queue.start();
        const result = {log: log.sort(), sleeps, counts: summary.counts, text: summary.text,
                        problems: summary.problems.map((p) => p.line)};
    """)
    assert result["log"] == ["bad.jpg", "big.jpg", "doc.jpg", "ok.jpg", "same.jpg"]  # one try each
    assert result["sleeps"] == []
    assert result["text"] == "1 stored, 1 already there, 3 refused of 5 file(s)."
    assert sorted(result["problems"]) == [
        "bad.jpg: refused: The image is corrupt. (corrupt_image)",
        "big.jpg: refused: The image is larger than 10 MB. (image_too_large)",
        "doc.jpg: refused: The file is not an image. (unsupported_image)"]


def test_a_busy_server_s_retry_after_is_honoured_then_the_file_is_stored():
    result = run("""
        const queue = new q.UploadQueue({send: sender({
          'a.jpg': [refusal(503, 'busy', 'Busy.', '7'), refusal(429, 'rate_limited', 'Slow down.', '2')],
        }), sleep});
        queue.add([file('a.jpg')]);
        const summary = await queue.start();
        const result = {log, sleeps, state: queue.items[0].state, attempts: queue.items[0].attempts};
    """)
    assert result["log"] == ["a.jpg"] * 3
    assert result["sleeps"] == [7000, 2000]
    assert result["state"] == "stored" and result["attempts"] == 3


def test_network_errors_back_off_doubling_and_give_up_after_four_tries():
    result = run("""
        const queue = new q.UploadQueue({send: sender({
          'a.jpg': ['network', 'network', 'network', 'network'],
          'b.jpg': ['network', {status: 500, body: null}],
        }), sleep, random: () => 0});
        queue.add([file('a.jpg'), file('b.jpg')]);
        const summary = await queue.start();
        const tries = (name) => log.filter((n) => n === name).length;
        const result = {tries: tries('a.jpg'), bTries: tries('b.jpg'),
                        sleeps: sleeps.sort((x, y) => x - y), states: queue.items.map((i) => i.state),
                        problems: summary.problems.map((p) => p.line)};
    """)
    assert result["tries"] == 4 and result["bTries"] == 2  # a 500 is not retried
    assert result["sleeps"] == [1000, 1000, 2000, 4000]
    assert result["states"] == ["failed", "failed"]
    assert result["problems"] == ["a.jpg: failed: The server could not be reached. (network)",
                                  "b.jpg: failed: The request failed (HTTP 500). (error)"]


def test_retry_delays_read_retry_after_in_seconds_or_as_a_date_and_cap_the_backoff():
    result = run("""
        const now = Date.parse('2026-11-24T10:00:00Z');
        const result = [q.retryDelay(1, '3', now), q.retryDelay(1, 'Tue, 24 Nov 2026 10:00:05 GMT', now),
                        q.retryDelay(1, null, now, () => 0), q.retryDelay(3, null, now, () => 0),
                        q.retryDelay(12, null, now, () => 0), q.retryDelay(1, null, now, () => 1),
                        q.retryDelay(1, 'soon', now, () => 0),
                        [0, 408, 429, 503, 413, 415, 422, 500].map(q.isRetryable)];
    """)
    assert result[:7] == [3000, 5000, 1000, 4000, 30000, 1500, 1000]
    assert result[7] == [True, True, True, True, False, False, False, False]


def test_cancel_stops_the_queue_and_retry_failed_sends_what_was_left():
    result = run("""
        let queue;
        const send = sender({});
        queue = new q.UploadQueue({send: async (f, progress, abort) => {
          if (f.name === 'p1.jpg' && !queue.cancelled && log.length === 1) queue.cancel();
          return send(f, progress, abort);
        }, sleep, concurrency: 1});
        queue.add([file('p0.jpg'), file('p1.jpg'), file('p2.jpg')]);
        const first = await queue.start();
        const again = await queue.retryFailed();
        const result = {first: first.counts, again: again.counts, log};
    """)
    assert result["first"]["stored"] == 1 and result["first"]["cancelled"] == 2
    assert result["again"]["stored"] == 3 and result["again"]["cancelled"] == 0
    assert result["log"] == ["p0.jpg", "p1.jpg", "p1.jpg", "p2.jpg"]


def test_overall_progress_weighs_files_by_size_and_a_row_says_what_it_waits_for():
    result = run("""
        const queue = new q.UploadQueue({send: sender({}), sleep});
        queue.add([file('small.jpg', 'image/jpeg', 100), file('large.jpg', 'image/jpeg', 300),
                   file('x.txt', 'text/plain', 5000)]);
        queue.items[0].state = 'stored';
        queue.items[1].state = 'sending';
        queue.items[1].progress = 0.5;
        const waiting = {...queue.items[1], state: 'retrying', status: 503, attempts: 1, nextTryAt: 5000};
        const result = {overall: queue.overall(), sending: q.itemText(queue.items[1]),
                        retrying: q.itemText(waiting, 2100), skipped: q.itemText(queue.items[2])};
    """)
    assert result["overall"] == 250 / 400  # the text file does not count
    assert result["sending"] == "50 %"
    assert result["retrying"] == "retrying in 3 s (HTTP 503; try 2 of 4)"
    assert result["skipped"] == "Skipped: Not an image (text/plain); not sent."


def test_an_svg_is_sent_whether_the_browser_types_it_or_not():
    result = run("""
        const queue = new q.UploadQueue({send: sender({}), sleep});
        queue.add([file('logo.svg', 'image/svg+xml'), file('icon.SVG', ''), file('notes.svgz.txt', '')]);
        const summary = await queue.start();
        const result = {log, counts: summary.counts};
    """)
    assert sorted(result["log"]) == ["icon.SVG", "logo.svg"]
    assert result["counts"]["skipped"] == 1
