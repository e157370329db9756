"""Whether claiming slows down, or the worker grows, as the queue gets deep.

Workload: ``--messages`` (default 1,000,000) single-part messages queued with
``Store.accept`` in batches of 30,000 (in a child process, before timing), on
a fresh SQLite file or the database in SMSGATE_BENCH_DATABASE_URL (for
PostgreSQL, ``...?search_path=schema`` with an empty scratch schema). Then
this process drains them as ``smsgate worker`` would, with the real
Dispatcher (``--batch-size`` per claim) over a connector that takes every
message at once: so what is measured is the store's side of dispatch, claim
-> record the submission, with nothing else on the core.

The drain is reported in tenths: the rate of each tenth (the first runs with
the whole queue ahead of it, the last with almost none) and the worker's
resident memory at its end. The floor, measured in the same run on the same
database before the deep queue is written, is the same drain of a shallow
queue (``--shallow``, default 10,000 messages): a claim rate that holds at
depth is one close to it.

    .venv/bin/python bench/claim_depth.py [--messages 1000000] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from smsgate.delivery.connectors.base import AckCounter, ClaimCheck, SubmissionSink
from smsgate.delivery.dispatcher import Dispatcher
from smsgate.delivery.routing import Router
from smsgate.runtime import settle_garbage_collector
from smsgate.store.records import CarrierPart, OutboundMessage, Submitted
from smsgate.store.repo import Store

sys.path.insert(0, str(Path(__file__).parent))
from smpp_delivery import queue_in_child  # bench/ is not a package

TENTHS = 10


def resident_mib() -> float:
    """Current (not peak) resident set size: flat memory is what is asked. It
    includes SQLite's page cache, which grows to its 64 MiB cap as pages are
    touched; the Python heap (``sys.getallocatedblocks``) is reported beside it."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class TakesEverything:
    """A carrier that accepts every message at once and never sends a receipt."""

    name = "instant"
    shared = False
    is_up = True

    async def start(self, *_sinks: object) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def submit(
        self, messages: Sequence[OutboundMessage], record: SubmissionSink, claims: ClaimCheck
    ) -> None:
        acks = AckCounter()
        for m in messages:
            ref = f"c{m.id}"
            record(Submitted(m.id, self.name, (CarrierPart(1, ref, ref),)), acks.owe())
        await acks.all_paid()


def queue(url: str, count: int) -> None:
    child = multiprocessing.get_context("spawn").Process(
        target=queue_in_child, args=(url, count, False)
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"queueing {count:,} messages failed (exit code {child.exitcode})")


async def drain(url: str, count: int, batch_size: int) -> list[tuple[float, float, int]]:
    """(seconds, resident MiB, Python heap blocks) at the end of each tenth."""
    store = await Store.open(url, migrate=False)
    dispatcher = Dispatcher(
        store, Router([], {}, TakesEverything()), owner="bench", batch_size=batch_size
    )
    settle_garbage_collector()
    marks: list[tuple[float, float, int]] = []
    done, started = 0, time.perf_counter()
    try:
        while done < count:
            claimed = await dispatcher.dispatch_once()
            if not claimed:
                raise SystemExit(f"the queue ran dry after {done:,} of {count:,}")
            done += claimed
            while len(marks) < TENTHS and done >= count * (len(marks) + 1) // TENTHS:
                marks.append(
                    (time.perf_counter() - started, resident_mib(), sys.getallocatedblocks())
                )
    finally:
        await store.close()
    return marks


def measured(url: str, count: int, batch_size: int) -> list[tuple[float, float, int]]:
    queue(url, count)
    return asyncio.run(drain(url, count, batch_size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--shallow", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("SMSGATE_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
        # The shallow queue first, on the same database: drained, it leaves
        # nothing waiting, and its few submitted rows change nothing deep.
        shallow = measured(url, args.shallow, args.batch_size)
        queued = time.perf_counter()
        deep = measured(url, args.messages, args.batch_size)
        total = time.perf_counter() - queued
    engine = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    floor_rate = args.shallow / shallow[-1][0]
    print(
        f"claim -> record submission, {args.messages:,} queued, batch {args.batch_size},"
        f" {engine} (whole run with queueing {total:.0f} s)"
    )
    print("  tenth  queue ahead   msg/s   resident MiB   Python heap blocks")
    previous = 0.0
    for index, (seconds, mib, blocks) in enumerate(deep):
        ahead = args.messages - args.messages * index // TENTHS
        rate = args.messages / TENTHS / (seconds - previous)
        print(f"  {index + 1:5d}  {ahead:11,}  {rate:7,.0f}   {mib:12.1f}   {blocks:18,}")
        previous = seconds
    overall = args.messages / deep[-1][0]
    print(
        f"  whole drain {overall:,.0f} msg/s; resident {deep[0][1]:.1f} -> {deep[-1][1]:.1f} MiB,"
        f" Python heap {deep[0][2]:,} -> {deep[-1][2]:,} blocks"
    )
    print(
        f"  floor: the same drain of {args.shallow:,} queued: {floor_rate:,.0f} msg/s;"
        f" deep/shallow {overall / floor_rate:.2f}"
    )


if __name__ == "__main__":
    main()
