"""Carrier receipts: matching them to submitted messages and ending those."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from smsgate.core.states import State, can_transition
from smsgate.store.finals import FinalStates
from smsgate.store.records import Receipt

log = logging.getLogger(__name__)


class ReceiptStore(FinalStates):
    """Recording carrier receipts."""

    async def record_receipts(self, receipts: Sequence[Receipt]) -> list[Receipt]:
        """Move receipted messages to their final state; return the receipts that matched
        no submitted message (yet) so the caller can try them again later."""
        if not receipts:
            return []
        now = self.clock()
        by_connector: dict[str, dict[str, Receipt]] = defaultdict(dict)
        for receipt in receipts:
            if can_transition(State.SUBMITTED, receipt.state):
                by_connector[receipt.connector][receipt.carrier_ref] = receipt
            else:
                log.warning(
                    "ignoring receipt %s: %s is not a final state",
                    receipt.carrier_ref,
                    receipt.state,
                )
        unmatched: list[Receipt] = []
        sql = self._sql
        async with self._write() as conn:
            for connector, by_ref in by_connector.items():
                rows = await sql.fetch(
                    conn,
                    "SELECT id, carrier_ref FROM messages WHERE connector = ?"
                    f" AND {sql.member_of('carrier_ref', 'text')}"
                    f" AND state = 'submitted'{sql.lock_rows}",
                    (connector, sql.members(list(by_ref))),
                )
                found = {ref: mid for mid, ref in rows}
                unmatched.extend(r for ref, r in by_ref.items() if ref not in found)
                finals = [
                    (found[ref], r.state, r.reason, r.carrier_status, r.occurred_at)
                    for ref, r in by_ref.items()
                    if ref in found
                ]
                if finals:
                    await self._finish(
                        conn, [f[:4] for f in finals], now, occurred={f[0]: f[4] for f in finals}
                    )
        return unmatched
