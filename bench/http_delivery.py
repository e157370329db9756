"""How fast one worker delivers queued messages through an upstream HTTP provider.

Workload: ``--messages`` (default 100,000) single-part GSM7 messages queued
in a fresh SQLite file before timing starts (as bench/smpp_delivery.py
does). The provider is a second smsgate in its own process (API only, its
own SQLite file), taking partnerID/apikey ``sendbulk`` requests. This process
runs what a worker runs: a Dispatcher (``--batch-size``) over an upstream
HTTP connection (``--in-flight`` requests at once, ``--per-request``
messages each) and its DeliveryRecorder. The figure is the drain: from the
first claim until no message is queued, each one taken by the provider and
its outcome recorded here.

The floor, in the same run against the same provider: a bare httpx client
posting the same sendbulk bodies with the same concurrency, no database on
this side: the provider's own accept rate, which no connection to it can
beat.

    .venv/bin/python bench/http_delivery.py [--messages 100000] [--in-flight 4]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import orjson
import uvicorn

from local_net import free_port, wait_until_serving
from smpp_delivery import SENDER, queue_in_child, recipient, text
from smsgate.config import Settings
from smsgate.core.states import State
from smsgate.credentials import CredentialKind, hash_secret, new_api_key, new_partner_id
from smsgate.delivery.connectors.http import http_connector
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.dispatcher import Dispatcher
from smsgate.delivery.routing import Router
from smsgate.runtime import Runtime, settle_garbage_collector
from smsgate.store.repo import Store

SECRET_KEY = "c21zZ2F0ZS1iZW5jaC1zZWNyZXQta2V5LTMyLWJ5dGU="


def serve_provider(directory: str, port: int, count: int, ready: Connection) -> None:
    """The upstream provider: smsgate's API on its own SQLite file, with one
    account able to pay for every message the run sends (twice: the floor too)."""

    async def main() -> None:
        settings = Settings(data_dir=Path(directory), secret_key=SECRET_KEY, sandbox_latency_ms=1.0)
        runtime = await Runtime.open(settings)
        store = runtime.store
        partner_id, apikey = new_partner_id(), new_api_key()
        account = await store.create_account(
            name="bench-provider",
            region="KE",
            timezone="Africa/Nairobi",
            senders=[SENDER],
            # The bench measures delivery, not the provider account's own rate.
            options={"max_messages_per_second": 10**9, "message_burst": 10**9},
        )
        await store.add_credential(
            account.id,
            kind=CredentialKind.PARTNER_APIKEY,
            identifier=partner_id,
            secret_hash=hash_secret(apikey),
        )
        await store.add_credit(account.id, 4 * count * 100, "bench")
        config = uvicorn.Config(
            runtime.app(with_workers=False), host="127.0.0.1", port=port, log_level="warning"
        )
        ready.send((partner_id, apikey))
        await uvicorn.Server(config).serve()

    asyncio.run(main())


def sendbulk_bodies(count: int, per_request: int, partner_id: str, apikey: str) -> list[bytes]:
    bodies = []
    for start in range(0, count, per_request):
        entries = [
            {
                "partnerID": partner_id,
                "apikey": apikey,
                "pass_type": "plain",
                "clientsmsid": str(i),
                "mobile": recipient(i).lstrip("+"),
                "message": text(i),
                "shortcode": SENDER,
            }
            for i in range(start, min(start + per_request, count))
        ]
        bodies.append(orjson.dumps({"count": len(entries), "smslist": entries}))
    return bodies


async def floor(url: str, bodies: list[bytes], in_flight: int) -> float:
    """Seconds for a bare client to have the provider accept every body."""
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        slots = asyncio.Semaphore(in_flight)

        async def post(body: bytes) -> None:
            async with slots:
                response = await client.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
                codes = {r["response-code"] for r in response.json()["responses"]}
                if codes != {200}:
                    raise SystemExit(f"the provider refused the floor's messages: {codes}")

        started = time.perf_counter()
        await asyncio.gather(*(post(body) for body in bodies))
        return time.perf_counter() - started


async def drain(database: str, upstream: HttpSettings, count: int, batch_size: int) -> float:
    """Seconds from the first claim until nothing is queued."""
    store = await Store.open(database, migrate=False)
    connector = http_connector(upstream)
    dispatcher = Dispatcher(
        store, Router([], {}, connector), owner="bench-worker", batch_size=batch_size
    )
    await connector.start(dispatcher.recorder, dispatcher.recorder.inbound)
    settle_garbage_collector()
    stopping = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(dispatcher.run(stopping))
    try:
        while True:
            # The connector's own count first: a count over 100,000 rows costs
            # the core being measured real time.
            if connector.health().sent >= count:
                states = await store.count_by_state()
                if not states.get(State.QUEUED):
                    break
            if time.perf_counter() - started > 600:
                raise SystemExit(f"timed out; {connector.health()}")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        if states.get(State.SUBMITTED, 0) != count:
            raise SystemExit(f"expected {count:,} taken, got {states}")
    finally:
        stopping.set()
        dispatcher.wake()
        await task
        await dispatcher.recorder.idle()
        await connector.stop()
        await store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--per-request", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=4_000)
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        provider_dir = Path(tmp) / "provider"
        provider_dir.mkdir()
        port = free_port()
        theirs, ours = spawn.Pipe(duplex=False)
        provider = spawn.Process(
            target=serve_provider, args=(str(provider_dir), port, args.messages, ours), daemon=True
        )
        provider.start()
        try:
            partner_id, apikey = theirs.recv()
            base = f"http://127.0.0.1:{port}/api/services"
            wait_until_serving(f"http://127.0.0.1:{port}", within=30)
            bodies = sendbulk_bodies(args.messages, args.per_request, partner_id, apikey)
            bare = asyncio.run(floor(f"{base}/sendbulk", bodies, args.in_flight))
            database = f"sqlite:///{tmp}/ours.sqlite3"
            child = spawn.Process(target=queue_in_child, args=(database, args.messages, False))
            child.start()
            child.join()
            if child.exitcode != 0:
                raise SystemExit("queueing the messages failed")
            upstream = HttpSettings.from_url(
                f"advanta+http://{partner_id}:{apikey}@127.0.0.1:{port}/api/services"
                f"?name=provider&in_flight={args.in_flight}&batch={args.per_request}&timeout=60"
            )
            seconds = asyncio.run(drain(database, upstream, args.messages, args.batch_size))
        finally:
            provider.terminate()
            provider.join()
    count = args.messages
    print(f"http delivery of {count:,} messages, {args.in_flight} requests in flight,")
    print(f"  {args.per_request:,} a request, to a second smsgate (partnerID/apikey sendbulk)")
    print(
        f"  drain (first claim -> nothing queued)   {seconds:6.2f} s {count / seconds:9,.0f} msg/s"
    )
    print(f"  floor (bare httpx, same bodies, same concurrency) {count / bare:9,.0f} msg/s")
    print(f"  ratio floor/drain {seconds / bare:5.1f}x")


if __name__ == "__main__":
    main()
