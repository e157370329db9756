"""The ``smsgate`` command: run the gateway and administer it.

Sub-command groups live in ``smsgate.commands``; this module assembles them
and holds the commands that run something (serve, worker, demo, smsc-sim,
upload-batch). ``main`` is the entry point: whatever fails, the user gets one
line that says what to do and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import signal
import socket
import tempfile
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typer.core import TyperGroup

from smsgate.commands.accounts import accounts_app
from smsgate.commands.common import (
    CliError,
    console,
    describe_database,
    format_time,
    open_store,
    set_up_logging,
    settings,
    table,
    with_store,
)
from smsgate.commands.demo import demo_banner, prepare_demo
from smsgate.commands.messages import callbacks_app, messages_app
from smsgate.commands.operators import operators_app
from smsgate.commands.receipts import receipts_app
from smsgate.config import Settings, parse_reply_numbers
from smsgate.core.eapi_csv import MAX_BATCH_ROWS, BatchFormatError
from smsgate.core.pricing import format_units, to_units
from smsgate.delivery.connectors.http_settings import HttpSettings, compose_url
from smsgate.delivery.connectors.receiver_paths import receiver_path
from smsgate.delivery.connectors.smpp_settings import SmppSettings, checked_smpp_url
from smsgate.delivery.routing import Route, trial_order
from smsgate.eapi_upload import (
    Backoff,
    Chunk,
    accepted_rows,
    parse_params,
    send_batch_url,
    split_batches,
    upload_batches,
)
from smsgate.event_loop import run_service
from smsgate.processes import WakePipe, run_children
from smsgate.sandbox_lock import SandboxInUse, hold_sandbox
from smsgate.secret_box import SecretBox
from smsgate.store.migrate import current_revision
from smsgate.store.records import ConnectionHealth, ConnectorRow
from smsgate.store.repo import Store

log = logging.getLogger(__name__)


class _OneLineFailures(TyperGroup):
    """Whatever a command raises becomes one line on standard error and an
    exit status (2: bad input or configuration, 1: anything else), never a
    traceback; click's own usage errors, --help and exits pass through."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            typer.echo(f"smsgate: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, typer.TyperException, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("SMSGATE_LOG_LEVEL", "").upper() == "DEBUG":
                traceback.print_exc()
            first = str(exc).splitlines()[0] if str(exc) else ""
            typer.echo(
                f"smsgate: unexpected failure: {type(exc).__name__}: {first} "
                "(SMSGATE_LOG_LEVEL=DEBUG shows where)",
                err=True,
            )
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_OneLineFailures,
    help="smsgate: a self-hosted bulk SMS gateway. Settings come from SMSGATE_* "
    "environment variables (see the README); options given here win.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(accounts_app, name="accounts")
app.add_typer(messages_app, name="messages")
app.add_typer(callbacks_app, name="callbacks")
app.add_typer(operators_app, name="operators")


def _version() -> str:
    try:
        return version("smsgate")
    except PackageNotFoundError:
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"smsgate {_version()}")
        raise typer.Exit()


@app.callback()
def root(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the embedded SQLite database and secret.key live "
            "[default: the per-user data directory, ~/.local/share/smsgate on Linux].",
            envvar="SMSGATE_DATA_DIR",
            file_okay=False,
        ),
    ] = None,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """smsgate: a self-hosted bulk SMS gateway."""
    if data_dir is not None:
        os.environ["SMSGATE_DATA_DIR"] = str(data_dir)


