"""Kannel's ``sendsms`` beside smsgate's, for bench/single_requests.py --kannel.

A minimal Kannel 1.4.5 (Debian ``kannel``): bearerbox with a spool store
and one ``fake`` SMSC that no fake SMSC ever connects to, so every message
is queued in the store ("3: Queued for later delivery", HTTP 202), and
smsbox answering ``/cgi-bin/sendsms``. What it stored is its store size,
read from bearerbox's admin status page. Kannel's spool writes a file per
message but does not fsync it before the reply, so this is a less durable
accept than smsgate's commit.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from local_net import free_port

PASSWORD = "bench"
CONFIG = """
group = core
admin-port = {admin}
admin-password = {password}
smsbox-port = {boxes}
store-type = spool
store-location = "{spool}"
box-allow-ip = 127.0.0.1
log-level = 4

group = smsc
smsc = fake
smsc-id = fake
host = 127.0.0.1
port = {smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {sendsms}
log-level = 4

group = sendsms-user
username = bench
password = {password}
max-messages = 1
"""


def need_kannel() -> None:
    """Install the Debian package when root may and it is missing."""
    if shutil.which("bearerbox") or Path("/usr/sbin/bearerbox").exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("Kannel is not installed: run `sudo apt-get install -y kannel`")
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "kannel"], check=True, stdout=subprocess.DEVNULL
    )


class Kannel:
    def __init__(self, admin: int, sendsms: int) -> None:
        self.admin, self.sendsms = admin, sendsms

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.sendsms}"

    def stored(self) -> int:
        status = httpx.get(f"http://127.0.0.1:{self.admin}/status.txt?password={PASSWORD}").text
        found = re.search(r"store size (\d+)", status)
        return int(found.group(1)) if found else 0

    def paths(self, count: int) -> list[bytes]:
        return [
            (
                f"/cgi-bin/sendsms?username=bench&password={PASSWORD}&from=BENCH"
                f"&text=Your+code+is+{i:04d}&to=2547{i:07d}9"
            ).encode()
            for i in range(count)
        ]


@contextlib.contextmanager
def running_kannel(tmp: Path) -> Iterator[Kannel]:
    ports = {name: free_port() for name in ("admin", "boxes", "smsc", "sendsms")}
    spool = tmp / "kannel-spool"
    spool.mkdir()
    config = tmp / "kannel.conf"
    config.write_text(CONFIG.format(password=PASSWORD, spool=spool, **ports))
    boxes = []
    try:
        for program in ("/usr/sbin/bearerbox", "/usr/sbin/smsbox"):
            boxes.append(
                subprocess.Popen(
                    [program, str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            time.sleep(1.0)  # smsbox gives up at once if bearerbox is not listening yet
        kannel = Kannel(ports["admin"], ports["sendsms"])
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(kannel.base + "/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("Kannel's smsbox did not come up") from None
                time.sleep(0.1)
        yield kannel
    finally:
        for box in reversed(boxes):
            box.terminate()
            box.wait(30)
