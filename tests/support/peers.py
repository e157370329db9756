"""SMPP peers smsgate did not write, run as subprocesses for tests.

Each peer (``tests/peers/node/*.js`` on the npm ``smpp`` package,
``tests/peers/perl/*.pl`` on Net::SMPP) prints one JSON object per line on
stdout: first a ``ready`` line, then one line per event. :class:`Peer` starts
one, waits for its ready line, collects its events in a thread as they come,
waits for conditions over them, and stops it (SIGTERM, then SIGKILL).

The peers are installed by ``scripts/install-test-peers`` (``scripts/check``
runs it). A test whose peer is missing skips with the reason on a user's
machine and fails in CI, where every peer is required.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pytest

if TYPE_CHECKING:
    from tests.support.smpplib_esme import SmpplibEsme

PEERS_DIR = Path(__file__).resolve().parent.parent / "peers"
IMPLEMENTATIONS = ("node", "perl")
"""The peer programs' implementations: npm ``smpp`` and Perl's Net::SMPP."""
ESME_IMPLEMENTATIONS = (*IMPLEMENTATIONS, "smpplib")
"""Clients: the two ESME programs and smpplib (in-process, same events)."""

_PROGRAMS = {
    ("node", "smsc"): ["node", str(PEERS_DIR / "node" / "smsc.js")],
    ("node", "esme"): ["node", str(PEERS_DIR / "node" / "esme.js")],
    ("perl", "smsc"): ["perl", str(PEERS_DIR / "perl" / "smsc.pl")],
    ("perl", "esme"): ["perl", str(PEERS_DIR / "perl" / "esme.pl")],
}
_INSTALL_HINT = "run scripts/install-test-peers (scripts/check does)"

Event = dict[str, Any]
Condition = Callable[[list[Event]], bool]


def _missing(impl: str) -> str | None:
    """Why the ``impl`` peers cannot run here, or None when they can."""
    if impl == "node":
        if shutil.which("node") is None:
            return "node is not on PATH"
        if not (PEERS_DIR / "node" / "node_modules" / "smpp" / "package.json").exists():
            return f"the npm smpp package is not installed in {PEERS_DIR / 'node'}"
        return None
    if impl == "perl":
        if shutil.which("perl") is None:
            return "perl is not on PATH"
        probe = subprocess.run(["perl", "-MNet::SMPP", "-e1"], capture_output=True, check=False)
        return None if probe.returncode == 0 else "Perl's Net::SMPP (libnet-smpp-perl) is missing"
    if impl == "smpplib":
        try:
            import smpplib  # noqa: F401
        except ImportError:
            return "the smpplib Python package is missing (the test extra has it)"
        return None
    raise ValueError(f"unknown peer implementation {impl!r}")


_PROBLEMS: dict[str, str | None] = {}


def require_peer(impl: str) -> None:
    """Skip (fail in CI) unless the ``impl`` peers ("node", "perl", "smpplib") can run."""
    if impl not in _PROBLEMS:
        _PROBLEMS[impl] = _missing(impl)
    problem = _PROBLEMS[impl]
    if problem:
        message = f"SMPP peer {impl}: {problem}; {_INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message + "; every peer is required in CI")
        pytest.skip(message)


def arguments(options: dict[str, Any]) -> list[str]:
    """Python keywords as the peers' options: ``id_style="hex"`` is
    ``--id-style hex``, ``receipt_first=True`` is ``--receipt-first``,
    ``receipt_tlvs=False`` is ``--no-receipt-tlvs``, a list repeats the option,
    a dict is passed as JSON and None leaves the option out."""
    argv: list[str] = []
    for key, value in options.items():
        name = "--" + key.replace("_", "-")
        if value is None:
            continue
        if value is True:
            argv.append(name)
        elif value is False:
            argv.append("--no-" + key.replace("_", "-"))
        else:
            for item in value if isinstance(value, list) else [value]:
                argv += [name, json.dumps(item) if isinstance(item, dict) else str(item)]
    return argv


class EventLog:
    """Events as a peer reports them, and waiting for conditions over them.

    ``events`` grows from another thread; read it through :meth:`of` or wait
    on it with :meth:`wait` / :meth:`wait_for`.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.ready: Event = {}
        self._changed = threading.Condition()
        self._ended = False

    def record(self, event: str, **fields: Any) -> None:
        """Add an event (from any thread) and wake whoever waits."""
        with self._changed:
            self.events.append({"event": event, **fields})
            self._changed.notify_all()

    def end(self) -> None:
        """No event will come any more: waits fail at once instead of timing out."""
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def diagnostics(self) -> str:
        """What a failed wait adds to its message."""
        return ""

    def send(self, command: Event) -> None:
        """Hand the peer a message (an ESME) or a command (an SMSC)."""
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> int:
        """End it cleanly (an ESME unbinds); its exit status."""
        raise NotImplementedError

    def close(self) -> None:
        """End it whatever its state; never raises."""
        raise NotImplementedError

    def wait(
        self, condition: Condition, timeout: float = 10.0, what: str = "the condition"
    ) -> list[Event]:
        """The events once ``condition(events)`` holds; fails the test after
        ``timeout`` seconds, or as soon as the process has ended without it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self.events):
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    state = "ended" if self._ended else f"timed out after {timeout:g}s"
                    raise AssertionError(
                        f"{self!r} {state} waiting for {what}; last events: "
                        f"{self.events[-5:]}{self.diagnostics()}"
                    )
                self._changed.wait(remaining)
            return list(self.events)

    def of(self, event: str, **fields: Any) -> list[Event]:
        """The events named ``event`` whose fields have the given values, so far."""
        with self._changed:
            return [
                e
                for e in self.events
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
            ]

    def wait_for(
        self, event: str, count: int = 1, timeout: float = 10.0, **fields: Any
    ) -> list[Event]:
        """The first ``count`` events named ``event`` with those field values,
        once that many have come."""
        self.wait(
            lambda _: len(self.of(event, **fields)) >= count,
            timeout,
            f"{count} {event} {fields or ''}".rstrip(),
        )
        return self.of(event, **fields)[:count]

    def start(self, timeout: float = 15.0) -> Self:
        """Wait for the ready line: an SMSC listens, or an ESME's bind was answered."""
        self.ready = self.wait_for("ready", timeout=timeout)[0]
        return self

    @property
    def port(self) -> int:
        """The port an SMSC peer listens on, from its ready line."""
        return int(self.ready["port"])


