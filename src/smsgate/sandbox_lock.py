"""One process runs the sandbox carrier of an SQLite database.

The sandbox is private to the process that runs it: it "delivers" what its
own dispatcher claims. Two worker processes on one SQLite file would each
run one, so a message meant for a connection that is down in one process
could be claimed by the other and marked delivered by its sandbox, a
delivery that never happened. An OS lock on a file beside the database
makes the second process refuse to start instead (``serve --no-workers``
needs no lock: it runs no carrier). The OS drops the lock when the process
dies, however it dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from smsgate.config import Settings

_SUFFIX = ".sandbox.lock"


class SandboxInUse(Exception):
    """Another live process runs the sandbox of this database; the message says which."""


def sandbox_lock_path(settings: Settings) -> Path | None:
    """The lock file of this process's sandbox, or None when no lock is needed
    (PostgreSQL, or an SMPP default connection instead of the sandbox)."""
    url = make_url(settings.effective_database_url)
    if settings.smpp_url or not url.drivername.startswith("sqlite"):
        return None
    if not url.database or url.database == ":memory:":
        return None
    database = Path(url.database).resolve()
    return database.with_name(database.name + _SUFFIX)


def hold_sandbox(settings: Settings) -> IO[str] | None:
    """Take the lock for the life of the process; the returned file must stay open."""
    path = sandbox_lock_path(settings)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise SandboxInUse(
            f"{holder} already runs the delivery workers (and sandbox carrier) of "
            f"{path.parent / path.name.removesuffix(_SUFFIX)}; stop it, or start this one with "
            "--no-workers (API only), or use another SMSGATE_DATA_DIR"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle
