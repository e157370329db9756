"""``smsgate operators``: who may log in to the web console.

An operator sees and manages everything; with ``--account`` the login is an
account user, who sees that account only. The password is generated, printed
once and stored only as a scrypt hash; creating an existing login again gives
it a new password (the way to reset a forgotten one).
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from smsgate.commands.common import CliError, console, table, with_store
from smsgate.credentials import hash_password, new_password
from smsgate.store.console import ConsoleUser
from smsgate.store.repo import Store

operators_app = typer.Typer(help="Logins of the web console (/console).", no_args_is_help=True)

_LOGIN = re.compile(r"[A-Za-z0-9._@-]{1,100}")


async def put_login(store: Store, login: str, account: str | None) -> tuple[ConsoleUser, str]:
    """Create or reset ``login`` (an account user of ``account`` if given); returns
    the user and the new password."""
    if not _LOGIN.fullmatch(login):
        raise CliError(
            f"login {login!r}: use 1 to 100 letters, digits and . _ @ - only", exit_code=2
        )
    account_id = None
    if account is not None:
        found = await store.account_by_name(account)
        if found is None:
            raise CliError(f"no account named {account!r} (smsgate accounts list)", exit_code=2)
        account_id = found.id
    password = new_password()
    user = await store.put_console_user(login, hash_password(password), account_id)
    return user, password


@operators_app.command("create")
def operators_create(
    name: Annotated[str, typer.Argument(help="The login.")],
    account: Annotated[
        str | None,
        typer.Option(help="Make it an account user who sees only this account (by name)."),
    ] = None,
) -> None:
    """Create a console login (or give an existing one a new password) and print its password."""
    _, password = with_store(lambda store: put_login(store, name, account))
    kind = f"account user of {account}" if account else "operator"
    typer.echo(f"console login {name} ({kind})")
    typer.echo(f"password: {password}")


@operators_app.command("list")
def operators_list() -> None:
    """Every console login and whose it is."""

    async def work(store: Store) -> list[tuple[ConsoleUser, str]]:
        names = {a.id: a.name for a in await store.accounts()}
        return [
            (user, "operator" if user.account_id is None else names.get(user.account_id, "?"))
            for user in await store.console_users()
        ]

    users = with_store(work)
    if not users:
        typer.echo("no console logins (smsgate operators create NAME)")
        return
    grid = table("login", "sees")
    for user, sees in users:
        grid.add_row(user.login, sees)
    console.print(grid)
