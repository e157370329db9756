"""Runtime settings, read once from ``SMSGATE_*`` environment variables.

Everything has a default that makes ``smsgate serve`` work on a laptop with no
set-up (SQLite in the user's data directory, sandbox carrier); production
deployments override the few settings that matter (database URL, bind address,
carrier). The data directory does not depend on the current directory, so
every command run from anywhere finds the same database.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import platformdirs

from smsgate.core.networks import DEFAULT_NETWORK_PREFIXES
from smsgate.core.pricing import PriceTable
from smsgate.core.sandbox_rules import DEFAULT_SANDBOX_RULES, SandboxRule, parse_sandbox_rules
from smsgate.core.states import UpstreamCondition
from smsgate.observe.logs import FORMATS, LEVELS

ENV_PREFIX = "SMSGATE_"


class SettingsError(ValueError):
    """A setting has a value the gateway cannot run with; the message names it."""


@dataclass(frozen=True)
class Settings:
    """All tunables of one smsgate process.

    Durations are in seconds. ``callback_time_scale`` multiplies every retry delay
    of the callback outbox so tests can exercise hour-long schedules in milliseconds.
    """

    data_dir: Path = field(default_factory=lambda: default_data_dir())
    database_url: str = ""
    sqlite_synchronous: str = "FULL"
    host: str = "127.0.0.1"
    port: int = 8080
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    dispatch_batch_size: int = 500
    dispatch_idle_poll: float = 0.05
    lease_seconds: float = 30.0
    connector_lease_seconds: float = 6.0
    retry_base_seconds: float = 5.0
    max_attempts: int = 5
    callback_retry_seconds: tuple[float, ...] = (10.0, 60.0, 300.0, 1800.0, 7200.0)
    callback_time_scale: float = 1.0
    callback_timeout: float = 10.0
    callback_batch_size: int = 100
    sandbox_latency_ms: float = 20.0
    sandbox_receipt_delay_ms: float = 500.0
    sandbox_rules: tuple[SandboxRule, ...] = DEFAULT_SANDBOX_RULES
    network_prefixes: Mapping[str, int] = field(
        default_factory=lambda: dict(DEFAULT_NETWORK_PREFIXES)
    )
    prices: PriceTable = field(default_factory=PriceTable)
    default_region: str = "KE"
    default_timezone: str = "Africa/Nairobi"
    default_sender: str = "SMSGATE"
    eapi_stop_dup_hours: float = 24.0
    reply_numbers: tuple[str, ...] = ("254709000999",)
    reply_window_hours: float = 24.0
    max_pending_submissions: int = 256
    upstream_hold_seconds: float = 60.0
    sandbox_upstream: str = ""
    secret_key: str = ""
    smpp_url: str = ""
    log_level: str = "INFO"
    log_format: str = "text"
    log_message_text: bool = False
    metrics_token: str = ""
    metrics_port: int = 0
    metrics_max_accounts: int = 200
    heartbeat_seconds: float = 5.0
    max_body_bytes: int = 32 * 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_connections: int = 1000
    server_timing: bool = False
    auth_free_failures: int = 5
    auth_lock_seconds: float = 1.0
    auth_max_lock_seconds: float = 900.0
    auth_failure_window_seconds: float = 900.0
    auth_refusal_hold_seconds: float = 1.0
    account_messages_per_second: int = 1000
    account_message_burst: int = 60_000
    account_requests_in_flight: int = 20
    console_login_attempts: int = 5
    console_lockout_seconds: float = 300.0
    console_session_hours: float = 12.0
    smpp_server_enabled: bool = False
    smpp_server_host: str = "127.0.0.1"
    smpp_server_port: int = 2775
    smpp_server_window: int = 100
    smpp_server_max_binds: int = 4
    smpp_server_max_pdu_bytes: int = 16 * 1024
    smpp_server_bind_timeout: float = 10.0
    smpp_server_enquire_link_seconds: float = 30.0
    smpp_server_response_timeout: float = 10.0
    smpp_server_idle_timeout: float = 300.0
    smpp_server_tls_cert: str = ""
    smpp_server_tls_key: str = ""

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file inside ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'smsgate.sqlite3').resolve()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from the environment; explicit ``overrides`` win."""
        source = os.environ if env is None else env
        values: dict[str, object] = {}
        readers = {
            "data_dir": Path,
            "database_url": str,
            "sqlite_synchronous": _sqlite_synchronous,
            "host": str,
            "port": _port,
            "worker_id": str,
            "dispatch_batch_size": int,
            "dispatch_idle_poll": float,
            "lease_seconds": float,
            "connector_lease_seconds": float,
            "retry_base_seconds": float,
            "max_attempts": int,
            "callback_retry_seconds": _float_list,
            "callback_time_scale": float,
            "callback_timeout": float,
            "callback_batch_size": int,
            "sandbox_latency_ms": float,
            "sandbox_receipt_delay_ms": float,
            "sandbox_rules": parse_sandbox_rules,
            "network_prefixes": _network_prefixes,
            "prices": PriceTable.parse,
            "default_region": str.upper,
            "default_timezone": str,
            "default_sender": str,
            "eapi_stop_dup_hours": float,
            "reply_numbers": parse_reply_numbers,
            "reply_window_hours": _positive,
            "max_pending_submissions": int,
            "upstream_hold_seconds": float,
            "sandbox_upstream": _upstream_condition,
            "secret_key": str,
            "smpp_url": str,
            "log_level": _log_level,
            "log_format": _log_format,
            "log_message_text": _flag,
            "metrics_token": str,
            "metrics_port": _port,
            "metrics_max_accounts": int,
            "heartbeat_seconds": _positive,
            "max_body_bytes": _positive_int,
            "header_timeout": _positive,
            "body_timeout": _positive,
            "max_connections": _positive_int,
            "server_timing": _flag,
            "auth_free_failures": _positive_int,
            "auth_lock_seconds": _positive,
            "auth_max_lock_seconds": _positive,
            "auth_failure_window_seconds": _positive,
            "auth_refusal_hold_seconds": _non_negative,
            "account_messages_per_second": _positive_int,
            "account_message_burst": _positive_int,
            "account_requests_in_flight": _positive_int,
            "console_login_attempts": int,
            "console_lockout_seconds": _positive,
            "console_session_hours": _positive,
            "smpp_server_enabled": _flag,
            "smpp_server_host": str,
            "smpp_server_port": _port,
            "smpp_server_window": _positive_int,
            "smpp_server_max_binds": _positive_int,
            "smpp_server_max_pdu_bytes": _positive_int,
            "smpp_server_bind_timeout": _positive,
            "smpp_server_enquire_link_seconds": _positive,
            "smpp_server_response_timeout": _positive,
            "smpp_server_idle_timeout": _positive,
            "smpp_server_tls_cert": str,
            "smpp_server_tls_key": str,
        }
        for name, reader in readers.items():
            raw = source.get(ENV_PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[name] = reader(raw)  # type: ignore[operator]
            except (ValueError, TypeError) as exc:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: {exc}") from exc
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def default_data_dir() -> Path:
    """The per-user data directory (``~/.local/share/smsgate`` on Linux)."""
    return Path(platformdirs.user_data_dir("smsgate", appauthor=False))


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in LEVELS:
        raise ValueError(f"expected one of {', '.join(LEVELS)}")
    return value


def _log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in FORMATS:
        raise ValueError(f"expected one of {', '.join(FORMATS)}")
    return value


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in {"0", "1", "true", "false", "yes", "no", "on", "off"}:
        raise ValueError("expected 1 or 0")
    return value in {"1", "true", "yes", "on"}


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("expected a port from 1 to 65535 (0: none)")
    return value


def _positive(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("expected a positive number of seconds")
    return value


def _non_negative(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("expected a number of seconds, 0 or more")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected a whole number above 0")
    return value


def _float_list(raw: str) -> tuple[float, ...]:
    items = tuple(float(part) for part in raw.split(",") if part.strip())
    if not items or any(item < 0 for item in items):
        raise ValueError("expected a comma-separated list of non-negative seconds")
    return items


def parse_reply_numbers(raw: str) -> tuple[str, ...]:
    """The reply pool: a comma-separated list of distinct numbers of 3 to 15 digits."""
    numbers = tuple(part.strip().lstrip("+") for part in raw.split(",") if part.strip())
    if not numbers or not all(n.isdigit() and 3 <= len(n) <= 15 for n in numbers):
        raise ValueError("expected reply numbers of 3 to 15 digits, separated by commas")
    if len(set(numbers)) != len(numbers):
        raise ValueError("a reply number is listed twice")
    return numbers


def _upstream_condition(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {c.value for c in UpstreamCondition}:
        raise ValueError(f"expected one of {', '.join(c.value for c in UpstreamCondition)}")
    return value


def _sqlite_synchronous(raw: str) -> str:
    value = raw.upper()
    if value not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError("expected OFF, NORMAL, FULL or EXTRA")
    return value


def _network_prefixes(raw: str) -> dict[str, int]:
    """Accept inline JSON (``{"25470": 1}``) or a path to a JSON file."""
    text = Path(raw).read_text() if not raw.lstrip().startswith("{") else raw
    table = orjson.loads(text)
    if not isinstance(table, dict):
        raise ValueError("expected a JSON object of prefix -> network id")
    return {str(prefix).lstrip("+"): int(network) for prefix, network in table.items()}
