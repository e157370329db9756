"""The dashboard's traffic charts, as inline SVG: messages per minute by state
over the last hour, and messages accepted per half hour over the last day.

Drawn on the server so the page needs no charting script and reads the same
without JavaScript; the figures behind it are also given as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smsgate.core.states import State
from smsgate.store.console import TrafficCount

# What the chart tells apart, and which stored states each line counts.
SERIES: dict[str, tuple[str, frozenset[str]]] = {
    "waiting": ("#8a8a8a", frozenset({State.ACCEPTED, State.SCHEDULED, State.QUEUED})),
    "submitted": ("#1f6fd1", frozenset({State.SUBMITTED})),
    "delivered": ("#1d8a3a", frozenset({State.DELIVERED})),
    "failed": (
        "#c2331f",
        frozenset(
            {
                State.UNDELIVERABLE,
                State.EXPIRED,
                State.REJECTED,
                State.FAILED,
                State.CANCELLED,
                State.UNKNOWN,
            }
        ),
    ),
}
WIDTH, HEIGHT, MINUTES = 600, 160, 60


DAY_PERIOD_MS = 30 * 60_000
DAY_PERIODS = 48


@dataclass(frozen=True)
class DayChart:
    points: str  # the SVG polyline's points
    peak: int
    total: int
    first_ms: int  # start of the oldest period shown
    last_ms: int  # start of the newest


def day_chart(counts: Sequence[tuple[int, int]], now_ms: int) -> DayChart:
    """Messages accepted per half hour over the last day, from
    ``Store.accepted_per_period``, as one line."""
    last = now_ms - now_ms % DAY_PERIOD_MS
    starts = [last - (DAY_PERIODS - 1 - i) * DAY_PERIOD_MS for i in range(DAY_PERIODS)]
    by_start = dict(counts)
    values = [by_start.get(start, 0) for start in starts]
    peak = max(1, *values)
    step = WIDTH / (DAY_PERIODS - 1)
    points = " ".join(
        f"{i * step:.1f},{HEIGHT - value * (HEIGHT - 4) / peak:.1f}"
        for i, value in enumerate(values)
    )
    return DayChart(points, peak, sum(values), starts[0], starts[-1])


@dataclass(frozen=True)
class Line:
    name: str
    colour: str
    points: str  # the SVG polyline's points
    total: int


@dataclass(frozen=True)
class Chart:
    lines: list[Line]
    peak: int
    minutes: list[int]  # start of each minute shown, oldest first (ms)
    counts: dict[str, list[int]]  # series -> messages per minute, oldest first


def traffic_chart(counts: Sequence[TrafficCount], now_ms: int) -> Chart:
    """The last hour's ``Store.recent_traffic`` counts as lines by state."""
    last = now_ms - now_ms % 60_000
    minutes = [last - (MINUTES - 1 - i) * 60_000 for i in range(MINUTES)]
    index = {minute: i for i, minute in enumerate(minutes)}
    per_minute = {name: [0] * MINUTES for name in SERIES}
    for count in counts:
        for name, (_, states) in SERIES.items():
            if count.state in states and count.minute in index:
                per_minute[name][index[count.minute]] += count.messages
    peak = max(1, *(max(values) for values in per_minute.values()))
    step = WIDTH / (MINUTES - 1)
    lines = [
        Line(
            name,
            colour,
            " ".join(
                f"{i * step:.1f},{HEIGHT - value * (HEIGHT - 4) / peak:.1f}"
                for i, value in enumerate(per_minute[name])
            ),
            sum(per_minute[name]),
        )
        for name, (colour, _) in SERIES.items()
    ]
    return Chart(lines, peak, minutes, per_minute)
