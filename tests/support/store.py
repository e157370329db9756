"""Building store states in tests: funded accounts, prepared messages, claims."""

from __future__ import annotations

from smsgate.core.encoding import Encoding
from smsgate.core.model import Account, PreparedMessage
from smsgate.core.states import State
from smsgate.store.records import CarrierPart, OutboundMessage, Submitted
from smsgate.store.repo import Store


def prepared(
    n: int,
    *,
    cost: int = 100,
    due_at: int = 0,
    state: State = State.QUEUED,
    prefix: str = "+2547120",
) -> list[PreparedMessage]:
    return [
        PreparedMessage(
            recipient=f"{prefix}{i:05d}",
            network_id=1,
            sender="SMSGATE",
            text=f"message {i}",
            encoding=Encoding.GSM7,
            segments=1,
            cost=cost,
            client_ref=str(i),
            due_at=due_at,
            state=state,
        )
        for i in range(n)
    ]


def sent(message_id: int, ref: str, connector: str = "sandbox") -> Submitted:
    """A single-part message the carrier took under ``ref``."""
    return Submitted(message_id, connector, (CarrierPart(1, ref, ref),))


def claims_of(claimed: list[OutboundMessage]) -> dict[int, int]:
    """The claim tokens (attempt numbers) outcomes are recorded under."""
    return {message.id: message.attempts for message in claimed}


def advance(store: Store, ms: int) -> None:
    """Move the store's clock forward, as if ``ms`` milliseconds had passed."""
    base = store.clock()
    store.clock = lambda: base + ms


async def funded(store: Store, credit: int = 100_000, callback: str | None = None) -> Account:
    count = len(await store.accounts())
    account = await store.create_account(
        name=f"acct{count}",
        region="KE",
        timezone="Africa/Nairobi",
        senders=["SMSGATE"],
        dlr_callback_url=callback,
    )
    await store.add_credit(account.id, credit)
    return account