class Peer(EventLog):
    """One peer process, its events, and its end.

    The process is killed by :meth:`close` whatever state it is in, which the
    ``peers`` fixture does on teardown.
    """

    def __init__(self, impl: str, role: str, options: dict[str, Any]) -> None:
        self.impl, self.role = impl, role
        self.argv = [*_PROGRAMS[(impl, role)], *arguments(options)]
        super().__init__()
        self.stderr: list[str] = []
        self._process = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=PEERS_DIR,
            start_new_session=True,  # a Ctrl-C aimed at pytest reaches it through us only
        )
        self._readers = [
            threading.Thread(target=self._read_events, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def __repr__(self) -> str:
        return f"<{self.impl} {self.role} pid {self._process.pid}>"

    # ------------------------------------------------------------ reading

    def _read_events(self) -> None:
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unparsed", "line": line}
            self.record(**event)
        self.end()

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for raw in self._process.stderr:
            with self._changed:
                self.stderr.append(raw.decode("utf-8", "replace").rstrip())

    def diagnostics(self) -> str:
        return f"; stderr: {self.stderr[-5:]}"

    # ------------------------------------------------------------ control

    def send(self, command: Event) -> None:
        """One JSON line on the peer's stdin: a message for an ESME, a command
        (``{"command": "mo", ...}``, ``{"command": "drop"}``) for an SMSC."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command).encode() + b"\n")
        self._process.stdin.flush()

    def exited(self, timeout: float = 10.0) -> int:
        """The exit status once the process ends by itself."""
        status = self._process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return status

    def terminate(self) -> None:
        """SIGTERM, without waiting: a peer unbinds its sessions on it, then exits."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM and the exit status; SIGKILL if it has not ended within
        ``timeout`` seconds."""
        self.terminate()
        try:
            return self.exited(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return self.exited(timeout)

    def close(self) -> None:
        """Kill the process if it still runs; never raises."""
        if self._process.poll() is None:
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(5)
        # The readers end at the pipes' EOF; closing a pipe under a reader
        # that is still in read() makes that thread raise instead.
        for reader in self._readers:
            reader.join(5)
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Peers:
    """Starts peers for one test and kills whatever is left of them after it."""

    def __init__(self) -> None:
        self.started: list[Peer | SmpplibEsme] = []

    def smsc(self, impl: str, **options: Any) -> Peer:
        """A started SMSC (``impl`` "node" or "perl"), listening on a free port
        unless ``port`` is given; options as in tests/peers/README.md."""
        require_peer(impl)
        options.setdefault("port", 0)
        return self._start(Peer(impl, "smsc", options))

    def esme(self, impl: str, port: int, **options: Any) -> EventLog:
        """A started ESME ("node", "perl" or "smpplib") bound to 127.0.0.1:``port``
        (its ready line carries the bind's status); ``messages=[{...}]`` are
        submitted once bound. smpplib takes only system_id, password, mode,
        window and messages."""
        require_peer(impl)
        if impl == "smpplib":
            from tests.support.smpplib_esme import SmpplibEsme

            messages = options.pop("messages", ())
            client = SmpplibEsme(port, **options)
            self.started.append(client)
            client.start()
            if client.ready["status"] == 0:
                for message in messages:
                    client.send(message)
            return client
        options = {"host": "127.0.0.1", "port": port, **options}
        messages = options.pop("messages", None)
        if messages is not None:
            options["message"] = list(messages)
        return self._start(Peer(impl, "esme", options))

    def _start(self, peer: Peer) -> Peer:
        self.started.append(peer)
        peer.start()
        return peer

    def close(self) -> None:
        for peer in self.started:
            peer.close()


@pytest.fixture
def peers() -> Iterator[Peers]:
    """Start independent SMPP peers; each is killed after the test."""
    started = Peers()
    try:
        yield started
    finally:
        started.close()
