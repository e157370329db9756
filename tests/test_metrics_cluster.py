"""Acceptance: /metrics of 2 API processes and 1 worker on PostgreSQL add up
exactly to what the database holds, during and after a 10,000-message run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PG_ADMIN_DSN
from tests.support.waiting import answers_health, wait_until
from tests.test_cli import free_port

MESSAGES = 10_000
PER_REQUEST = 1_000
FINAL_STATES = ("delivered", "undeliverable", "expired", "rejected", "failed")


def totals(base: str) -> Counter[str]:
    """Each counter family summed over its labels, plus the per-state finals."""
    text = requests.get(base + "/metrics", timeout=10).text
    summed: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                summed[sample.name] += int(sample.value)
                if sample.name == "smsgate_messages_final_total":
                    summed["final:" + sample.labels["state"]] += int(sample.value)
    return summed


async def stored(url: str, schema: str) -> Counter[str]:
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch("SELECT state, count(*) AS n FROM messages GROUP BY state")
    finally:
        await conn.close()
    return Counter({row["state"]: int(row["n"]) for row in rows})


@pytest.mark.postgres
def test_metrics_add_up_across_processes(postgres_url: str, tmp_path: Path) -> None:
    import asyncio

    schema = postgres_url.rsplit("search_path=", 1)[1]
    env = {
        **os.environ,
        "SMSGATE_DATABASE_URL": postgres_url,
        "SMSGATE_DATA_DIR": str(tmp_path / "data"),
        "SMSGATE_SECRET_KEY": "c21zZ2F0ZS10ZXN0LXNlY3JldC1rZXktMzItYnl0ZXM=",
        "SMSGATE_SANDBOX_LATENCY_MS": "1",
        "SMSGATE_SANDBOX_RECEIPT_DELAY_MS": "200",
        "SMSGATE_HEARTBEAT_SECONDS": "0.5",
    }
    created = subprocess.run(
        [sys.executable, "-m", "smsgate", "accounts", "create", "load", "--credit", "20000"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    creds = {
        "partnerID": re.search(r"partnerID: (\d+)", created.stdout).group(1),  # type: ignore[union-attr]
        "apikey": re.search(r"apikey: (\w+)", created.stdout).group(1),  # type: ignore[union-attr]
    }
    api_ports, worker_port = [free_port(), free_port()], free_port()
    logs = [(tmp_path / f"p{i}.log").open("wb") for i in range(3)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "smsgate", "serve", "--no-workers", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for port, log in zip(api_ports, logs, strict=False)
    ]
    processes.append(
        subprocess.Popen(
            [sys.executable, "-m", "smsgate", "worker"],
            env={**env, "SMSGATE_METRICS_PORT": str(worker_port)},
            stdout=logs[2],
            stderr=subprocess.STDOUT,
        )
    )
    bases = [f"http://127.0.0.1:{port}" for port in (*api_ports, worker_port)]
    try:
        for base in bases:
            wait_until(lambda base=base: answers_health(base), 60, f"{base} to answer")

        def send(batch: int) -> int:
            smslist = [
                {
                    **creds,
                    "clientsmsid": i,
                    "mobile": f"2547{batch:02d}{i:06d}",  # endings 000 and 004 fail
                    "message": f"load {i}",
                    "shortcode": "SMSGATE",
                }
                for i in range(PER_REQUEST)
            ]
            reply = requests.post(
                bases[batch % 2] + "/api/services/sendbulk",
                json={"count": PER_REQUEST, "smslist": smslist},
                timeout=120,
            ).json()
            return sum(1 for r in reply["responses"] if r["response-code"] == 200)

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, batch) for batch in range(MESSAGES // PER_REQUEST)]
            # Scraped while the run goes on: nothing finishes that was not accepted.
            middle = [totals(base) for base in bases]
            accepted_replies = sum(f.result() for f in futures)
        accepted_mid = sum(t["smsgate_messages_accepted_total"] for t in middle)
        final_mid = sum(t["smsgate_messages_final_total"] for t in middle)
        assert final_mid <= accepted_mid

        def all_final() -> bool:
            states = asyncio.run(stored(PG_ADMIN_DSN, schema))
            return sum(states[s] for s in FINAL_STATES) == MESSAGES

        wait_until(all_final, 120, "every message final")
        states = asyncio.run(stored(PG_ADMIN_DSN, schema))

        def counted() -> Counter[str]:
            added: Counter[str] = Counter()
            for base in bases:
                added.update(totals(base))
            return added

        wait_until(lambda: counted()["smsgate_messages_final_total"] == MESSAGES, 20, "counts")
        added = counted()
        assert accepted_replies == MESSAGES
        assert added["smsgate_messages_accepted_total"] == sum(states.values()) == MESSAGES
        assert added["smsgate_messages_final_total"] == MESSAGES
        for state in FINAL_STATES:
            assert added[f"final:{state}"] == states[state], state
        assert states["delivered"] and states["undeliverable"] and states["rejected"]
        assert added["smsgate_messages_submitted_total"] == MESSAGES - states["rejected"]
        # The cluster gauges agree whichever process is asked.
        for base in bases:
            text = requests.get(base + "/metrics", timeout=10).text
            assert 'smsgate_queue_messages{state="queued"} 0.0' in text
            assert 'smsgate_account_balance_credits{account="load"}' in text
        assert requests.get(bases[0] + "/readyz", timeout=5).status_code == 200
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
