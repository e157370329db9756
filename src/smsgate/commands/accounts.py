"""``smsgate accounts …``: create, show, change, credit, re-key and delete accounts.

Account options (the ``options`` JSON of an account) are one table,
``core.account_options.OPTIONS``; ``--option KEY=VALUE`` / ``accounts show``
are driven by it, as the console's account page is, so a new option is one
line there.
"""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import IntegrityError

from smsgate.commands.common import (
    CliError,
    check_country_codes,
    check_region,
    check_senders,
    check_timezone,
    check_url,
    console,
    settings,
    table,
    with_store,
)
from smsgate.core.account_options import BY_KEY, OPTIONS
from smsgate.core.model import Account, AccountStatus
from smsgate.core.pricing import format_units, to_units
from smsgate.core.telesign_auth import new_api_key as new_telesign_key
from smsgate.core.telesign_auth import new_customer_id
from smsgate.credentials import (
    CredentialKind,
    hash_password,
    hash_secret,
    new_api_key,
    new_partner_id,
    new_password,
)
from smsgate.key_issuing import Issued, KeyKind, rotate_key, smpp_credential
from smsgate.secret_box import SecretBox
from smsgate.store.records import DuplicateIdentifier, NewCredential
from smsgate.store.repo import Store

accounts_app = typer.Typer(help="Create and manage customer accounts.", no_args_is_help=True)


# ------------------------------------------------------------------ options


_OPTION_HELP = "; ".join(f"{o.key}: {o.meaning}" for o in OPTIONS)


def parse_options(pairs: list[str], unset: list[str]) -> tuple[dict[str, object], set[str]]:
    """``KEY=VALUE`` pairs checked against ``OPTIONS``; the keys to remove."""
    values: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        option = BY_KEY.get(key.strip())
        if not sep or option is None:
            raise CliError(
                f"--option {pair!r}: expected KEY=VALUE with KEY one of {', '.join(BY_KEY)}",
                2,
            )
        try:
            values[option.key] = option.parse(raw.strip())
        except (ValueError, CliError) as exc:
            raise CliError(f"--option {option.key}: {raw!r}: {exc}", 2) from None
    for key in unset:
        if key not in BY_KEY:
            raise CliError(f"--unset {key!r}: not one of {', '.join(BY_KEY)}", 2)
    return values, set(unset)


def describe_options(options: dict[str, object]) -> list[str]:
    """Readable lines for an account's options, every known one shown."""
    lines = []
    for option in OPTIONS:
        value = options.get(option.key)
        shown = (
            "-"
            if value is None
            else ("yes" if value is True else "no" if value is False else str(value))
        )
        lines.append(f"{option.label}: {shown}")
    return lines


# ----------------------------------------------------------------- commands

_OPTION_FLAG = typer.Option(
    "--option", help=f"Account option KEY=VALUE (repeatable). {_OPTION_HELP}."
)


@accounts_app.command("create")
def accounts_create(
    name: Annotated[str, typer.Argument(help="Unique account name.")],
    sender: Annotated[
        list[str] | None,
        typer.Option(help="Registered sender id (repeatable); none means any valid sender."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="Region of national numbers.", envvar="SMSGATE_DEFAULT_REGION", show_default="KE"
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="Time zone of local send times.",
            envvar="SMSGATE_DEFAULT_TIMEZONE",
            show_default="Africa/Nairobi",
        ),
    ] = None,
    credit: Annotated[str, typer.Option(help="Opening credit.")] = "0",
    callback_url: Annotated[str | None, typer.Option(help="Delivery report URL.")] = None,
    country: Annotated[
        list[str] | None,
        typer.Option(help="Enabled destination country code (repeatable); none means any."),
    ] = None,
    option: Annotated[list[str] | None, _OPTION_FLAG] = None,
    partner_id: Annotated[
        str | None, typer.Option(help="partnerID to issue (default: random).")
    ] = None,
    eapi_username: Annotated[
        str | None, typer.Option(help="Also issue an EAPI username (with a generated password).")
    ] = None,
    telesign: Annotated[
        bool, typer.Option(help="Also issue a Telesign customer id and API key.")
    ] = False,
    smpp_system_id: Annotated[
        str | None,
        typer.Option(help="Also issue an SMPP system_id (1..15 characters) with a password."),
    ] = None,
) -> None:
    """Create an account and print its credentials (shown once). A clash on
    the name, --partner-id or --eapi-username creates nothing."""
    current = settings()
    try:
        opening = to_units(credit)
    except ValueError as exc:
        raise CliError(f"--credit: {exc}", 2) from None
    if opening < 0:
        raise CliError("--credit: an opening credit cannot be negative", 2)
    senders = check_senders(sender or [])
    zone_name = check_timezone(timezone or current.default_timezone)
    region_code = check_region(region or current.default_region)
    countries = check_country_codes(country or [])
    options, _ = parse_options(option or [], [])
    if callback_url:
        check_url(callback_url, "--callback-url")
    if partner_id is not None and not partner_id.isdigit():
        raise CliError("--partner-id: digits only", 2)
    issued_id, apikey = partner_id or new_partner_id(), new_api_key()
    issued = Issued(partner_id=issued_id, apikey=apikey)
    credentials = [NewCredential(CredentialKind.PARTNER_APIKEY, issued_id, hash_secret(apikey))]
    if eapi_username:
        issued.eapi = (eapi_username, new_password())
        credentials.append(
            NewCredential(
                CredentialKind.EAPI_PASSWORD, eapi_username, hash_password(issued.eapi[1])
            )
        )
    if telesign:
        key = new_telesign_key()
        issued.telesign = (new_customer_id(), key)
        credentials.append(
            NewCredential(
                CredentialKind.TELESIGN_KEY,
                issued.telesign[0],
                hash_secret(key),
                SecretBox.for_settings(current).encrypt(key),
            )
        )

    if smpp_system_id is not None:
        try:
            issued.smpp, smpp = smpp_credential(smpp_system_id)
        except ValueError as exc:
            raise CliError(f"--smpp-system-id: {exc}", 2) from None
        credentials.append(smpp)

    async def work(store: Store) -> Account:
        if await store.account_by_name(name) is not None:
            raise CliError(f"an account named {name!r} exists already; pick another name")
        try:
            return await store.create_account(
                name=name,
                region=region_code,
                timezone=zone_name,
                senders=senders,
                allowed_country_codes=countries,
                dlr_callback_url=callback_url or None,
                options=options,
                credentials=credentials,
                credit=opening,
            )
        except DuplicateIdentifier as exc:
            raise CliError(f"{exc}; nothing was created: choose another") from None
        except IntegrityError:
            raise CliError(f"an account named {name!r} exists already; pick another name") from None

    account = with_store(work)
    typer.echo(f"account {account.name} (id {account.id}), balance {format_units(account.balance)}")
    print_secrets(issued)


