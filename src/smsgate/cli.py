"""The ``smsgate`` command: run the gateway and administer accounts."""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from smsgate.api.dialects.eapi import MAX_BATCH_ROWS
from smsgate.config import Settings, SettingsError
from smsgate.core.eapi_csv import BatchFormatError
from smsgate.core.model import Account, AccountStatus
from smsgate.core.pricing import format_units, to_units
from smsgate.core.schedule import InvalidSendTime, zone
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
from smsgate.delivery.connectors.smpp import SmppSettings
from smsgate.eapi_upload import (
    Backoff,
    Chunk,
    parse_params,
    send_batch_url,
    split_batches,
    upload_batches,
)
from smsgate.runtime import run_worker, serve
from smsgate.secret_box import SecretBox
from smsgate.store.migrate import current_revision
from smsgate.store.records import ConnectorRow, DuplicateIdentifier
from smsgate.store.repo import Store

app = typer.Typer(help="smsgate: a self-hosted bulk SMS gateway.", no_args_is_help=True)
accounts_app = typer.Typer(help="Create and manage customer accounts.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
console = Console()

T = TypeVar("T")

DEMO_ACCOUNT = "demo"
DEMO_SENDER = "SMSGATE"
DEMO_CREDITS = "1000"


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(None, **{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = await Store.open(_settings().effective_database_url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.command("serve")
def serve_command(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[bool, typer.Option(help="Also run dispatch and callbacks here.")] = True,
) -> None:
    """Run the HTTP API (and, by default, the delivery workers) in one process."""
    _logging()
    settings = _settings(host=host, port=port)
    console.print(
        f"smsgate listening on http://{settings.host}:{settings.port} ({_describe_db(settings)})"
    )
    asyncio.run(serve(settings, with_workers=workers))


@app.command("worker")
def worker_command() -> None:
    """Run only the delivery workers (dispatcher, receipts, callbacks)."""
    _logging()
    asyncio.run(run_worker(_settings()))


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date (every process also does this at start)."""

    async def work(store: Store) -> str | None:
        return await current_revision(store.engines)

    revision = _with_store(work)
    console.print(f"schema at revision {revision}")


@app.command("demo")
def demo_command(
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
) -> None:
    """Create (or refresh) a demo account, print its credentials, and serve."""
    _logging()
    settings = _settings(port=port)

    box = SecretBox.for_settings(settings)

    async def prepare(store: Store) -> tuple[Account, DemoCredentials]:
        account = await store.account_by_name(DEMO_ACCOUNT)
        if account is None:
            account = await store.create_account(
                name=DEMO_ACCOUNT,
                region=settings.default_region,
                timezone=settings.default_timezone,
                senders=[DEMO_SENDER],
            )
            await store.add_credit(account.id, to_units(DEMO_CREDITS), "demo credit")
        identifiers = dict(await store.identifiers(account.id))
        issued = DemoCredentials(
            partner_id=identifiers.get(CredentialKind.PARTNER_APIKEY) or new_partner_id(),
            apikey=new_api_key(),
            eapi_password=new_password(),
            customer_id=identifiers.get(CredentialKind.TELESIGN_KEY) or new_customer_id(),
            telesign_key=new_telesign_key(),
        )
        # Each run prints fresh secrets: the old ones were shown once and are gone.
        for kind, identifier, secret_hash, sealed in (
            (CredentialKind.PARTNER_APIKEY, issued.partner_id, hash_secret(issued.apikey), None),
            (
                CredentialKind.EAPI_PASSWORD,
                DEMO_ACCOUNT,
                hash_password(issued.eapi_password),
                None,
            ),
            (
                CredentialKind.TELESIGN_KEY,
                issued.customer_id,
                hash_secret(issued.telesign_key),
                box.encrypt(issued.telesign_key),
            ),
        ):
            await store.revoke_credentials(account.id, kind)
            await store.add_credential(
                account.id,
                kind=kind,
                identifier=identifier,
                secret_hash=secret_hash,
                sealed_secret=sealed,
            )
        refreshed = await store.account(account.id)
        assert refreshed is not None
        return refreshed, issued

    account, issued = _with_store(prepare)
    base = f"http://{settings.host}:{settings.port}"
    # Plain output: Rich would wrap the long curl lines and break copy-paste.
    typer.echo(_demo_banner(base, account, issued))
    asyncio.run(serve(settings))


@dataclass(frozen=True)
class DemoCredentials:
    partner_id: str
    apikey: str
    eapi_password: str
    customer_id: str
    telesign_key: str


def _demo_banner(base: str, account: Account, issued: DemoCredentials) -> str:
    partner_id, apikey = issued.partner_id, issued.apikey
    creds = f'"partnerID":"{partner_id}","apikey":"{apikey}"'
    eapi = f"username={DEMO_ACCOUNT}&password={issued.eapi_password}"
    return f"""
smsgate demo — SQLite + sandbox carrier
  partnerID : {partner_id}
  apikey    : {apikey}
  shortcode : {DEMO_SENDER}
  eapi      : username {DEMO_ACCOUNT}, password {issued.eapi_password}
  telesign  : customer id {issued.customer_id}
              api key {issued.telesign_key}
  balance   : {format_units(account.balance)} credits

Send one SMS (GET):
  curl '{base}/api/services/sendsms/?apikey={apikey}&partnerID={partner_id}&message=Hello&shortcode={DEMO_SENDER}&mobile=0712345678'

Send to several numbers (POST JSON):
  curl -X POST {base}/api/services/sendsms/ -H 'Content-Type: application/json' \\
    -d '{{{creds},"message":"Hello","shortcode":"{DEMO_SENDER}","mobile":"254712345678,254722000000"}}'

Send distinct messages (sendbulk):
  curl -X POST {base}/api/services/sendbulk/ -H 'Content-Type: application/json' \\
    -d '{{"count":2,"smslist":[{{{creds},"pass_type":"plain","clientsmsid":1,"mobile":"254712345678","message":"Hi Ann","shortcode":"{DEMO_SENDER}"}},{{{creds},"clientsmsid":2,"mobile":"254733000001","message":"Hi Bob","shortcode":"{DEMO_SENDER}"}}]}}'

Delivery report (use a messageid from above) and balance:
  curl -X POST {base}/api/services/getdlr/ -H 'Content-Type: application/json' -d '{{{creds},"messageID":"1"}}'
  curl -X POST {base}/api/services/getbalance/ -H 'Content-Type: application/json' -d '{{{creds}}}'

EAPI (pipe-delimited replies):
  curl '{base}/eapi/submission/send_sms/2/2.0?{eapi}&msisdn=254712345678&message=Hello'
  curl '{base}/eapi/user/get_credits/1/1.1?{eapi}'

Telesign-style bulk SMS (Basic auth here; the official SDK signs with HMAC):
  curl -u '{issued.customer_id}:{issued.telesign_key}' {base}/v1/verify/bulk_sms \\
    -d recipients=254712345678,254733000001 -d template='Your code is 1234'

Sandbox outcomes by number ending: 000 absent subscriber, 001 unknown, 002 sender
blacklisted, 003 expired, 004 refused by carrier (refunded), 005 delivered and the
handset replies; anything else is delivered.
"""


def _describe_db(settings: Settings) -> str:
    url = settings.effective_database_url
    return "SQLite " + url.removeprefix("sqlite:///") if url.startswith("sqlite") else "PostgreSQL"


@accounts_app.command("create")
def accounts_create(
    name: Annotated[str, typer.Argument(help="Unique account name.")],
    sender: Annotated[
        list[str] | None,
        typer.Option(help="Registered sender id (repeatable); none means any valid sender."),
    ] = None,
    region: Annotated[str | None, typer.Option(help="Default region for national numbers.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Time zone for local send times.")] = None,
    credit: Annotated[str, typer.Option(help="Opening credit.")] = "0",
    callback_url: Annotated[str | None, typer.Option(help="Delivery report URL.")] = None,
    partner_id: Annotated[
        str | None, typer.Option(help="partnerID to issue (default: random).")
    ] = None,
    eapi_username: Annotated[
        str | None, typer.Option(help="Also issue an EAPI username (with a generated password).")
    ] = None,
    telesign: Annotated[
        bool, typer.Option(help="Also issue a Telesign-style customer id and API key.")
    ] = False,
) -> None:
    """Create an account and print its credentials (secrets are shown once)."""
    settings = _settings()
    tz = timezone or settings.default_timezone
    try:
        zone(tz)
        opening = to_units(credit)
    except (InvalidSendTime, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    async def work(store: Store) -> tuple[Account, str, str]:
        if await store.account_by_name(name):
            raise typer.BadParameter(f"account {name!r} exists")
        account = await store.create_account(
            name=name,
            region=(region or settings.default_region).upper(),
            timezone=tz,
            senders=sender or [],
            dlr_callback_url=callback_url,
        )
        issued_id = partner_id or new_partner_id()
        apikey = new_api_key()
        await store.add_credential(
            account.id,
            kind=CredentialKind.PARTNER_APIKEY,
            identifier=issued_id,
            secret_hash=hash_secret(apikey),
        )
        if eapi_username:
            await store.add_credential(
                account.id,
                kind=CredentialKind.EAPI_PASSWORD,
                identifier=eapi_username,
                secret_hash=hash_password(eapi_password),
            )
        if telesign:
            await store.add_credential(
                account.id,
                kind=CredentialKind.TELESIGN_KEY,
                identifier=customer_id,
                secret_hash=hash_secret(telesign_key),
                sealed_secret=SecretBox.for_settings(settings).encrypt(telesign_key),
            )
        if opening:
            await store.add_credit(account.id, opening, "opening credit")
        refreshed = await store.account(account.id)
        assert refreshed is not None
        return refreshed, issued_id, apikey

    eapi_password = new_password()
    customer_id, telesign_key = new_customer_id(), new_telesign_key()
    try:
        account, issued_id, apikey = _with_store(work)
    except DuplicateIdentifier as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"account {account.name} (id {account.id})")
    console.print(f"partnerID {issued_id}")
    console.print(f"apikey    {apikey}")
    if eapi_username:
        console.print(f"eapi      {eapi_username} / {eapi_password}")
    if telesign:
        console.print(f"telesign  customer id {customer_id}")
        console.print(f"          api key     {telesign_key}")
    console.print(f"balance   {format_units(account.balance)}")


@accounts_app.command("list")
def accounts_list() -> None:
    """List accounts with their balance."""
    accounts = _with_store(lambda store: store.accounts())
    table = Table("id", "name", "status", "region", "time zone", "balance", "callback")
    for account in accounts:
        table.add_row(
            str(account.id),
            account.name,
            account.status.value,
            account.region,
            account.timezone,
            format_units(account.balance),
            account.dlr_callback_url or "",
        )
    console.print(table)


@accounts_app.command("credit")
def accounts_credit(
    name: str,
    amount: Annotated[str, typer.Argument(help="Credits to add (negative to debit).")],
    note: Annotated[str, typer.Option(help="Ledger note.")] = "",
) -> None:
    """Add credit to an account (a ledger entry)."""
    try:
        units = to_units(amount)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    async def work(store: Store) -> int:
        account = await _require(store, name)
        return await store.add_credit(account.id, units, note)

    console.print(f"balance {format_units(_with_store(work))}")


@accounts_app.command("update")
def accounts_update(
    name: str,
    callback_url: Annotated[
        str | None, typer.Option(help="Delivery report URL ('' to remove).")
    ] = None,
    sender: Annotated[list[str] | None, typer.Option(help="Replace registered sender ids.")] = None,
    suspend: Annotated[
        bool | None, typer.Option("--suspend/--activate", help="Suspend or re-activate.")
    ] = None,
    mo_url: Annotated[
        str | None, typer.Option(help="URL inbound replies are forwarded to ('' to remove).")
    ] = None,
) -> None:
    """Change an account's callback URLs, sender ids or status."""
    changes: dict[str, object] = {}
    if callback_url is not None:
        changes["dlr_callback_url"] = callback_url or None
    if sender is not None:
        changes["senders"] = sender
    if suspend is not None:
        changes["status"] = (AccountStatus.SUSPENDED if suspend else AccountStatus.ACTIVE).value

    async def work(store: Store) -> Account:
        account = await _require(store, name)
        if mo_url is not None:
            options = {**account.options, "mo_callback_url": mo_url or None}
            changes["options"] = {k: v for k, v in options.items() if v is not None}
        return await store.update_account(account.id, **changes)

    account = _with_store(work)
    console.print(
        f"account {account.name}: {account.status.value}, "
        f"callback {account.dlr_callback_url or '-'}, "
        f"replies to {account.options.get('mo_callback_url') or '-'}, "
        f"senders {list(account.senders)}"
    )


@accounts_app.command("show")
def accounts_show(name: str) -> None:
    """Show an account, its identifiers, message states and recent ledger entries."""

    async def work(store: Store) -> None:
        account = await _require(store, name)
        console.print(f"[bold]{account.name}[/bold] (id {account.id}) {account.status.value}")
        console.print(f"  region {account.region}, time zone {account.timezone}")
        console.print(f"  balance {format_units(account.balance)}")
        console.print(f"  senders {', '.join(account.senders) or 'any'}")
        console.print(f"  callback {account.dlr_callback_url or '-'}")
        for kind, identifier in await store.identifiers(account.id):
            console.print(f"  {kind}: {identifier}")
        states = await store.count_by_state(account.id)
        console.print(
            "  messages " + (", ".join(f"{s.value} {n}" for s, n in states.items()) or "none")
        )
        table = Table("ledger id", "kind", "amount", "balance after", "note")
        for entry in (await store.ledger_entries(account.id))[-10:]:
            table.add_row(
                str(entry.id),
                entry.kind,
                format_units(entry.amount),
                format_units(entry.balance_after),
                entry.note,
            )
        console.print(table)

    _with_store(work)


async def _require(store: Store, name: str) -> Account:
    account = await store.account_by_name(name)
    if account is None:
        console.print(f"[red]no account named {name!r}[/red]")
        raise typer.Exit(1)
    return account


@app.command("upload-batch")
def upload_batch_command(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV with a header row."),
    ],
    url: Annotated[str, typer.Option(help="Gateway base URL, e.g. http://127.0.0.1:8080.")],
    username: Annotated[str, typer.Option(help="EAPI username.")],
    password: Annotated[str, typer.Option(help="EAPI password.")],
    rows_per_batch: Annotated[
        int, typer.Option(min=1, max=MAX_BATCH_ROWS, help="Rows per send_batch submission.")
    ] = MAX_BATCH_ROWS,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="Extra send_batch parameter as key=value, e.g. sender=SHOP (repeatable)."
        ),
    ] = None,
    encoding: Annotated[str, typer.Option(help="Encoding of FILE; sent as ISO-8859-1.")] = "utf-8",
    max_attempts: Annotated[
        int, typer.Option(min=1, help="Attempts per submission on retryable failures.")
    ] = Backoff().max_attempts,
) -> None:
    """Send a CSV file of any size through EAPI send_batch, in submissions of whole rows."""
    try:
        params = parse_params(param or [])
        send_batch_url(url)
        codecs.lookup(encoding)
    except (ValueError, LookupError) as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    # A first pass counts the rows for the progress bar, and finds an unreadable
    # header or a wrong --encoding before anything is sent.
    try:
        with file.open("rb") as stream:
            total = sum(
                chunk.rows
                for chunk in split_batches(stream, rows_per_batch=rows_per_batch, encoding=encoding)
            )
    except (BatchFormatError, UnicodeDecodeError) as exc:
        console.print(f"[red]{escape(str(file))}: {escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    if not total:
        console.print(f"{escape(str(file))} has a header but no rows; nothing sent")
        return

    with (
        file.open("rb") as stream,
        Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("rows", total=total)

        def accepted(chunk: Chunk, batch_id: int) -> None:
            progress.console.print(f"rows {chunk.first_row:,}–{chunk.last_row:,}: batch {batch_id}")
            progress.advance(task, chunk.rows)

        def retrying(chunk: Chunk, attempt: int, problem: str, delay: float) -> None:
            progress.console.print(
                f"[yellow]rows {chunk.first_row:,}–{chunk.last_row:,}: {escape(problem)}; "
                f"attempt {attempt + 1} of {max_attempts} in {delay:g} s[/yellow]"
            )

        summary = upload_batches(
            split_batches(stream, rows_per_batch=rows_per_batch, encoding=encoding),
            base_url=url,
            username=username,
            password=password,
            params=params,
            backoff=Backoff(max_attempts=max_attempts),
            on_accepted=accepted,
            on_retry=retrying,
        )

    console.print(
        f"sent {summary.rows_sent:,} of {total:,} rows in {summary.chunks_sent} submission(s); "
        f"batch ids {', '.join(map(str, summary.batch_ids)) or 'none'}"
    )
    for failure in summary.failures:
        console.print(
            f"[red]rows {failure.first_row:,}–{failure.last_row:,} (submission "
            f"{failure.chunk + 1}) failed: {escape(failure.reply)}; later rows were not sent[/red]"
        )
    if summary.failures:
        raise typer.Exit(1)


@app.command("smsc-sim")
def smsc_sim_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 2775,
    system_id: Annotated[str, typer.Option(help="system_id ESMEs must bind with.")] = "smsgate",
    password: Annotated[str, typer.Option(help="Password ESMEs must bind with.")] = "secret",
    receipt_delay_ms: Annotated[
        float, typer.Option(min=0, help="Delay between submit_sm_resp and its receipt.")
    ] = 200,
    rules: Annotated[
        str | None,
        typer.Option(help="Outcomes by number ending, sandbox syntax: '000=absent,004=rejected'."),
    ] = None,
    throttle_every: Annotated[
        int, typer.Option(min=0, help="Answer every Nth submit_sm with ESME_RTHROTTLED (0: never).")
    ] = 0,
) -> None:
    """Run an SMPP 3.4 SMSC simulator to develop and test SMPP connections against."""
    from urllib.parse import quote

    from smsgate.core.sandbox_rules import DEFAULT_SANDBOX_RULES, parse_sandbox_rules
    from smsgate.smpp.simulator import SimulatorConfig, SmscSimulator

    try:
        outcome_rules = DEFAULT_SANDBOX_RULES if rules is None else parse_sandbox_rules(rules)
    except ValueError as exc:
        console.print(f"[red]--rules: {escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    try:
        config = SimulatorConfig(
            host=host,
            port=port,
            system_id=system_id,
            password=password,
            receipt_delay_ms=receipt_delay_ms,
            rules=outcome_rules,
            throttle_every=throttle_every,
        )
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    _logging()

    async def run() -> None:
        simulator = SmscSimulator(config)
        try:
            await simulator.start()
        except OSError as exc:
            console.print(f"[red]cannot listen on {host}:{port}: {escape(str(exc))}[/red]")
            raise typer.Exit(1) from None
        url = (
            f"smpp://{quote(system_id, safe='')}:{quote(password, safe='')}@{host}:{simulator.port}"
        )
        endings = ", ".join(
            f"{r.suffix}={'replies' if r.replies else r.reason.value or r.state.value}"
            for r in outcome_rules
        )
        typer.echo(f"smsc-sim listening on {host}:{simulator.port} ({url}); Ctrl-C to stop")
        typer.echo(f"outcomes by number ending: {endings or 'none'}; anything else is delivered")
        try:
            await asyncio.Event().wait()
        finally:
            await simulator.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        typer.echo("smsc-sim stopped")


connectors_app = typer.Typer(help="Carrier connections (SMPP) workers use.", no_args_is_help=True)
routes_app = typer.Typer(help="Which connector carries which destinations.", no_args_is_help=True)
app.add_typer(connectors_app, name="connectors")
app.add_typer(routes_app, name="routes")


@connectors_app.command("add")
def connectors_add(
    name: Annotated[str, typer.Argument(help="Connector name, used by routes.")],
    smpp_url: Annotated[
        str,
        typer.Option(help="smpp://system_id:password@host:port?bind=transceiver&window=10&tps=0"),
    ],
) -> None:
    """Add (or replace) an SMPP connector; workers pick it up when they start."""
    settings = _settings()
    try:
        SmppSettings.from_url(smpp_url)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    sealed = SecretBox.for_settings(settings).encrypt(smpp_url)
    _with_store(lambda store: store.add_connector(name, "smpp", sealed))
    console.print(f"connector {name} saved (restart workers to use it)")


@connectors_app.command("list")
def connectors_list() -> None:
    """List connectors (passwords are not shown)."""
    settings = _settings()
    box = SecretBox.for_settings(settings)
    table = Table("name", "kind", "host", "system_id", "bind", "window", "tps", "bound by")

    async def read(store: Store) -> tuple[list[ConnectorRow], dict[str, tuple[str, int]], int]:
        return await store.connectors(), await store.connector_leases(), store.clock()

    rows, leases, now = _with_store(read)
    for row in rows:
        smpp = SmppSettings.from_url(box.decrypt(row.sealed_url))
        owner, until = leases.get(row.name, ("-", 0))
        table.add_row(
            row.name,
            row.kind,
            f"{smpp.host}:{smpp.port}",
            smpp.system_id,
            smpp.bind_mode,
            str(smpp.window),
            str(smpp.max_per_second or "-"),
            owner if until > now else "-",  # the worker holding its lease, if any
        )
    console.print(table)


@connectors_app.command("remove")
def connectors_remove(name: str) -> None:
    """Remove a connector and the routes that use it."""
    if not _with_store(lambda store: store.remove_connector(name)):
        console.print(f"[red]no connector {name!r}[/red]")
        raise typer.Exit(1)
    console.print(f"connector {name} removed")


@routes_app.command("add")
def routes_add(
    connector: Annotated[str, typer.Option(help="Connector name (or 'sandbox').")],
    prefix: Annotated[str, typer.Option(help="Destination prefix in digits; empty for all.")] = "",
    routing_group: Annotated[
        int | None, typer.Option(help="Only messages of this routing group (1-3).")
    ] = None,
    priority: Annotated[int, typer.Option(help="Lower is tried first among equal prefixes.")] = 100,
) -> None:
    """Add a route; a route whose connector is down is skipped for the next one."""
    if prefix and not prefix.isdigit():
        console.print("[red]prefix must be digits[/red]")
        raise typer.Exit(2)

    async def work(store: Store) -> int:
        known = {row.name for row in await store.connectors()} | {"sandbox"}
        if connector not in known:
            raise typer.BadParameter(f"no connector {connector!r}")
        return await store.add_route(
            prefix=prefix, routing_group=routing_group, connector=connector, priority=priority
        )

    console.print(f"route {_with_store(work)} added")


@routes_app.command("list")
def routes_list() -> None:
    """List routes in the order they are tried."""
    rows = _with_store(lambda store: store.routes())
    table = Table("id", "prefix", "routing group", "connector", "priority")
    for row in sorted(rows, key=lambda r: (-len(r.prefix), r.routing_group is None, r.priority)):
        group = "" if row.routing_group is None else str(row.routing_group)
        table.add_row(str(row.id), row.prefix or "*", group, row.connector, str(row.priority))
    console.print(table)


@routes_app.command("remove")
def routes_remove(route_id: int) -> None:
    """Remove a route by id."""
    if not _with_store(lambda store: store.remove_route(route_id)):
        console.print(f"[red]no route {route_id}[/red]")
        raise typer.Exit(1)
    console.print(f"route {route_id} removed")
