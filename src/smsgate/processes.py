"""``smsgate serve --processes N``: N HTTP processes on one listening socket.

One Python process uses one core. The parent checks the port is free (and
takes the sandbox lock) once, binds one socket a process on it
(SO_REUSEPORT), then forks N children, each accepting from its own socket;
the kernel spreads new connections evenly over them.
Child 0 also runs the delivery workers; the others are API only, and each
message they accept wakes child 0's dispatcher through a pipe (a byte per
accepted request, never blocking), so delivery starts as promptly as in one
process instead of at the dispatcher's next idle poll.

The parent only supervises. SIGTERM or SIGINT is passed on to every child,
each of which stops gracefully (``runtime.GRACEFUL_SHUTDOWN_SECONDS``); one
still running well after that is killed. A child that ends on its own
(crashed, killed) is not restarted: the parent stops the others and exits
with status 1 and a line saying which child ended and how, so that the
supervisor running smsgate (systemd, Docker, Kubernetes) restarts one whole
server rather than a server running on with part of it missing. Children
get SIGTERM if the parent itself dies, so none lingers on the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}
# How long a child may take to stop beyond the HTTP server's own grace.
_STOP_MARGIN_SECONDS = 10.0


class WakePipe:
    """API-only children tell the worker child that a message was queued."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def notify(self) -> None:
        """Wake the dispatcher; a full pipe already will, so nothing is lost."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._write, b"\0")

    def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` in the running loop whenever a notice arrives."""

        def drain() -> None:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._read, 65536):
                    pass
            wake()

        asyncio.get_running_loop().add_reader(self._read, drain)


def _die_with_parent() -> None:
    """SIGTERM this child when the parent dies (Linux), so none outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def run_children(
    count: int,
    child: Callable[[int], int],
    name: Callable[[int], str],
    forked: Callable[[], None],
) -> int:
    """Fork ``count`` children running ``child(index)``, call ``forked`` once
    all are running, supervise them as the module says, and return the
    server's exit status."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    pids: dict[int, int] = {}
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            _die_with_parent()
            status = 1
            try:
                status = child(index)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        pids[pid] = index
    forked()
    status = 0
    try:
        while True:
            received = signal.sigwait(_SIGNALS)
            if received != signal.SIGCHLD:
                break
            ended = _reap(pids)
            if ended:
                index, how = ended[0]
                print(
                    f"smsgate: process {index} ({name(index)}) {how}; stopping the server",
                    file=sys.stderr,
                    flush=True,
                )
                status = 1
                break
    finally:
        _stop(pids)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return status


def _reap(pids: dict[int, int]) -> list[tuple[int, str]]:
    """The children that have ended (index, how), removed from ``pids``."""
    ended = []
    while pids:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        if pid in pids:
            ended.append((pids.pop(pid), _describe(status)))
    return ended


def _stop(pids: dict[int, int]) -> None:
    """SIGTERM every child still running, wait for them, kill any that hangs."""
    from smsgate.runtime import GRACEFUL_SHUTDOWN_SECONDS

    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACEFUL_SHUTDOWN_SECONDS + _STOP_MARGIN_SECONDS
    while pids:
        _reap(pids)
        left = deadline - time.monotonic()
        if not pids:
            return
        if left <= 0:
            break
        signal.sigtimedwait({signal.SIGCHLD}, min(left, 0.5))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
