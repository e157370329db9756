"""The process's Prometheus metrics, and ``/metrics`` with the cluster's gauges.

Two kinds of numbers, because several API and worker processes share one
database:

- **Counters and histograms are per process** (what this process accepted,
  refused, submitted, finished, called back). Every process is scraped (API
  processes on their HTTP port, workers on ``SMSGATE_METRICS_PORT``) and the
  cluster's total is ``sum()`` over them. Each is counted only after the
  transaction that did the work has committed, so no rolled-back work is ever
  counted.
- **Gauges of shared state are read from the database at scrape time**
  (queue depth, oldest due message, callback backlog, connection leases and
  the health their holders record, worker heartbeats, balances), with
  queries over partial indexes or small tables. Every process reports the
  same cluster-wide value: take ``max()`` over them, never ``sum()``.

Label sets are bounded: dialects, codes, states and reasons are fixed
tables; connector names and account names are what the operator created,
and at most ``SMSGATE_METRICS_MAX_ACCOUNTS`` accounts get a label of their
own (the rest are ``other``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from smsgate.core.pricing import CREDIT_SCALE
from smsgate.store.records import ConnectionHealth

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

ACCEPTED = Counter(
    "smsgate_messages_accepted",
    "Messages stored for delivery (committed), by dialect.",
    ["dialect"],
    registry=REGISTRY,
)
REFUSED_MESSAGES = Counter(
    "smsgate_messages_refused",
    "Messages refused inside an otherwise answered request (per recipient), "
    "by dialect and the gateway's reason code.",
    ["dialect", "code"],
    registry=REGISTRY,
)
REFUSED_REQUESTS = Counter(
    "smsgate_requests_refused",
    "Requests refused as a whole, by dialect and the dialect's own error code.",
    ["dialect", "code"],
    registry=REGISTRY,
)
ACCEPT_SECONDS = Histogram(
    "smsgate_accept_seconds",
    "Time from a validated request to its committed batch, by dialect.",
    ["dialect"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
SUBMITTED = Counter(
    "smsgate_messages_submitted",
    "Messages the carrier took (submit_sm_resp OK), by connector.",
    ["connector"],
    registry=REGISTRY,
)
FINAL = Counter(
    "smsgate_messages_final",
    "Messages that reached a final state, by connector, state and reason.",
    ["connector", "state", "reason"],
    registry=REGISTRY,
)
SUBMIT_TO_FINAL_SECONDS = Histogram(
    "smsgate_submit_to_receipt_seconds",
    "Time from submission to the carrier's receipt, by connector.",
    ["connector"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400),
    registry=REGISTRY,
)
CALLBACKS = Counter(
    "smsgate_callback_attempts",
    "Callback attempts, by dialect, kind (dlr, mo) and outcome "
    "(delivered, retry, failed: given up).",
    ["dialect", "kind", "outcome"],
    registry=REGISTRY,
)
CHARGED = Counter(
    "smsgate_credits_charged",
    "Credits charged for accepted messages, by account.",
    ["account"],
    registry=REGISTRY,
)
REFUNDED = Counter(
    "smsgate_credits_refunded",
    "Credits refunded for refused or failed messages, by account; credit "
    "spent is charged minus refunded.",
    ["account"],
    registry=REGISTRY,
)


class AccountLabels:
    """The label an account's numbers are filed under: its name, for the
    first ``limit`` accounts this process sees, else ``other``."""

    OTHER = "other"

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, name: str) -> str:
        if name in self._seen:
            return name
        if len(self._seen) >= self.limit:
            return self.OTHER
        self._seen.add(name)
        return name


account_label = AccountLabels()


@dataclass(frozen=True)
class ClusterSnapshot:
    """Shared state as the database holds it at one moment (see ``store.observing``)."""

    now_ms: int
    waiting: dict[str, int] = field(default_factory=dict)  # state -> messages
    due: int = 0
    oldest_due_ms: int | None = None
    callbacks_pending: int = 0
    callbacks_due: int = 0
    oldest_callback_due_ms: int | None = None
    # connector -> (holder or None, lease_until)
    connections: dict[str, tuple[str | None, int]] = field(default_factory=dict)
    # worker -> (role, seen_at, last claim or None)
    workers: dict[str, tuple[str, int, int | None]] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)  # account name -> hundredths
    # connector -> what the worker holding it last reported (store.connection_health)
    health: dict[str, ConnectionHealth] = field(default_factory=dict)


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: ClusterSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        queue = GaugeMetricFamily(
            "smsgate_queue_messages",
            "Messages waiting for dispatch, cluster-wide, by state (queued, scheduled).",
            labels=["state"],
        )
        for state in ("queued", "scheduled"):
            queue.add_metric([state], s.waiting.get(state, 0))
        yield queue
        yield GaugeMetricFamily(
            "smsgate_queue_due_messages",
            "Messages whose time has come and that wait for a worker, cluster-wide.",
            value=s.due,
        )
        yield GaugeMetricFamily(
            "smsgate_queue_oldest_due_age_seconds",
            "How long the oldest due message has waited past its time (0: none waits).",
            value=_age(s.now_ms, s.oldest_due_ms),
        )
        backlog = GaugeMetricFamily(
            "smsgate_callbacks_pending",
            "Callbacks not yet delivered or given up, cluster-wide "
            "(due: to be sent now; all: including those waiting for a retry).",
            labels=["when"],
        )
        backlog.add_metric(["all"], s.callbacks_pending)
        backlog.add_metric(["due"], s.callbacks_due)
        yield backlog
        yield GaugeMetricFamily(
            "smsgate_callbacks_oldest_due_age_seconds",
            "How long the oldest due callback has waited past its time.",
            value=_age(s.now_ms, s.oldest_callback_due_ms),
        )
        bound = GaugeMetricFamily(
            "smsgate_connection_bound",
            "1 when a worker holds the connection's lease (and so binds it), else 0.",
            labels=["connector", "worker"],
        )
        for connector, (holder, until) in sorted(s.connections.items()):
            held = holder is not None and until > s.now_ms
            bound.add_metric([connector, holder if held and holder else ""], 1 if held else 0)
        yield bound
        yield from _health_families(s)
        seen = GaugeMetricFamily(
            "smsgate_worker_heartbeat_age_seconds",
            "Seconds since each worker last reported in.",
            labels=["worker", "role"],
        )
        claimed = GaugeMetricFamily(
            "smsgate_worker_last_claim_age_seconds",
            "Seconds since each worker last polled the queue for due messages.",
            labels=["worker"],
        )
        for worker, (role, seen_at, claim_at) in sorted(s.workers.items()):
            seen.add_metric([worker, role], _age(s.now_ms, seen_at))
            if claim_at is not None:
                claimed.add_metric([worker], _age(s.now_ms, claim_at))
        yield seen
        yield claimed
        balance = GaugeMetricFamily(
            "smsgate_account_balance_credits", "Each account's balance.", labels=["account"]
        )
        for name, units in sorted(s.balances.items()):
            balance.add_metric([name], units / 100)
        yield balance


CONNECTION_STATES = ("bound", "binding", "failing", "stopped")


def _health_families(s: ClusterSnapshot) -> Iterator[Metric]:
    """Each connection's state as its lease holder last reported it."""
    state = GaugeMetricFamily(
        "smsgate_connection_state",
        "1 for the state each connection is in (bound, binding, failing, stopped).",
        labels=["connector", "state"],
    )
    since = GaugeMetricFamily(
        "smsgate_connection_state_age_seconds",
        "How long each connection has been in its state.",
        labels=["connector"],
    )
    window = GaugeMetricFamily(
        "smsgate_connection_window", "Each connection's send window.", labels=["connector"]
    )
    in_flight = GaugeMetricFamily(
        "smsgate_connection_in_flight",
        "Messages sent on each connection and not yet answered.",
        labels=["connector"],
    )
    paced = GaugeMetricFamily(
        "smsgate_connection_paced_rate",
        "Send rate learned from the carrier's throttling, per second (0: not paced).",
        labels=["connector"],
    )
    balance = GaugeMetricFamily(
        "smsgate_upstream_balance_credits",
        "Credit an upstream HTTP provider holds for us, as it last said.",
        labels=["connector"],
    )
    for name, health in sorted(s.health.items()):
        if health.balance is not None:
            balance.add_metric([name], health.balance / CREDIT_SCALE)
        for each in CONNECTION_STATES:
            state.add_metric([name, each], 1 if health.state == each else 0)
        since.add_metric([name], _age(s.now_ms, health.since))
        window.add_metric([name], health.window)
        in_flight.add_metric([name], health.in_flight)
        paced.add_metric([name], health.paced_rate)
    yield from (state, since, window, in_flight, paced, balance)


