"""smsgate's SMPP connector against SMSCs it did not write (npm smpp,
Net::SMPP), each in its default style: sequential decimal ids, every receipt
50 ms after its submit_sm_resp.

First the connector alone (its outcomes, receipts and MO), then a worker's
whole delivery path (store, dispatcher, connector, receipt recorder) on both
engines, checked by the final states in the store and by what the SMSC
recorded: every message sent once, every deliver_sm acknowledged.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from smsgate.core.states import Reason, State
from smsgate.delivery.connectors.base import Ack
from smsgate.delivery.connectors.smpp import SmppConnector, SmppSettings
from smsgate.store.records import InboundMessage, Receipt, Refused, SubmitOutcome, Submitted
from smsgate.store.repo import Store
from tests.smpp.test_connector import Live, outbound, until
from tests.support.peers import IMPLEMENTATIONS, Peer, Peers
from tests.support.worker import delivering, queued, until_counted

pytestmark = pytest.mark.parametrize("impl", IMPLEMENTATIONS)


def connector_to(smsc: Peer, **settings: Any) -> SmppConnector:
    values: dict[str, Any] = {
        "name": f"peer-{smsc.impl}",
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": "smsgate",
        "password": "secret",
        "reconnect_min_seconds": 0.05,
    }
    values.update(settings)
    return SmppConnector(SmppSettings(**values))


class Sinks:
    """What the connector hands over, each acknowledged at once (as committed)."""

    def __init__(self) -> None:
        self.outcomes: dict[int, SubmitOutcome] = {}
        self.receipts: list[Receipt] = []
        self.inbound: list[InboundMessage] = []

    def outcome(self, outcome: SubmitOutcome, ack: Ack) -> None:
        self.outcomes[outcome.message_id] = outcome
        ack()

    def receipt(self, receipt: Receipt, ack: Ack | None = None) -> None:
        self.receipts.append(receipt)
        if ack is not None:
            ack()

    def mo(self, message: InboundMessage, ack: Ack | None = None) -> None:
        self.inbound.append(message)
        if ack is not None:
            ack()


EXPECTED = {
    "+254712345011": (State.DELIVERED, Reason.NONE),
    "+254712345000": (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER),
    "+254712345001": (State.UNDELIVERABLE, Reason.UNKNOWN_SUBSCRIBER),
    "+254712345002": (State.UNDELIVERABLE, Reason.SENDER_BLOCKED),
    "+254712345003": (State.EXPIRED, Reason.VALIDITY_EXPIRED),
    "+254712345005": (State.DELIVERED, Reason.NONE),  # and the handset replies
    "+254712345012": (State.DELIVERED, Reason.NONE),  # a long message: three parts
    **{f"+2547123461{n:02d}": (State.DELIVERED, Reason.NONE) for n in range(12)},
}
LONG = "Habari za asubuhi, " * 20  # 380 characters


@pytest.mark.parametrize("bind_mode", ["transceiver", "transmitter_receiver"])
async def test_the_connector_submits_and_correlates(
    impl: str, bind_mode: str, peers: Peers
) -> None:
    smsc = peers.smsc(impl)
    connector = connector_to(smsc, bind_mode=bind_mode, window=5)
    sinks = Sinks()
    await connector.start(sinks.receipt, sinks.mo)
    assert await connector.wait_bound(5)
    recipients = [*EXPECTED, "+254712345004"]  # the last is refused by the SMSC
    messages = [
        outbound(i, r, LONG if r.endswith("012") else "Ping")
        for i, r in enumerate(recipients, start=1)
    ]
    try:
        await connector.submit(messages, sinks.outcome, Live())
        receipts_due = len(EXPECTED) + 2  # the long message has a receipt per part
        await until(lambda: len(sinks.receipts) == receipts_due, "every receipt", within=10)
        await until(lambda: len(sinks.inbound) == 1, "the reply")
    finally:
        await connector.stop()

    by_recipient = {m.recipient: sinks.outcomes[m.id] for m in messages}
    refused = by_recipient.pop("+254712345004")
    assert isinstance(refused, Refused)
    assert (refused.state, refused.error) == (State.REJECTED, "ESME_RSUBMITFAIL")
    assert all(isinstance(o, Submitted) for o in by_recipient.values())
    submitted = {r: o.carrier_ref for r, o in by_recipient.items() if isinstance(o, Submitted)}
    # Each message is known by the id the SMSC gave its (first) submit_sm.
    given = {e["destination"]: e["message_id"] for e in reversed(smsc.of("submit_sm"))}
    assert submitted == {r: given[r.lstrip("+")] for r in submitted}
    assert len(set(submitted.values())) == len(submitted)
    # Every receipt names an id the SMSC gave one of the message's parts, and
    # carries that message's outcome; every message got one.
    recipient_of = {
        e["message_id"]: "+" + e["destination"] for e in smsc.of("submit_sm") if e["status"] == 0
    }
    assert {recipient_of[r.carrier_ref] for r in sinks.receipts} == set(submitted)
    for receipt in sinks.receipts:
        expected = EXPECTED[recipient_of[receipt.carrier_ref]]
        assert (receipt.state, receipt.reason) == expected, receipt
    [reply] = sinks.inbound
    assert (reply.sender, reply.body) == ("254712345005", "Re: Ping")
    # Nothing sent twice; every deliver_sm acknowledged.
    sent = Counter(e["destination"] for e in smsc.of("submit_sm"))
    assert sent == {r.lstrip("+"): 3 if r.endswith("012") else 1 for r in recipients}
    delivered = smsc.of("deliver_sm")
    await asyncio.to_thread(smsc.wait_for, "deliver_sm_resp", len(delivered))
    assert all(e["status"] == 0 for e in smsc.of("deliver_sm_resp"))


COUNT = 40


async def test_a_worker_delivers_through_each_smsc(impl: str, store: Store, peers: Peers) -> None:
    smsc = peers.smsc(impl)
    endings = ["000", "001", "003", "004"]
    recipients = [f"+2547123{n:03d}99" for n in range(COUNT - len(endings))]  # no rule
    recipients += [f"+254712399{e}" for e in endings]
    await queued(store, recipients)
    account_id = (await store.accounts())[-1].id
    expected = {
        State.DELIVERED: COUNT - len(endings),
        State.UNDELIVERABLE: 2,
        State.EXPIRED: 1,
        State.REJECTED: 1,
    }
    async with delivering(store, connector_to(smsc, window=10), batch_size=20):
        await until_counted(store, account_id, expected, within=20)
    sent = Counter(e["destination"] for e in smsc.of("submit_sm"))
    assert sent == {r.lstrip("+"): 1 for r in recipients}
    assert len(smsc.of("deliver_sm_resp")) == len(smsc.of("deliver_sm")) == COUNT - 1
