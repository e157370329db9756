"""The request record kept with a batch, on both engines: redacted, bounded,
one value per batch."""

from __future__ import annotations

import orjson
from tests.support.store import funded, prepared

from smsgate.request_record import LIMIT, REDACTED, TRUNCATED, RequestSeen, request_record
from smsgate.store.repo import Store


async def test_a_batch_keeps_its_redacted_request_for_every_message(store: Store) -> None:
    account = await funded(store, credit=10_000)
    seen = RequestSeen(
        "sendsms",
        "192.0.2.7",
        {"apikey": "k-secret", "partnerID": "12", "mobile": "254700000001", "message": "hi"},
    )
    record = request_record("advanta", seen, 1_700_000_000_000)
    batch = await store.accept(
        account.id, dialect="advanta", messages=prepared(2, cost=100), request=record
    )
    for message_id in batch.message_ids:
        found = await store.console_message(message_id)
        assert found is not None and found.request is not None
        kept = orjson.loads(found.request)
        assert kept["operation"] == "sendsms" and kept["client"] == "192.0.2.7"
        assert kept["params"]["apikey"] == REDACTED
        assert kept["params"]["mobile"] == "254700000001"
        assert "k-secret" not in found.request


async def test_a_large_bulk_stores_one_bounded_record(store: Store) -> None:
    account = await funded(store, credit=10_000_000)
    rows = [{"apikey": "k-row", "mobile": f"2547{i:08d}", "message": "x"} for i in range(30_000)]
    seen = RequestSeen("sendbulk", "192.0.2.8", {"password": "p4ss", "smslist": rows})
    record = request_record("advanta", seen, 1)
    assert len(record) <= LIMIT
    batch = await store.accept(
        account.id, dialect="advanta", messages=prepared(3, cost=1), request=record
    )
    found = await store.console_message(batch.message_ids[0])
    assert found is not None and found.request == record
    assert "p4ss" not in record and "k-row" not in record and f"{TRUNCATED} 29995 more" in record


async def test_a_batch_accepted_without_a_record_has_none(store: Store) -> None:
    account = await funded(store, credit=1_000)
    batch = await store.accept(account.id, dialect="eapi", messages=prepared(1, cost=1))
    found = await store.console_message(batch.message_ids[0])
    assert found is not None and found.request is None