# Placeholders in --help by what an option holds, instead of its Python type.
_METAVARS = {
    "url": "URL", "callback_url": "URL", "mo_url": "URL", "smpp_url": "URL",
    "sender": "SENDER", "region": "CC", "timezone": "ZONE", "country": "CODE",
    "option": "KEY=VALUE", "param": "KEY=VALUE", "unset": "KEY", "rotate": "KIND",
    "credit": "CREDITS", "amount": "CREDITS", "note": "TEXT", "host": "HOST", "port": "PORT",
    "state": "STATE", "since": "TIME", "until": "TIME", "number": "NUMBER", "account": "NAME",
    "name": "NAME", "connector": "NAME", "username": "USER", "password": "PASS",
    "partner_id": "ID", "eapi_username": "USER", "prefix": "DIGITS", "rules": "RULES",
    "system_id": "ID", "encoding": "CODEC", "data_dir": "DIR", "file": "FILE",
    "reply_numbers": "NUMBERS",
}  # fmt: skip


def _readable_help(command: Any) -> None:
    """Name each option's placeholder after what it holds (URL, N, KEY=VALUE)."""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False):
            continue
        if param.name in _METAVARS:
            param.metavar = _METAVARS[param.name]
        elif param.type_descriptor.annotation in (int, float):
            param.metavar = "N"
        else:
            param.metavar = "TEXT"
    for sub in getattr(command, "commands", {}).values():
        _readable_help(sub)


def main() -> None:
    """The ``smsgate`` command, with readable placeholders in its help."""
    command = typer.main.get_command(app)
    _readable_help(command)
    command.main(prog_name="smsgate")


_HOST = typer.Option(help="Address to bind.", envvar="SMSGATE_HOST")
_PORT = typer.Option(min=1, max=65535, help="Port to bind.", envvar="SMSGATE_PORT")


def _start(current: Settings, *, with_workers: bool) -> tuple[socket.socket, IO[str] | None]:
    """Take the sandbox lock and bind the port before anything else happens,
    so a second process or a taken port changes nothing and says why."""
    from smsgate.runtime import listening_socket  # the server's stack, for these commands only

    lock = None
    if with_workers:
        try:
            lock = hold_sandbox(current)
        except SandboxInUse as exc:
            raise CliError(str(exc)) from None
    try:
        sock = listening_socket(current.host, current.port)
    except OSError as exc:
        raise CliError(
            f"cannot listen on {current.host}:{current.port}: {exc.strerror or exc}; "
            "stop what uses it or pick another --port"
        ) from None
    return sock, lock


def _banner(current: Settings, what: str) -> str:
    return (
        f"smsgate {_version()} {what} on http://{current.host}:{current.port} "
        f"({describe_database(current)}; data directory {current.data_dir})"
    )


@app.command("serve")
def serve_command(
    host: Annotated[str, _HOST] = Settings.host,
    port: Annotated[int, _PORT] = Settings.port,
    workers: Annotated[
        bool,
        typer.Option(help="Also run the delivery workers (dispatch, receipts, callbacks) here."),
    ] = True,
    reply_numbers: Annotated[
        str | None,
        typer.Option(
            help="The pool of numbers repliable messages are sent from, comma-separated; "
            "as many accounts can be in conversation with one handset as it has numbers "
            "[default: 254709000999].",
            envvar="SMSGATE_REPLY_NUMBERS",
        ),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="HTTP processes sharing the port; one of them also runs the delivery workers.",
            envvar="SMSGATE_PROCESSES",
        ),
    ] = 1,
    smpp: Annotated[
        bool | None,
        typer.Option(
            "--smpp/--no-smpp",
            help="Also accept customers' SMPP binds here [default: off; SMSGATE_SMPP_SERVER_ENABLED].",
            show_default=False,
        ),
    ] = None,
    smpp_port: Annotated[int | None, _SMPP_PORT] = None,
) -> None:
    """Run the HTTP API (and, by default, the delivery workers)."""
    from smsgate.runtime import serve  # the server's stack, for these commands only

    try:
        pool = None if reply_numbers is None else parse_reply_numbers(reply_numbers)
    except ValueError as exc:
        raise CliError(f"--reply-numbers: {exc}", 2) from None
    current = settings(
        host=host,
        port=port,
        reply_numbers=pool,
        smpp_server_enabled=smpp,
        smpp_server_port=smpp_port,
    )
    set_up_logging(current)
    sock, _lock = _start(current, with_workers=workers)
    asyncio.run(_check_database(current))
    several = f", {processes} processes" if processes > 1 else ""
    typer.echo(_banner(current, "listening" + ("" if workers else " (API only)") + several))
    if current.smpp_server_enabled:
        typer.echo(_smpp_banner(current))
    if processes == 1:
        run_service(serve(current, sock, with_workers=workers))
        return
    sock.close()  # it proved the port free; the processes get a socket each
    status = _serve_in_processes(current, processes, with_workers=workers)
    if status:
        raise typer.Exit(status)


