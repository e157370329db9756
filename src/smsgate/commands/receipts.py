"""``smsgate receipts unmatched``: receipts that named no message this gateway sent.

A receipt that matches nothing is stored, never dropped (see the README's
delivery receipts). Most are matched within seconds, when their submission
is recorded; those left name ids the gateway never recorded (a message sent
by an earlier installation, a carrier reusing ids past the validity, a
misdeclared id format), and the operator reads them here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from smsgate.commands.common import console, format_time, table, with_store

receipts_app = typer.Typer(help="Delivery receipts the gateway stored.", no_args_is_help=True)


@receipts_app.command("unmatched")
def receipts_unmatched(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
) -> None:
    """Receipts that matched no submitted message, newest first."""
    receipts = with_store(lambda store: store.unmatched_receipts(limit))
    if not receipts:
        typer.echo("no unmatched receipts")
        return
    grid = table("id", "received", "connector", "carrier id", "handset", "state", "status", "text")
    for receipt in receipts:
        grid.add_row(
            str(receipt.id),
            format_time(receipt.received_at),
            receipt.connector,
            receipt.carrier_ref,
            receipt.handset,
            receipt.state,
            receipt.carrier_status,
            (receipt.receipt_text or "")[:60],
        )
    console.print(grid)
