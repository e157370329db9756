"""Every benchmark still runs: each at a tiny size, on its embedded default.

They are not run by the suite otherwise, and they call into the gateway's
internals (stub connectors, instrumented store methods), so an interface
change breaks them silently. Nothing here asserts a figure: performance is
read from the full runs, not from tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

RUNS = {
    "abuse": ["abuse.py", "--seconds", "1", "--slow", "20", "--guessers", "2", "--body-mb", "40"],
    "accept sendbulk": ["accept.py", "sendbulk", "--rounds", "2"],
    "accept send_batch": ["accept.py", "send_batch", "--rounds", "1"],
    "claim depth": ["claim_depth.py", "--messages", "2000", "--shallow", "1000"],
    "console pages": ["console_pages.py", "--messages", "3000"],
    "core hot paths": ["core_hot_paths.py"],
    "single requests": ["single_requests.py", "--seconds", "1", "--clients", "8"],
    "smpp delivery": ["smpp_delivery.py", "--messages", "1000"],
    "smpp ingress": ["smpp_ingress.py", "--messages", "1000"],
    "smpp ingress, receipts": ["smpp_ingress.py", "--messages", "1000", "--receipts"],
    "http delivery": ["http_delivery.py", "--messages", "2000"],
    "callbacks": ["callbacks.py", "--pushes", "300"],
}


@pytest.mark.parametrize("args", list(RUNS.values()), ids=list(RUNS))
def test_the_benchmark_runs(args: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SMSGATE_BENCH_DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, str(BENCH / args[0]), *args[1:]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "ratio" in done.stdout or "floor" in done.stdout, done.stdout[-2000:]
