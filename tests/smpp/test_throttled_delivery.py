"""Delivery to an SMSC that limits its rate, on both engines, over TCP.

A claimed batch waits in the connector far longer than a lease while the
SMSC allows only so many messages a second: the claims must stay alive (no
message claimed and sent twice without any crash), and the connector must
learn the rate instead of spending it on refusals.
"""

from __future__ import annotations

from collections import Counter

from smsgate.core.states import State
from smsgate.smpp.pdu import Status
from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator, SubmittedMessage
from smsgate.store.repo import Store
from tests.smpp.test_connector import connector_for
from tests.support.worker import delivering, queued, until_counted

RATE = 20  # submit_sm a second the SMSC allows
COUNT = 180
LEASE_MS = 1_500  # far shorter than the time the batch waits in the connector


async def test_a_rate_limited_smsc_gets_every_message_once_at_nearly_its_rate(
    store: Store,
) -> None:
    recipients = [f"+2547130{i:04d}9" for i in range(COUNT)]
    batch = await queued(store, recipients)
    account_id = (await store.accounts())[-1].id
    simulator = SmscSimulator(SimulatorConfig(port=0, receipt_delay_ms=5, max_per_second=RATE))
    await simulator.start()
    connector = connector_for(simulator, window=10)
    try:
        async with delivering(store, connector, batch_size=500, lease_ms=LEASE_MS):
            await until_counted(store, account_id, {State.DELIVERED: COUNT}, within=40)
    finally:
        await simulator.stop()
    assert len(batch.message_ids) == COUNT
    accepted = [m for m in simulator.submitted if m.status == Status.ROK]
    # Every message reached the SMSC exactly once, though its claim lasted a
    # fraction of the time it waited.
    assert Counter(m.destination for m in accepted) == Counter(r.lstrip("+") for r in recipients)
    # Once the first refusals taught it the rate, it sent at nearly that rate
    # with few refusals.
    settled = _after_first_second(simulator)
    refused = sum(1 for m in settled if m.status == Status.RTHROTTLED)
    assert refused <= 0.05 * len(settled), f"{refused} of {len(settled)} refused once settled"
    rate = _accepted_rate(settled)
    print(f"settled at {rate:.2f}/s of {RATE}/s, {refused} of {len(settled)} submit_sm refused")
    assert rate >= 0.9 * RATE, f"settled at {rate:.1f}/s of {RATE}/s"


def _after_first_second(simulator: SmscSimulator) -> list[SubmittedMessage]:
    first = simulator.submitted[0].received_at
    return [m for m in simulator.submitted if m.received_at >= first + 1.0]


def _accepted_rate(settled: list[SubmittedMessage]) -> float:
    times = [m.received_at for m in settled if m.status == Status.ROK]
    return (len(times) - 1) / (times[-1] - times[0])