def print_secrets(issued: Issued) -> None:
    """One line each, plain (no colour, no wrapping), so each copies whole."""
    lines = []
    if issued.partner_id:
        lines.append(f"partnerID: {issued.partner_id}")
    if issued.apikey:
        lines.append(f"apikey: {issued.apikey}")
    if issued.eapi:
        lines += [f"eapi username: {issued.eapi[0]}", f"eapi password: {issued.eapi[1]}"]
    if issued.telesign:
        lines += [
            f"telesign customer id: {issued.telesign[0]}",
            f"telesign api key: {issued.telesign[1]}",
        ]
    if issued.smpp:
        lines += [f"smpp system_id: {issued.smpp[0]}", f"smpp password: {issued.smpp[1]}"]
    typer.echo("\n".join(lines))
    typer.echo("(secrets are shown once and stored only as hashes: keep them now)")


@accounts_app.command("list")
def accounts_list() -> None:
    """List accounts with their balance."""
    accounts = with_store(lambda store: store.accounts())
    grid = table("id", "name", "status", "region", "time zone", "balance", "callback")
    for account in accounts:
        grid.add_row(
            str(account.id),
            account.name,
            account.status.value,
            account.region,
            account.timezone,
            format_units(account.balance),
            account.dlr_callback_url or "",
        )
    console.print(grid)


@accounts_app.command(
    "credit", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True}
)
def accounts_credit(
    name: Annotated[str, typer.Argument(help="Account name.")],
    amount: Annotated[str, typer.Argument(help="Credits to add; negative (-5) to debit.")],
    note: Annotated[str, typer.Option(help="Ledger note.")] = "",
) -> None:
    """Add credit to an account (a ledger entry)."""
    try:
        units = to_units(amount)
    except ValueError as exc:
        raise CliError(f"amount {amount!r}: {exc}", 2) from None

    async def work(store: Store) -> int:
        account = await require(store, name)
        return await store.add_credit(account.id, units, note)

    typer.echo(f"balance {format_units(with_store(work))}")


