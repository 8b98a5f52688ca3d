"""The raster draw of an SVG, in a helper process that is killed at a deadline.

librsvg (through libvips's ``svgload``) cannot be stopped from the outside: libvips checks
its kill flag (``Image.set_kill``, set from an ``eval`` progress callback) only between the
tiles it asks librsvg for, and librsvg draws a whole tile of an SVG at once (a kill set 0.5 s
into a 9.4 s draw stopped it after 24.8 s: docs/performance.md, "Measurements behind the
code"). There is no cancellation of librsvg's own either. So the draw runs in a process of
its own, and a draw past its deadline is stopped by killing that process: its CPU, its memory
and the caller's render slot are free at once.

The deadline is the helper's own CPU time, not the wall clock: a verdict that the SVG is too
costly (remembered for a day, avenue/media/store/undrawable.py) must not depend on how busy
the machine was. The helper arms ``ITIMER_PROF`` for each job (the kernel counts the CPU of
all its threads and sends ``SIGPROF``, whose default action ends it): ended so, the draw
:class:`DrawTimedOut`. A helper that got too little CPU to finish within
:data:`STARVED_FACTOR` times the deadline on the wall clock (a loaded machine, or a stopped
process) is killed and :class:`DrawBusy` raised instead (503, tried again later, never
remembered). Its memory is bounded per job too: the caller tells it what the draw may
allocate (:func:`footprint`, which the caller reserves in the decode budget), and the helper
lowers its ``RLIMIT_DATA`` to that much above what it holds; a draw that needs more fails
inside librsvg (:class:`DrawTooLarge`).

The helpers are one pool per process (:class:`_Pool`) with one bound, :func:`bound` (the
app's AVENUE_RENDER_CONCURRENCY): every draw, an upload's or a rendition's, takes one of at
most that many helpers, waiting up to :data:`HELPER_WAIT_SECONDS` for one (then
:class:`DrawBusy`). Each is this file run as a script (``python -I <this file>``: no package
imported, only pyvips) that draws one SVG at a time, for as long as it is alive; a start costs
0.25-0.6 s (Python and libvips). A helper killed, or that died, is never given back. A helper
whose parent is gone ends when its input closes, and ends its own draw
:data:`OWN_MARGIN_SECONDS` after the caller's wall-clock bound (``SIGALRM``), so no draw
outlives a worker killed while it waited.

The exchange, one job at a time, in frames of a 4-byte big-endian length then the bytes:
the caller sends the scale (0 for the size only, :func:`measure`), the CPU seconds, the wall
clock's seconds it waits, the bytes the draw may allocate (each as text) and the SVG; the
helper answers ``ok`` with the width, height and RGBA pixels (8 bits, sRGB, alpha; none for
the size only), ``memory`` when the draw ran out of its allowance, or ``error`` and libvips's
message.

Pure: bytes in, pixels out; no database, no Flask. (Run as a script, this module imports
nothing but the standard library and pyvips: keep it so.)
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import IO, Any, BinaryIO

#: Helpers a process runs at once, idle or drawing (:func:`bound`; the app sets it to
#: AVENUE_RENDER_CONCURRENCY): a draw past it waits for one.
HELPERS = 2
#: How long a draw waits for a helper of the pool before :class:`DrawBusy` (503), as a
#: rendition waits for a render slot (avenue/media/serve/route.py).
HELPER_WAIT_SECONDS = 10.0
#: How many times its CPU deadline a draw may take on the wall clock before it is taken for
#: starved (:class:`DrawBusy`), not too costly: 8 draws at once on 2 cores get a quarter each.
STARVED_FACTOR = 4
#: A helper's own deadline beyond its caller's wall-clock bound: it ends a draw it is still on
#: this long after the caller gave up (the caller kills it first; this is for a caller that died).
OWN_MARGIN_SECONDS = 2
#: What a helper's draw may allocate beside its pixels (librsvg's and cairo's working memory:
#: paths, dashes, filter surfaces), within its RLIMIT_DATA; measured in
#: bench/results/attacks-2026-11-28-svgdraw.md.
WORK_BYTES = 48 * 1024 * 1024
#: Copies of the drawn pixels a helper holds at its peak (cairo's surface, libvips's image in
#: memory, the bytes it sends), 4 bytes a pixel each.
PIXEL_COPIES = 3
_FRAME = struct.Struct(">I")


class DrawTimedOut(Exception):
    """The draw used more than its deadline of the helper's CPU time; the helper was ended."""


class DrawTooLarge(Exception):
    """The draw needed more memory than :func:`footprint` allows it."""


class DrawBusy(Exception):
    """No helper was free in time, or the draw got too little CPU to finish on the wall clock:
    the machine is busy, nothing is known of the SVG."""


class DrawFailed(Exception):
    """librsvg could not draw the SVG (or the helper died under it): the message says which."""


def bound(helpers: int) -> None:
    """Run at most ``helpers`` helpers at once in this process (at least 1)."""
    _POOL.resize(max(1, helpers))


