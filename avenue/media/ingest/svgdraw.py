"""The raster draw of an SVG, in a helper process that is killed at a deadline.

librsvg (through libvips's ``svgload``) cannot be stopped from the outside: libvips checks
its kill flag (``Image.set_kill``, set from an ``eval`` progress callback) only between the
tiles it asks librsvg for, and librsvg draws a whole tile of an SVG at once. Measured on a
sanitised SVG of 50 blurred rectangles (100x80, drawn at 1600 px: 9.4 s), a kill set 0.5 s
in stopped the draw after 24.8 s. There is no cancellation of librsvg's own either. So the
draw runs in a process of its own, and a draw past its deadline is stopped by killing that
process (SIGKILL): its CPU, its memory and the caller's render slot are free at once.

The helpers are a small pool per process (:class:`_Pool`): each one is this file run as a
script (``python -I <this file>``: no package imported, only pyvips) that draws one SVG at a
time, for as long as it is alive; a caller takes an idle one or starts one (a start costs
0.25-0.6 s: Python and libvips), and gives it back after its draw (at most
:data:`IDLE_HELPERS` are kept; more are ended). A helper killed at a deadline, or that died,
is never given back. A helper whose parent is gone ends when its input closes, and ends its
own draw :data:`OWN_MARGIN_SECONDS` after the deadline (``SIGALRM``), so no draw outlives a
worker killed while it waited.

The exchange, one job at a time, in frames of a 4-byte big-endian length then the bytes:
the caller sends the scale (as text; 0 for the size only, :func:`measure`) and the SVG; the
helper answers ``ok`` with the width, height and RGBA pixels (8 bits, sRGB, alpha; none for
the size only), or ``error`` and libvips's message.

Pure: bytes in, pixels out; no database, no Flask. (Run as a script, this module imports
nothing but the standard library and pyvips: keep it so.)
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import IO, Any, BinaryIO

#: Idle helpers a process keeps for the next draws (one per render slot by default,
#: AVENUE_RENDER_CONCURRENCY): more at once are started and ended after their draw.
IDLE_HELPERS = 2
#: A helper's own deadline beyond its caller's: it ends a draw it is still on this long after
#: the caller gave up (the caller kills it first; this is for a caller that died).
OWN_MARGIN_SECONDS = 2
_FRAME = struct.Struct(">I")


class DrawTimedOut(Exception):
    """The draw ran past its deadline; the helper was killed."""


class DrawFailed(Exception):
    """librsvg could not draw the SVG (or the helper died under it): the message says which."""


def draw(data: bytes, scale: float, seconds: float) -> tuple[int, int, bytes]:
    """The sanitised SVG ``data`` drawn at ``scale`` as (width, height, RGBA bytes), by a
    helper process within ``seconds`` of the call (then :class:`DrawTimedOut`, the helper
    killed); :class:`DrawFailed` when librsvg refuses it."""
    deadline = time.monotonic() + seconds
    helper = _POOL.take()
    try:
        helper.send([repr(scale).encode(), str(max(1, int(seconds + 0.999))).encode(), data], deadline)
        status, *answer = helper.receive(3, deadline)
    except BaseException:
        helper.kill()
        raise
    _POOL.give_back(helper)
    if status != b"ok":
        raise DrawFailed(answer[0].decode("utf-8", "replace") if answer else "the draw failed")
    width, height = (int(part) for part in answer[0].split(b"x"))
    return width, height, answer[1]


def measure(data: bytes, seconds: float) -> tuple[int, int]:
    """The size librsvg draws the sanitised SVG ``data`` at, read by a helper as a draw is
    (within ``seconds``, the same errors): its header only, no pixel drawn. For a document
    that declares no size, whose content librsvg lays out to find one."""
    width, height, _ = draw(data, 0.0, seconds)
    return width, height


class _Helper:
    """One helper process and its pipes."""

    def __init__(self) -> None:
        # -I: isolated (this file's directory is not put on sys.path, PYTHON* variables are
        # ignored); the libvips variables (VIPS_CONCURRENCY...) are inherited as they are.
        self.process = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)

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
            raise DrawTimedOut()

    def receive(self, count: int, deadline: float) -> list[bytes]:
        """The status and the rest of an answer (``count`` frames for ``ok``, 2 for
        ``error``), each read before ``deadline`` (:class:`DrawTimedOut` otherwise)."""
        stdout = self.process.stdout
        assert stdout is not None
        frames = [_read(stdout, _FRAME.unpack(_read(stdout, 4, deadline))[0], deadline)]
        for _ in range((count if frames[0] == b"ok" else 2) - 1):
            frames.append(_read(stdout, _FRAME.unpack(_read(stdout, 4, deadline))[0], deadline))
        return frames

    def kill(self) -> None:
        """End the helper now, whatever it is doing (its draw with it)."""
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _read(stream: IO[bytes], size: int, deadline: float) -> bytes:
    """``size`` bytes of ``stream`` (a pipe), waited for until ``deadline``."""
    fd = stream.fileno()
    parts, left = [], size
    while left:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise DrawTimedOut()
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise DrawFailed("the drawing process ended")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class _Pool:
    """The process's idle helpers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[_Helper] = []

    def take(self) -> _Helper:
        with self.lock:
            while self.idle:
                helper = self.idle.pop()
                if helper.process.poll() is None:
                    return helper
        return _Helper()

    def give_back(self, helper: _Helper) -> None:
        with self.lock:
            if len(self.idle) < IDLE_HELPERS and helper.process.poll() is None:
                self.idle.append(helper)
                return
        helper.kill()


_POOL = _Pool()


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


def _serve() -> None:
    """Draw the jobs read from stdin until it closes (see the module doc for the frames)."""
    import pyvips  # type: ignore[import-untyped]  # only the helper loads it here

    # As avenue/media/ingest/vips.py: at most 2 threads, no operation cache.
    if "VIPS_CONCURRENCY" not in os.environ:
        pyvips.concurrency_set(2)
    pyvips.cache_set_max(0)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        scale, seconds, data = _frame_in(stdin), _frame_in(stdin), _frame_in(stdin)
        if scale is None or seconds is None or data is None:
            return
        # The default action of SIGALRM ends the process, even inside librsvg.
        signal.alarm(int(seconds) + OWN_MARGIN_SECONDS)
        try:
            width, height, pixels = _draw_here(pyvips, data, float(scale))
        except pyvips.Error as error:
            signal.alarm(0)
            _frame_out(stdout, b"error")
            _frame_out(stdout, str(error).encode("utf-8", "replace"))
        else:
            signal.alarm(0)
            _frame_out(stdout, b"ok")
            _frame_out(stdout, f"{width}x{height}".encode())
            _frame_out(stdout, pixels)
        stdout.flush()


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        _serve()
