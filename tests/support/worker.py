"""A worker's delivery path (dispatcher, connector, receipt recorder) run inside a test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from smsgate.core.encoding import Encoding
from smsgate.core.model import PreparedMessage
from smsgate.core.states import State
from smsgate.delivery.connectors.base import Connector
from smsgate.delivery.dispatcher import Dispatcher
from smsgate.delivery.routing import Router
from smsgate.store.records import AcceptedBatch
from smsgate.store.repo import Store


async def queued(store: Store, recipients: list[str], text: str = "hello") -> AcceptedBatch:
    """One account with credit for ``recipients``, one message queued to each."""
    count = len(await store.accounts())
    account = await store.create_account(
        name=f"worker{count}", region="KE", timezone="Africa/Nairobi"
    )
    await store.add_credit(account.id, len(recipients) * 100)
    return await store.accept(
        account.id,
        dialect="eapi",
        messages=[
            PreparedMessage(r, 1, "SHOP", text, Encoding.GSM7, 1, 100, None, 0, State.QUEUED)
            for r in recipients
        ],
    )


@asynccontextmanager
async def delivering(
    store: Store, connector: Connector, **dispatcher_options: Any
) -> AsyncIterator[Dispatcher]:
    """Run a dispatcher (and its recorder) over ``connector`` until the block ends."""
    options: dict[str, Any] = {"owner": "w", "retry_base_ms": 0, "idle_poll": 0.01}
    options.update(dispatcher_options)
    dispatcher = Dispatcher(store, Router([], {}, connector), **options)
    recorder = dispatcher.recorder
    await connector.start(recorder, recorder.inbound)
    stopping = asyncio.Event()
    tasks = [
        asyncio.create_task(dispatcher.run(stopping)),
        asyncio.create_task(recorder.run(stopping)),
    ]
    try:
        yield dispatcher
    finally:
        stopping.set()
        dispatcher.wake()
        await asyncio.gather(*tasks)
        await connector.stop()
        await recorder.idle()


async def until_counted(
    store: Store,
    account_id: int,
    expected: dict[State, int],
    within: float = 30.0,
) -> None:
    """Wait until the account's messages are in exactly ``expected`` states."""
    deadline = asyncio.get_running_loop().time() + within
    while (counts := await store.count_by_state(account_id)) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"still {counts}"
        await asyncio.sleep(0.05)