def footprint(width: int, height: int) -> int:
    """The bytes a helper may allocate to draw ``width`` x ``height`` pixels: what the caller
    reserves in the decode budget for it, and the helper's memory limit for that draw."""
    return WORK_BYTES + width * height * 4 * PIXEL_COPIES


def draw(data: bytes, scale: float, seconds: float, allowed: int) -> tuple[int, int, bytes]:
    """The sanitised SVG ``data`` drawn at ``scale`` as (width, height, RGBA bytes), by a
    helper process within ``seconds`` of its CPU time (then :class:`DrawTimedOut`) and
    ``allowed`` bytes of memory (then :class:`DrawTooLarge`); :class:`DrawBusy` when no helper
    is free within :data:`HELPER_WAIT_SECONDS` or the draw is starved on the wall clock,
    :class:`DrawFailed` when librsvg refuses it."""
    helper = _POOL.take()
    wall = seconds * STARVED_FACTOR
    deadline = time.monotonic() + wall
    # The helper's own alarm follows the caller's bound, read here (one constant for both).
    job = [repr(scale).encode(), repr(float(seconds)).encode(), repr(float(wall)).encode(),
           str(allowed).encode(), data]
    try:
        helper.send(job, deadline)
        status, *answer = helper.receive(3, deadline)
    except BaseException as error:
        ended = helper.kill()
        _POOL.lost()
        if isinstance(error, DrawFailed) and ended == -signal.SIGPROF:  # its CPU timer ran out
            raise DrawTimedOut() from error
        if isinstance(error, DrawFailed) and ended == -signal.SIGALRM:  # its own wall clock: starved
            raise DrawBusy() from error
        raise
    _POOL.give_back(helper)
    if status == b"memory":
        raise DrawTooLarge()
    if status != b"ok":
        raise DrawFailed(answer[0].decode("utf-8", "replace") if answer else "the draw failed")
    width, height = (int(part) for part in answer[0].split(b"x"))
    return width, height, answer[1]


def measure(data: bytes, seconds: float) -> tuple[int, int]:
    """The size librsvg draws the sanitised SVG ``data`` at, read by a helper as a draw is
    (within ``seconds``, the same errors): its header only, no pixel drawn. For a document
    that declares no size, whose content librsvg lays out to find one (in the working memory
    of any draw, no pixels)."""
    width, height, _ = draw(data, 0.0, seconds, footprint(0, 0))
    return width, height


class _Helper:
    """One helper process and its pipes."""

    def __init__(self) -> None:
        # -I: isolated (this file's directory is not put on sys.path, PYTHON* variables are
        # ignored); the libvips variables (VIPS_CONCURRENCY...) are inherited as they are.
        # Freed canvases go back to the kernel at once (gunicorn.conf.py's threshold, which a
        # new program does not inherit): an idle helper keeps no draw's pixels.
        env = {"MALLOC_MMAP_THRESHOLD_": str(1024 * 1024), **os.environ}
        self.process = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def send(self, parts: list[bytes], deadline: float) -> None:
        """Write one job; the helper reads a whole job before it draws, so this never waits
        on a draw (a dead helper: :class:`DrawFailed`)."""
        stdin = self.process.stdin
        assert stdin is not None
        try:
            for part in parts:
                stdin.write(_FRAME.pack(len(part)) + part)
            stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise DrawFailed("the drawing process ended") from error
        if time.monotonic() > deadline:
            raise DrawBusy()

    def receive(self, count: int, deadline: float) -> list[bytes]:
        """The status and the rest of an answer (``count`` frames for ``ok``, 2 for
        ``error``, 1 for ``memory``), each read before ``deadline`` on the wall clock
        (:class:`DrawBusy` otherwise: the helper's CPU deadline is its own)."""
        stdout = self.process.stdout
        assert stdout is not None
        frames = [_read(stdout, _FRAME.unpack(_read(stdout, 4, deadline))[0], deadline)]
        wanted = {b"ok": count, b"memory": 1}.get(frames[0], 2)
        for _ in range(wanted - 1):
            frames.append(_read(stdout, _FRAME.unpack(_read(stdout, 4, deadline))[0], deadline))
        return frames

    def kill(self) -> int:
        """End the helper now, whatever it is doing (its draw with it); how it ended (the
        return code: minus the signal that ended it)."""
        with contextlib.suppress(OSError):
            self.process.kill()
        ended = self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        return ended


