"""The SQLite files and the data directory the gateway creates are private to its user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from smsgate.core.model import AccountStatus
from smsgate.store.repo import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_and_its_directory_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a umask that would make them world-readable
    try:
        data_dir = tmp_path / "fresh" / "data"
        store = await Store.open(f"sqlite:///{data_dir / 'smsgate.sqlite3'}")
        try:
            account = await store.create_account(
                name="a", region="KE", timezone="Africa/Nairobi", senders=()
            )
            assert account.status is AccountStatus.ACTIVE
            modes = {f.name: mode(f) for f in data_dir.iterdir()}  # -wal, -shm while open
        finally:
            await store.close()
    finally:
        os.umask(old_umask)
    assert mode(data_dir) == 0o700
    assert "smsgate.sqlite3" in modes and "smsgate.sqlite3-wal" in modes
    assert set(modes.values()) == {0o600}, modes


async def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    shared.chmod(0o750)
    store = await Store.open(f"sqlite:///{shared / 'smsgate.sqlite3'}")
    await store.close()
    assert mode(shared) == 0o750
    assert mode(shared / "smsgate.sqlite3") == 0o600
