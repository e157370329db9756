"""``smsgate messages list/show`` and ``smsgate callbacks list``: what happened
to a message, and to the reports about it."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from smsgate.commands.accounts import require
from smsgate.commands.common import CliError, console, format_time, parse_time, table, with_store
from smsgate.core.states import State
from smsgate.observe.logs import message_text
from smsgate.store.records import MessageFilter
from smsgate.store.repo import Store
from smsgate.timeline import timeline

messages_app = typer.Typer(help="Find messages and read their history.", no_args_is_help=True)
callbacks_app = typer.Typer(
    help="Delivery reports and replies pushed to customers.", no_args_is_help=True
)

_STATES = ", ".join(state.value for state in State)
_CALLBACK_STATES = ("pending", "sent", "failed")


@messages_app.command("list")
def messages_list(
    account: Annotated[str | None, typer.Option(help="Only this account's messages.")] = None,
    number: Annotated[
        str | None, typer.Option(help="Only to this number, in international form (254712345678).")
    ] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Only this batch.")] = None,
    state: Annotated[str | None, typer.Option(help=f"Only in this state: {_STATES}.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Accepted at or after: 10m, 2h, 3d or YYYY-MM-DD[ HH:MM] UTC."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Accepted before (same forms as --since).")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")
    ] = 50,
) -> None:
    """List messages, newest first."""
    if state is not None and state not in {s.value for s in State}:
        raise CliError(f"--state {state!r}: expected one of {_STATES}", 2)
    if number is not None and not number.lstrip("+").isdigit():
        raise CliError(f"--number {number!r}: digits only (254712345678)", 2)
    where = MessageFilter(
        recipient=None if number is None else "+" + number.lstrip("+"),  # stored in E.164
        batch_id=batch,
        state=state,
        since_ms=None if since is None else parse_time(since, "--since"),
        until_ms=None if until is None else parse_time(until, "--until"),
        limit=limit,
    )

    async def work(store: Store) -> list[tuple[str, ...]]:
        names = {a.id: a.name for a in await store.accounts()}
        found = where
        if account is not None:
            owner = await require(store, account)
            found = replace(where, account_id=owner.id)
        return [
            (
                str(m.id),
                str(m.batch_id),
                names.get(m.account_id, str(m.account_id)),
                m.recipient,
                m.sender,
                f"{m.state} {m.reason}".strip(),
                m.connector or "-",
                format_time(m.created_at),
                format_time(m.done_at),
            )
            for m in await store.find_messages(found)
        ]

    rows = with_store(work)
    grid = table("id", "batch", "account", "to", "from", "state", "connector", "accepted", "final")
    for row in rows:
        grid.add_row(*row)
    console.print(grid)
    typer.echo(f"{len(rows)} message(s)")


@messages_app.command("show")
def messages_show(message_id: Annotated[int, typer.Argument(min=1, help="Message id.")]) -> None:
    """A message and its history: accepted, claimed, submitted, receipt, callbacks."""

    async def work(store: Store) -> list[str]:
        message = await store.message_row(message_id)
        if message is None:
            raise CliError(f"no message {message_id} (smsgate messages list finds them)")
        owner = await store.account(message.account_id)
        lines = [
            f"message {message.id} of batch {message.batch_id}, account "
            f"{owner.name if owner else message.account_id}",
            f"to {message.recipient} from {message.sender}, {message.segments} part(s), "
            f"cost {message.cost / 100:.2f}, reference {message.client_ref or '-'}",
            f"text {message_text(message.body)}",
            f"state {message.state} {message.reason}".rstrip(),
            "history:",
        ]
        history = await store.message_history(message_id)
        for moment in timeline(message, history):
            # A receipt's raw text quotes the message's first characters,
            # which the command line does not print (see "text" above).
            said = f" ({moment.raw})" if moment.raw and moment.what != "receipt" else ""
            lines.append(
                f"  {format_time(moment.at)}  {moment.what} {moment.detail}".rstrip() + said
            )
        if message.lease_owner:
            lines.append(f"  now held by {message.lease_owner}")
        return lines

    typer.echo("\n".join(with_store(work)))


@callbacks_app.command("list")
def callbacks_list(
    account: Annotated[str | None, typer.Option(help="Only this account's callbacks.")] = None,
    state: Annotated[str | None, typer.Option(help="pending, sent or failed (given up).")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")
    ] = 50,
) -> None:
    """List callbacks with their attempts and the receiver's last answer."""
    if state is not None and state not in _CALLBACK_STATES:
        raise CliError(f"--state {state!r}: expected pending, sent or failed", 2)

    async def work(store: Store) -> list[tuple[str, ...]]:
        account_id = None if account is None else (await require(store, account)).id
        return [
            (
                str(c.id),
                str(c.message_id or "-"),
                c.kind,
                c.url,
                c.state,
                str(c.attempts),
                format_time(c.next_attempt_at) if c.state == "pending" else format_time(c.sent_at),
                c.last_error or "",
            )
            for c in await store.callbacks(account_id=account_id, state=state, limit=limit)
        ]

    rows = with_store(work)
    grid = table("id", "message", "kind", "url", "state", "attempts", "next / sent", "last answer")
    for row in rows:
        grid.add_row(*row)
    console.print(grid)
    typer.echo(f"{len(rows)} callback(s)")