def _serve_in_processes(current: Settings, count: int, *, with_workers: bool) -> int:
    """``serve`` in ``count`` processes (see ``smsgate.processes``), each on
    its own socket of the port, so that the kernel spreads the connections
    over them instead of handing most to whichever process wakes first."""
    from smsgate.observe.metrics import share_across_processes
    from smsgate.runtime import listening_socket, serve

    try:
        sockets = [
            listening_socket(current.host, current.port, shared_port=True) for _ in range(count)
        ]
    except OSError as exc:
        raise CliError(f"cannot listen on {current.host}:{current.port}: {exc}") from None
    wake = WakePipe() if with_workers else None
    with tempfile.TemporaryDirectory(prefix="smsgate-metrics-") as counters:
        share_across_processes(counters)

        def child(index: int) -> int:
            for other in sockets[:index] + sockets[index + 1 :]:
                other.close()  # a process that ends takes its socket's queue with it
            only_here = with_workers and index == 0
            run_service(
                serve(
                    current,
                    sockets[index],
                    with_workers=only_here,
                    with_smpp=index == 0,  # one process holds the SMPP port
                    wake=wake,
                )
            )
            return 0

        def name(index: int) -> str:
            return "API and delivery workers" if with_workers and index == 0 else "API only"

        def forked() -> None:
            for sock in sockets:
                sock.close()

        return run_children(count, child, name, forked)


_SMPP_PORT = typer.Option(
    "--smpp-port",
    help="Port of the customer SMPP server [default: 2775; SMSGATE_SMPP_SERVER_PORT].",
    show_default=False,
)


def _smpp_banner(current: Settings) -> str:
    tls = " with TLS" if current.smpp_server_tls_cert else ""
    return (
        f"smsgate {_version()} SMPP server on {current.smpp_server_host}:"
        f"{current.smpp_server_port}{tls} (window {current.smpp_server_window})"
    )


@app.command("smpp-server")
def smpp_server_command(smpp_port: Annotated[int | None, _SMPP_PORT] = None) -> None:
    """Run only the SMPP server customers bind to (scale-out on PostgreSQL:
    workers and API processes run beside it on the same database)."""
    from smsgate.runtime import run_smpp_server  # the server's stack, for these commands only

    current = settings(smpp_server_port=smpp_port, smpp_server_enabled=True)
    set_up_logging(current)
    asyncio.run(_check_database(current))
    typer.echo(_smpp_banner(current) + f" ({describe_database(current)})")
    try:
        run_service(run_smpp_server(current))
    except OSError as exc:
        raise CliError(
            f"cannot listen on {current.smpp_server_host}:{current.smpp_server_port}: "
            f"{exc.strerror or exc}; free it or change SMSGATE_SMPP_SERVER_PORT"
        ) from None


async def _check_database(current: Settings) -> None:
    """Open (and migrate) the database once up front, so a database problem is
    one line before anything serves."""
    store = await open_store(current)
    await store.close()