def _read(stream: IO[bytes], size: int, deadline: float) -> bytes:
    """``size`` bytes of ``stream`` (a pipe), waited for until ``deadline`` (then
    :class:`DrawBusy`); :class:`DrawFailed` when the helper ended."""
    fd = stream.fileno()
    parts, left = [], size
    while left:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise DrawBusy()
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise DrawFailed("the drawing process ended")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class _Pool:
    """The process's helpers: at most ``most`` alive at once, idle or drawing."""

    def __init__(self, most: int) -> None:
        self.changed = threading.Condition()
        self.idle: list[_Helper] = []
        self.alive = 0
        self.most = most

    def resize(self, most: int) -> None:
        with self.changed:
            self.most = most
            self.changed.notify_all()

    def take(self) -> _Helper:
        """An idle helper, or a new one while fewer than ``most`` are alive; else wait for
        one up to :data:`HELPER_WAIT_SECONDS` (:class:`DrawBusy`)."""
        until = time.monotonic() + HELPER_WAIT_SECONDS
        with self.changed:
            while True:
                while self.idle:
                    helper = self.idle.pop()
                    if helper.process.poll() is None:
                        return helper
                    helper.kill()  # died while idle: reaped, its place free
                    self.alive -= 1
                if self.alive < self.most:
                    self.alive += 1
                    break
                left = until - time.monotonic()
                if left <= 0:
                    raise DrawBusy()
                self.changed.wait(left)
        try:
            return _Helper()
        except BaseException:
            self.lost()
            raise

    def give_back(self, helper: _Helper) -> None:
        """``helper`` after a draw it finished: kept for the next (ended when the bound was
        lowered meanwhile, or it died)."""
        with self.changed:
            self.changed.notify()
            if self.alive <= self.most and helper.process.poll() is None:
                self.idle.append(helper)
                return
            self.alive -= 1
        helper.kill()

    def lost(self) -> None:
        """A helper taken was ended (killed, or it died): its place is free."""
        with self.changed:
            self.alive -= 1
            self.changed.notify()


_POOL = _Pool(HELPERS)


# --- the helper's side (this file run as a script) -------------------------------------------

def _frame_in(stream: BinaryIO) -> bytes | None:
    head = stream.read(4)
    if len(head) < 4:
        return None  # the caller closed its end: no more jobs
    return stream.read(_FRAME.unpack(head)[0])


def _frame_out(stream: BinaryIO, data: bytes) -> None:
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)


def _draw_here(pyvips: Any, data: bytes, scale: float) -> tuple[int, int, bytes]:
    """What avenue/media/ingest/svg.py's rasterise drew in the worker before: RGBA, 8 bits."""
    drawn = pyvips.Image.svgload_buffer(data, scale=scale or 1.0, unlimited=False)
    if not scale:  # measure(): the size only
        return int(drawn.width), int(drawn.height), b""
    if drawn.interpretation != "srgb":
        drawn = drawn.colourspace("srgb")
    if not drawn.hasalpha():
        drawn = drawn.bandjoin(255)
    drawn = drawn.cast("uchar")
    return int(drawn.width), int(drawn.height), bytes(drawn.write_to_memory())


def _limit_data(allowed: int | None) -> None:
    """Let this process's private writable memory (RLIMIT_DATA: heap and anonymous maps) grow
    ``allowed`` bytes above what it holds now, or lift the limit (None)."""
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = hard
    if allowed is not None:
        try:
            with open("/proc/self/status") as status:  # VmData: what RLIMIT_DATA counts (Linux)
                held = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))
        except (OSError, StopIteration):
            return  # no /proc (not Linux): the decode budget's reservation alone
        soft = held + allowed if hard == resource.RLIM_INFINITY else min(hard, held + allowed)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _serve() -> None:
    """Draw the jobs read from stdin until it closes (see the module doc for the frames)."""
    import pyvips  # type: ignore[import-untyped]  # only the helper loads it here

    # No operation cache, as in avenue/media/ingest/vips.py; 2 threads (a helper draws one job at a time).
    if "VIPS_CONCURRENCY" not in os.environ:
        pyvips.concurrency_set(2)
    pyvips.cache_set_max(0)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        job = [_frame_in(stdin) for _ in range(5)]
        if None in job:
            return
        scale, seconds, wall, allowed, data = (part or b"" for part in job)
        cpu = float(seconds)
        # The default actions of SIGPROF and SIGALRM end the process, even inside librsvg.
        # ITIMER_PROF counts this process's CPU time, all its threads' (the verdict, which no
        # load can fake: the kernel's own count, where psutil is not installed and os.wait4's
        # rusage comes only after the end); SIGALRM the wall clock, for a caller that died.
        signal.alarm(int(float(wall)) + 1 + OWN_MARGIN_SECONDS)
        signal.setitimer(signal.ITIMER_PROF, cpu)
        try:
            _limit_data(int(allowed))
            try:
                width, height, pixels = _draw_here(pyvips, data, float(scale))
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
                signal.alarm(0)
                _limit_data(None)
        except MemoryError:
            _frame_out(stdout, b"memory")
        except pyvips.Error as error:
            message = str(error)
            # librsvg's allocations failing under the limit: libvips then reports "unable to
            # write to memory" (its generic words for a failed draw: the sanitised SVG's size
            # was read before, so a failure here is the draw's, taken for the limit's).
            if "memory" in message.lower():
                _frame_out(stdout, b"memory")
            else:
                _frame_out(stdout, b"error")
                _frame_out(stdout, message.encode("utf-8", "replace"))
        else:
            _frame_out(stdout, b"ok")
            _frame_out(stdout, f"{width}x{height}".encode())
            _frame_out(stdout, pixels)
        stdout.flush()


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        _serve()
