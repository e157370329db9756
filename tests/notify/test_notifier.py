"""The notifier against real HTTP receivers: isolation between receivers,
poison jobs, and what it logs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from tests.support.receiver import CallbackReceiver
from tests.support.store import claims_of, funded, prepared, sent

from smsgate.api.dialects import advanta
from smsgate.core.states import Reason, State
from smsgate.notify.callbacks import CallbackFormat, HttpCall, Notifier
from smsgate.store.records import CallbackJob, Receipt
from smsgate.store.repo import Store


async def reported(store: Store, url: str, count: int, prefix: str) -> int:
    """``count`` delivered messages of a new account whose reports go to ``url``."""
    account = await funded(store, callback=url)
    batch = await store.accept(
        account.id, dialect="advanta", messages=prepared(count, prefix=prefix)
    )
    claimed = await store.claim_due("t", count, lease_ms=60_000)
    refs = {mid: f"{prefix}-{mid}" for mid in batch.message_ids}
    await store.record_submissions(
        "t", [sent(mid, ref) for mid, ref in refs.items()], claims_of(claimed)
    )
    await store.record_receipts(
        [
            Receipt("sandbox", ref, State.DELIVERED, Reason.NONE, "DELIVRD", 1)
            for ref in refs.values()
        ]
    )
    return account.id


@asynccontextmanager
async def notifying(
    store: Store, formats: dict[str, CallbackFormat], **options: object
) -> AsyncIterator[Notifier]:
    notifier = Notifier(store, formats, time_scale=0.0001, idle_poll=0.01, **options)  # type: ignore[arg-type]
    stopping = asyncio.Event()
    task = asyncio.create_task(notifier.run(stopping))
    try:
        yield notifier
    finally:
        stopping.set()
        await task


async def until_states(
    store: Store, account_id: int, expected: dict[str, int], within: float
) -> None:
    deadline = time.monotonic() + within
    while (states := await store.callback_states(account_id)) != expected:
        assert time.monotonic() < deadline, f"callbacks still {states}"
        await asyncio.sleep(0.02)


async def test_a_slow_receiver_never_holds_back_the_others(store: Store) -> None:
    with CallbackReceiver(delay=1.0) as slow, CallbackReceiver() as fast:
        slow_account = await reported(store, slow.url, 60, "+2547131")
        fast_account = await reported(store, fast.url, 60, "+2547132")
        async with notifying(store, {advanta.DIALECT: advanta.CALLBACKS}, per_receiver=4):
            started = time.monotonic()
            await until_states(store, fast_account, {"sent": 60}, within=5)
            fast_done = time.monotonic() - started
            # The slow one gets its share only: four at a time, a second each.
            assert (await store.callback_states(slow_account)).get("sent", 0) <= 4 * (fast_done + 1)
            assert len(slow.requests) <= 4 * (fast_done + 1) + 4
    assert fast_done < 3.0


async def poison(job: CallbackJob) -> HttpCall:
    raise ValueError(f"cannot render job {job.id}")


async def test_a_poison_job_fails_alone_and_is_given_up_after_its_schedule(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with CallbackReceiver() as receiver:
        bad = await reported(store, receiver.url, 1, "+2547133")
        good = await reported(store, receiver.url, 3, "+2547134")
        formats = {
            advanta.DIALECT: advanta.CALLBACKS,
            "poison": CallbackFormat(render=poison, retry_seconds=(1.0, 1.0)),
        }
        async with store.engines.writer.begin() as conn:  # the bad account's job: unrenderable
            await conn.exec_driver_sql(
                f"UPDATE callback_outbox SET dialect = 'poison' WHERE account_id = {bad}"
            )
        with caplog.at_level(logging.WARNING, logger="smsgate.notify.callbacks"):
            async with notifying(store, formats):
                await until_states(store, good, {"sent": 3}, within=5)
                await until_states(store, bad, {"failed": 1}, within=5)
    async with store.engines.reader.connect() as conn:
        [(attempts, error)] = (
            await conn.exec_driver_sql(
                f"SELECT attempts, last_error FROM callback_outbox WHERE account_id = {bad}"
            )
        ).all()
    assert attempts == 3  # the first try and the schedule's two retries
    assert "render failed: ValueError: cannot render job" in error
    assert "giving up callback" in caplog.text


async def test_the_first_failure_is_logged_with_the_answer_and_no_number(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with CallbackReceiver(fail_first=100) as receiver:
        account_id = await reported(store, receiver.url + "?msisdn=254713500001", 2, "+2547135")
        with caplog.at_level(logging.WARNING, logger="smsgate.notify.callbacks"):
            async with notifying(store, {advanta.DIALECT: advanta.CALLBACKS}):
                await asyncio.to_thread(receiver.wait_for, 2)
                deadline = time.monotonic() + 5
                while "failed (attempt 1)" not in caplog.text:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.01)
    warnings = [r.getMessage() for r in caplog.records if "failed (attempt" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per job
    assert "HTTP 500 'OK'" in warnings[0] and receiver.url in warnings[0]
    assert "254713500001" not in caplog.text and "2547135" not in caplog.text
    assert await store.callback_states(account_id) == {"pending": 2}


async def unstorable_reason(job: CallbackJob) -> HttpCall:
    raise ValueError(f"cannot render\x00job {job.id}")  # PostgreSQL text cannot hold NUL


async def unsendable(job: CallbackJob) -> HttpCall:
    return HttpCall("GET", job.url, headers={"X-Ref": "a\r\nInjected: 1"})


async def test_poison_jobs_with_an_unstorable_reason_or_an_unsendable_request_fail_alone(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A job whose failure text the database cannot hold would fail the
    transaction recording its whole group of attempts, and a request the
    HTTP client refuses to send would never be recorded at all: each is
    given up after its schedule with a reason stored, and the others go on.
    An attempt the database refuses anyway (a retry time beyond any integer
    column) fails the group's record: the others are recorded alone, and it
    is given up."""
    with CallbackReceiver() as receiver:
        nul = await reported(store, receiver.url, 1, "+2547136")
        broken = await reported(store, receiver.url, 1, "+2547137")
        unrecordable = await reported(store, receiver.url, 1, "+2547139")
        good = await reported(store, receiver.url, 3, "+2547138")
        formats = {
            advanta.DIALECT: advanta.CALLBACKS,
            "nul": CallbackFormat(render=unstorable_reason, retry_seconds=(1.0,)),
            "broken": CallbackFormat(render=unsendable, retry_seconds=(1.0,)),
            "never": CallbackFormat(render=poison, retry_seconds=(1e30,)),
        }
        async with store.engines.writer.begin() as conn:
            for dialect, owner in (("nul", nul), ("broken", broken), ("never", unrecordable)):
                await conn.exec_driver_sql(
                    f"UPDATE callback_outbox SET dialect = '{dialect}' WHERE account_id = {owner}"
                )
        with caplog.at_level(logging.WARNING, logger="smsgate.notify.callbacks"):
            async with notifying(store, formats):
                await until_states(store, good, {"sent": 3}, within=5)
                await until_states(store, nul, {"failed": 1}, within=5)
                await until_states(store, broken, {"failed": 1}, within=5)
                await until_states(store, unrecordable, {"failed": 1}, within=5)
    assert len(receiver.requests) == 3  # the unsendable request never left
    async with store.engines.reader.connect() as conn:
        stored = {
            account_id: (attempts, error)
            for account_id, attempts, error in (
                await conn.exec_driver_sql(
                    "SELECT account_id, attempts, last_error FROM callback_outbox"
                    f" WHERE account_id IN ({nul}, {broken})"
                )
            ).all()
        }
        outcomes = (
            await conn.exec_driver_sql(
                "SELECT o.account_id, a.outcome FROM callback_attempts a"
                " JOIN callback_outbox o ON o.id = a.callback_id"
                f" WHERE o.account_id IN ({nul}, {broken}) ORDER BY a.id"
            )
        ).all()
    assert stored[nul][0] == stored[broken][0] == 2  # the first try and the one retry
    assert "render failed: ValueError: cannot render\\x00job" in stored[nul][1]
    assert "request failed: ValueError: " in stored[broken][1]
    assert sorted(outcomes) == sorted(
        [(nul, "retry"), (nul, "failed"), (broken, "retry"), (broken, "failed")]
    )
    assert caplog.text.count("giving up callback") == 3
    [given_up] = await store.callbacks(account_id=unrecordable)
    assert (given_up.attempts, given_up.last_error) == (
        1,
        "its attempt could not be recorded (see the log)",
    )