@app.command("worker")
def worker_command() -> None:
    """Run only the delivery workers (dispatcher, receipts, callbacks).

    With SMSGATE_METRICS_PORT set, the worker also answers /healthz, /readyz
    and /metrics on that port."""
    from smsgate.runtime import (  # the server's stack, for these commands only
        listening_socket,
        run_worker,
    )

    current = settings()
    set_up_logging(current)
    try:
        lock = hold_sandbox(current)
    except SandboxInUse as exc:
        raise CliError(str(exc)) from None
    metrics_sock = None
    if current.metrics_port:
        try:
            metrics_sock = listening_socket(current.host, current.metrics_port)
        except OSError as exc:
            raise CliError(
                f"cannot listen on {current.host}:{current.metrics_port} for metrics: "
                f"{exc.strerror or exc}; free it or change SMSGATE_METRICS_PORT"
            ) from None
    asyncio.run(_check_database(current))
    where = f", metrics on :{current.metrics_port}" if metrics_sock else ""
    typer.echo(
        f"smsgate {_version()} worker {current.worker_id} ({describe_database(current)}; "
        f"data directory {current.data_dir}{where})"
    )
    run_service(run_worker(current, metrics_sock))
    del lock


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date (every process also does this at start)."""

    async def work(store: Store) -> str | None:
        return await current_revision(store.engines)

    revision = with_store(work)
    typer.echo(f"schema at revision {revision} ({describe_database(settings())})")


@app.command("demo")
def demo_command(
    port: Annotated[int, _PORT] = Settings.port,
    new_credentials: Annotated[
        bool, typer.Option(help="Issue new demo credentials instead of keeping the last ones.")
    ] = False,
) -> None:
    """Create (or reset) the demo account, print its credentials and examples, and serve.

    Run again, it keeps the credentials and resets the balance to 1,000 credits."""
    from smsgate.runtime import serve  # the server's stack, for these commands only

    current = settings(port=port)
    set_up_logging(current)
    sock, _lock = _start(current, with_workers=True)

    async def prepare() -> str:
        store = await open_store(current)
        try:
            account, issued = await prepare_demo(store, current, new_credentials=new_credentials)
        finally:
            await store.close()
        base = f"http://{current.host}:{current.port}"
        where = f"{describe_database(current)}; data directory {current.data_dir}"
        return demo_banner(base, account, issued, where)

    # Plain output: Rich would wrap the long curl lines and break copy-paste.
    typer.echo(asyncio.run(prepare()))
    typer.echo(_banner(current, "listening"))
    run_service(serve(current, sock))


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
        raise CliError(str(exc), 2) from None
    # A first pass counts the rows for the progress bar, and finds an unreadable
    # header or a wrong --encoding before anything is sent.
    try:
        with file.open("rb") as stream:
            total = sum(
                chunk.rows
                for chunk in split_batches(stream, rows_per_batch=rows_per_batch, encoding=encoding)
            )
    except (BatchFormatError, UnicodeDecodeError) as exc:
        raise CliError(f"{file}: {exc}", 2) from None
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

    stored = accepted_rows(summary.batch_ids, base_url=url, username=username, password=password)
    taken = "an unknown number of" if stored is None else f"{stored:,}"
    console.print(
        f"accepted {taken} of {total:,} rows in {summary.chunks_sent} submission(s) "
        f"({summary.rows_sent:,} sent; skipped rows were unusable); "
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
        raise CliError(f"--rules: {exc}", 2) from None
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
        raise CliError(str(exc), 2) from None
    set_up_logging(settings())

    async def run() -> None:
        # Explicit handlers: a shell starts a background job (smsc-sim … &)
        # with SIGINT ignored, and Python would then never raise KeyboardInterrupt.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        simulator = SmscSimulator(config)
        try:
            await simulator.start()
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port"
            ) from None
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
            await stop.wait()
        finally:
            await simulator.stop()

    asyncio.run(run())
    typer.echo("smsc-sim stopped")


connectors_app = typer.Typer(
    help="Carrier connections (SMPP, upstream HTTP) workers use.", no_args_is_help=True
)
routes_app = typer.Typer(help="Which connector carries which destinations.", no_args_is_help=True)
app.add_typer(connectors_app, name="connectors")
app.add_typer(receipts_app, name="receipts")
app.add_typer(routes_app, name="routes")


@connectors_app.command("add")
def connectors_add(
    name: Annotated[str, typer.Argument(help="Connector name, used by routes.")],
    smpp_url: Annotated[
        str | None,
        typer.Option(help="smpp://system_id:password@host:port?bind=transceiver&window=10&tps=0"),
    ] = None,
    http_url: Annotated[
        str | None,
        typer.Option(
            help="An upstream HTTP provider: DIALECT+https://user:key@host/path?in_flight=4&tps=0"
            " (dialect advanta, eapi or telesign), or its plain https:// address with --dialect"
        ),
    ] = None,
    dialect: Annotated[
        str | None, typer.Option(help="With a plain --http-url: advanta, eapi or telesign.")
    ] = None,
    username: Annotated[
        str | None,
        typer.Option(help="With --dialect: partnerID, EAPI username or Telesign customer id."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="With --dialect: apikey, EAPI password or Telesign API key."),
    ] = None,
) -> None:
    """Add (or replace) an SMPP or upstream HTTP connector; workers pick it up when they start."""
    if (smpp_url is None) == (http_url is None):
        raise CliError("give one of --smpp-url and --http-url")
    current = settings()
    box = SecretBox.for_settings(current)
    if http_url is not None:
        try:
            if dialect is not None:
                http_url = compose_url(http_url, dialect, username or "", password or "")
            HttpSettings.from_url(http_url)
        except ValueError as exc:
            raise CliError(f"--http-url: {exc}") from None
        with_store(lambda store: store.add_connector(name, "http", box.encrypt(http_url)))
        typer.echo(f"connector {name} saved (restart workers to use it)")
        typer.echo("have the provider push delivery reports and replies to this server's")
        typer.echo(f"  {receiver_path(box, name)}")
        return
    assert smpp_url is not None
    check_smpp_url(smpp_url)
    with_store(lambda store: store.add_connector(name, "smpp", box.encrypt(smpp_url)))
    typer.echo(f"connector {name} saved (restart workers to use it)")


@connectors_app.command("list")
def connectors_list() -> None:
    """List connectors (passwords are not shown) with what each is doing now."""
    box = SecretBox.for_settings(settings())
    grid = table(
        "name", "kind", "host", "account", "bind/dialect", "window", "tps", "bound by", "state"
    )

    async def read(
        store: Store,
    ) -> tuple[list[ConnectorRow], dict[str, tuple[str, int]], dict[str, ConnectionHealth], int]:
        return (
            await store.connectors(),
            await store.connector_leases(),
            await store.connection_health(),
            store.clock(),
        )

    rows, leases, health, now = with_store(read)
    receivers = []
    for row in rows:
        url = box.decrypt(row.sealed_url)
        owner, until = leases.get(row.name, ("-", 0))
        if row.kind == "http":
            http = HttpSettings.from_url(url)
            where, who, mode, window, tps = (
                http.base_url,
                http.username,
                http.dialect,
                http.in_flight,
                http.max_per_second,
            )
            owner, until = "every worker", now + 1
            receivers.append(f"{row.name}: {receiver_path(box, row.name)}")
        else:
            smpp = SmppSettings.from_url(url)
            where, who, mode, window, tps = (
                f"{smpp.host}:{smpp.port}",
                smpp.system_id,
                smpp.bind_mode,
                smpp.window,
                smpp.max_per_second,
            )
        grid.add_row(
            row.name,
            row.kind,
            where,
            who,
            mode,
            str(window),
            str(tps or "-"),
            owner if until > now else "-",  # the worker holding its lease, if any
            describe_health(health.get(row.name), now),
        )
    console.print(grid)
    for line in receivers:
        typer.echo(f"push path of {line}")


STALE_HEALTH_MS = 30_000
"""A holder reports every couple of seconds; a report older than this is old news."""


def describe_health(report: ConnectionHealth | None, now: int) -> str:
    """``bound``, ``failing since … (last error)``…, as the holder last reported it."""
    if report is None:
        return "never reported"
    text = f"{report.state} since {format_time(report.since)}"
    if report.state == "failing" and report.last_error:
        text += f": {report.last_error}"
    if report.state == "bound" and report.paced_rate:
        text += f", paced at {report.paced_rate:.1f}/s"
    if report.balance is not None:
        text += f", balance {format_units(report.balance)}"
    if now - report.updated_at > STALE_HEALTH_MS:
        text += f" (last report {format_time(report.updated_at)})"
    return text


@connectors_app.command("remove")
def connectors_remove(name: str) -> None:
    """Remove a connector and the routes that use it."""
    if not with_store(lambda store: store.remove_connector(name)):
        raise CliError(f"no connector {name!r} (smsgate connectors list shows them)")
    typer.echo(f"connector {name} removed")


@routes_app.command("add")
def routes_add(
    connector: Annotated[str, typer.Option(help="Connector name (or 'sandbox').")],
    prefix: Annotated[str, typer.Option(help="Destination prefix in digits; empty for all.")] = "",
    routing_group: Annotated[
        int | None, typer.Option(min=1, max=3, help="Only messages of this routing group (1-3).")
    ] = None,
    priority: Annotated[int, typer.Option(help="Lower is tried first among equal prefixes.")] = 100,
    price: Annotated[
        str | None,
        typer.Option(
            help="What a message part costs at this connection, in credits (0.65); among"
            " equal prefixes and priorities the cheapest is tried first."
        ),
    ] = None,
) -> None:
    """Add a route; a route whose connector is down is skipped for the next one."""
    if prefix and not (prefix.isascii() and prefix.isdigit() and len(prefix) <= 15):
        raise CliError(f"--prefix {prefix!r}: up to 15 digits", 2)
    units = None if price is None else _price_units(price)

    async def work(store: Store) -> int:
        known = {row.name for row in await store.connectors()} | {"sandbox"}
        if connector not in known:
            raise CliError(f"no connector {connector!r}: add it first (smsgate connectors add)", 2)
        return await store.add_route(
            prefix=prefix,
            routing_group=routing_group,
            connector=connector,
            priority=priority,
            price=units,
        )

    typer.echo(f"route {with_store(work)} added")


@routes_app.command("list")
def routes_list() -> None:
    """List routes in the order they are tried."""
    rows = with_store(lambda store: store.routes())
    grid = table("id", "prefix", "routing group", "connector", "priority", "price")
    routes = [(Route(r.prefix, r.routing_group, r.connector, r.priority, r.price), r) for r in rows]
    for _, row in sorted(routes, key=lambda pair: trial_order(pair[0])):
        group = "" if row.routing_group is None else str(row.routing_group)
        price = "" if row.price is None else format_units(row.price)
        grid.add_row(str(row.id), row.prefix or "*", group, row.connector, str(row.priority), price)
    console.print(grid)


def _price_units(price: str) -> int:
    try:
        units = to_units(price)
    except ValueError as exc:
        raise CliError(f"--price: {exc}", 2) from None
    if units < 0:
        raise CliError("--price: a price cannot be negative", 2)
    return units


@routes_app.command("remove")
def routes_remove(route_id: int) -> None:
    """Remove a route by id."""
    if not with_store(lambda store: store.remove_route(route_id)):
        raise CliError(f"no route {route_id} (smsgate routes list shows them)")
    typer.echo(f"route {route_id} removed")


def check_smpp_url(url: str) -> SmppSettings:
    """The URL's settings, with a plain complaint for a bad one (window=abc)."""
    try:
        return checked_smpp_url(url)
    except ValueError as exc:
        raise CliError(f"--smpp-url: {exc}", 2) from None
