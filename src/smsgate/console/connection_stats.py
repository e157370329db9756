"""Per-connection figures for the dashboard: how much of what each connection
took was delivered, and the median time from submission to its final state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from smsgate.core.states import State
from smsgate.store.console import TrafficCount, latency_bucket_ms

_FINAL_FAILED = frozenset(
    {State.UNDELIVERABLE, State.EXPIRED, State.REJECTED, State.FAILED, State.UNKNOWN}
)


@dataclass(frozen=True)
class ConnectionFigures:
    connector: str
    taken: int  # messages the connection took (or refused) in the period
    delivered: int
    failed: int
    median_ms: float | None  # submission to final state of the delivered ones

    @property
    def delivery_rate(self) -> float | None:
        final = self.delivered + self.failed
        return self.delivered / final if final else None


def connection_figures(counts: Sequence[TrafficCount]) -> list[ConnectionFigures]:
    """One line per connection that took messages, by name."""
    by_connector: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for line in counts:
        if line.connector is not None:
            by_connector[line.connector].append((line.state, line.bucket, line.messages))
    figures = []
    for connector, lines in sorted(by_connector.items()):
        delivered = sorted((b, n) for state, b, n in lines if state == State.DELIVERED)
        total_delivered = sum(n for _, n in delivered)
        median = None
        seen = 0
        for bucket, count in delivered:
            seen += count
            if seen * 2 >= total_delivered:
                median = latency_bucket_ms(bucket)
                break
        figures.append(
            ConnectionFigures(
                connector,
                sum(n for _, _, n in lines),
                total_delivered,
                sum(n for state, _, n in lines if state in _FINAL_FAILED),
                median,
            )
        )
    return figures