@accounts_app.command("update")
def accounts_update(
    name: Annotated[str, typer.Argument(help="Account name.")],
    callback_url: Annotated[
        str | None, typer.Option(help="Delivery report URL ('' to remove).")
    ] = None,
    mo_url: Annotated[
        str | None, typer.Option(help="URL inbound replies are forwarded to ('' to remove).")
    ] = None,
    sender: Annotated[
        list[str] | None, typer.Option(help="Replace registered sender ids (repeatable).")
    ] = None,
    any_sender: Annotated[
        bool,
        typer.Option(
            "--any-sender", help="Remove the registered sender ids: any valid one may be used."
        ),
    ] = False,
    country: Annotated[
        list[str] | None, typer.Option(help="Replace enabled country codes (repeatable).")
    ] = None,
    any_country: Annotated[
        bool, typer.Option("--any-country", help="Enable every country.")
    ] = False,
    region: Annotated[str | None, typer.Option(help="Region of national numbers.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Time zone of local send times.")] = None,
    option: Annotated[list[str] | None, _OPTION_FLAG] = None,
    unset: Annotated[
        list[str] | None, typer.Option(help="Remove an account option (repeatable).")
    ] = None,
    suspend: Annotated[
        bool | None,
        typer.Option("--suspend/--activate", help="Suspend or re-activate.", show_default=False),
    ] = None,
) -> None:
    """Change an account; what is not given stays as it is."""
    changes: dict[str, object] = {}
    if callback_url is not None:
        changes["dlr_callback_url"] = (
            check_url(callback_url, "--callback-url") if callback_url else None
        )
    if sender is not None or any_sender:
        changes["senders"] = [] if any_sender else check_senders(sender or [])
    if country is not None or any_country:
        changes["allowed_country_codes"] = [] if any_country else check_country_codes(country or [])
    if region is not None:
        changes["region"] = check_region(region)
    if timezone is not None:
        changes["timezone"] = check_timezone(timezone)
    if suspend is not None:
        changes["status"] = (AccountStatus.SUSPENDED if suspend else AccountStatus.ACTIVE).value
    pairs = list(option or [])
    removed = list(unset or [])
    if mo_url is not None:
        if mo_url:
            pairs.append(f"mo_callback_url={mo_url}")
        else:
            removed.append("mo_callback_url")
    values, drop = parse_options(pairs, removed)
    if not changes and not values and not drop:
        raise CliError("nothing to change: give at least one option (see --help)", 2)

    async def work(store: Store) -> Account:
        account = await require(store, name)
        if values or drop:
            merged = {**account.options, **values}
            changes["options"] = {k: v for k, v in merged.items() if k not in drop}
        return await store.update_account(account.id, **changes)

    show_account(with_store(work), [])


def show_account(account: Account, identifiers: list[tuple[str, str]]) -> None:
    lines = [
        f"account {account.name} (id {account.id}): {account.status.value}",
        f"balance: {format_units(account.balance)}",
        f"region: {account.region}",
        f"time zone: {account.timezone}",
        f"senders: {', '.join(account.senders) or 'any valid sender'}",
        "countries: " + (", ".join(f"+{c}" for c in account.allowed_country_codes) or "all"),
        f"delivery reports to: {account.dlr_callback_url or '-'}",
        *describe_options(account.options),
        *(f"{_KIND_LABELS.get(kind, kind)}: {identifier}" for kind, identifier in identifiers),
    ]
    typer.echo("\n".join(lines))


_KIND_LABELS: dict[str, str] = {
    CredentialKind.PARTNER_APIKEY: "partnerID",
    CredentialKind.EAPI_PASSWORD: "eapi username",
    CredentialKind.TELESIGN_KEY: "telesign customer id",
    CredentialKind.SMPP_PASSWORD: "smpp system_id",
}


@accounts_app.command("show")
def accounts_show(name: Annotated[str, typer.Argument(help="Account name.")]) -> None:
    """Show an account: settings, options, identifiers, message states, recent ledger."""

    async def work(store: Store) -> None:
        account = await require(store, name)
        show_account(account, await store.identifiers(account.id))
        states = await store.count_by_state(account.id)
        typer.echo(
            "messages: " + (", ".join(f"{s.value} {n}" for s, n in states.items()) or "none")
        )
        grid = table("ledger id", "kind", "amount", "balance after", "note")
        for entry in (await store.ledger_entries(account.id))[-10:]:
            grid.add_row(
                str(entry.id),
                entry.kind,
                format_units(entry.amount),
                format_units(entry.balance_after),
                entry.note,
            )
        console.print(grid)

    with_store(work)


@accounts_app.command("keys")
def accounts_keys(
    name: Annotated[str, typer.Argument(help="Account name.")],
    rotate: Annotated[
        str,
        typer.Option(
            help="Which credential to replace: partner (partnerID apikey), eapi (password),"
            " telesign (API key) or smpp (bind password)."
        ),
    ],
    username: Annotated[
        str | None,
        typer.Option(
            help="EAPI username or SMPP system_id to issue"
            " (default: the current one, else the account name)."
        ),
    ] = None,
) -> None:
    """Issue a new secret for one dialect; the old one stops working (within a
    second in every API process). Also issues a first one where there is none."""
    if rotate not in KeyKind.ALL:
        raise CliError(f"--rotate {rotate!r}: expected partner, eapi, telesign or smpp", 2)
    current = settings()

    async def work(store: Store) -> Issued:
        account = await require(store, name)
        try:
            return await rotate_key(
                store, SecretBox.for_settings(current), account, rotate, username
            )
        except DuplicateIdentifier as exc:
            raise CliError(f"{exc}; the old credential still works") from None
        except ValueError as exc:
            raise CliError(f"--username: {exc}", 2) from None

    print_secrets(with_store(work))


@accounts_app.command("delete")
def accounts_delete(
    name: Annotated[str, typer.Argument(help="Account name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an account with its messages, ledger, callbacks and credentials."""
    if not yes:
        raise CliError(
            f"deleting {name!r} removes its messages, ledger and credentials for good; "
            "run again with --yes to confirm",
            2,
        )

    async def work(store: Store) -> None:
        account = await require(store, name)
        await store.delete_account(account.id)

    with_store(work)
    typer.echo(f"account {name} deleted")


async def require(store: Store, name: str) -> Account:
    account = await store.account_by_name(name)
    if account is None:
        raise CliError(f"no account named {name!r} (smsgate accounts list shows them)")
    return account
