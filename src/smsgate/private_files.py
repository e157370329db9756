"""Files the gateway creates hold account data and keys: only its user may read them.

The data directory is created 0700 and the SQLite database 0600 (SQLite then
gives its -wal and -shm files the database's mode). Existing paths are left
as the operator set them: a directory chosen by hand may be shared on purpose.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600


def private_directory(path: Path) -> None:
    """Create ``path`` (and missing parents), the last one readable by this user only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=PRIVATE_DIRECTORY, exist_ok=True)


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (SQLite fills an empty file)."""
    private_directory(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)