def _age(now_ms: int, then_ms: int | None) -> float:
    return 0.0 if then_ms is None else max(0.0, (now_ms - then_ms) / 1000)


class _DatabaseUp(Collector):
    def __init__(self, up: bool) -> None:
        self.up = up

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "smsgate_database_up",
            "1 when this scrape could read the cluster's state from the database.",
            value=1 if self.up else 0,
        )


_SHARED_DIRECTORY: list[str] = []  # set once, before a server forks its processes


def share_across_processes(directory: str) -> None:
    """Count in files under ``directory`` (empty, one per server run) from now
    on, so that every process of one ``serve --processes N`` answers /metrics
    with the counters of all of them (prometheus_client's multiprocess mode).

    Called in the parent before it forks: the counters' values are created
    per label set, in each child, after this. The per-process
    ``process_*``/``python_*`` metrics are left out then, since they would
    describe only whichever process took the scrape.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _SHARED_DIRECTORY.append(directory)


def _counters() -> bytes:
    if not _SHARED_DIRECTORY:
        return generate_latest(REGISTRY)
    shared = CollectorRegistry()
    MultiProcessCollector(shared, path=_SHARED_DIRECTORY[0])  # type: ignore[no-untyped-call]
    return generate_latest(shared)


def render(snapshot: ClusterSnapshot | None) -> bytes:
    """The exposition text: the counters (this process's, or with
    ``share_across_processes`` its server's), then the cluster's gauges
    (none when the database could not be read: absent, not zero)."""
    scrape = CollectorRegistry()
    scrape.register(_DatabaseUp(snapshot is not None))
    if snapshot is not None:
        scrape.register(_SnapshotCollector(snapshot))
    return _counters() + generate_latest(scrape)
