"""The notable events of a running gateway, each logged and counted in one place.

Levels follow what an operator must act on: a request refused for its
content is INFO (the client's problem, named by the dialect's code), a
callback or a bind that fails is WARNING (the gateway cannot do its job for
someone), an internal failure is ERROR with its traceback. Everything that
went right is DEBUG: at the default level a busy gateway's log is short.
Counters are bumped by the caller only once the work is committed.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence

from smsgate.observe import metrics

log = logging.getLogger("smsgate.events")


def request_refused(dialect: str, code: object, description: str, path: str) -> None:
    """A request answered with one of its dialect's errors."""
    metrics.REFUSED_REQUESTS.labels(dialect, str(code)).inc()
    log.info(
        "refused %s %s: %s %s",
        dialect,
        path,
        code,
        description,
        extra={"event": "request_refused", "dialect": dialect, "code": str(code)},
    )


def accepted(
    dialect: str,
    account: str,
    *,
    messages: int,
    cost: int,
    seconds: float,
    refused: Iterable[str] = (),
) -> None:
    """A batch committed (``refused``: the reason codes of the messages left out)."""
    metrics.ACCEPTED.labels(dialect).inc(messages)
    metrics.ACCEPT_SECONDS.labels(dialect).observe(seconds)
    if cost:
        metrics.CHARGED.labels(metrics.account_label(account)).inc(cost / 100)
    left_out = Tally(refused)
    for code, count in left_out.items():
        metrics.REFUSED_MESSAGES.labels(dialect, code).inc(count)
    log.debug(
        "accepted %d message(s) for %s by %s in %.1f ms%s",
        messages,
        account,
        dialect,
        seconds * 1000,
        "".join(f", {n} refused {code}" for code, n in sorted(left_out.items())),
    )


def messages_refused(dialect: str, refused: Iterable[str]) -> None:
    """Messages refused in a request that stored none."""
    for code, count in Tally(refused).items():
        metrics.REFUSED_MESSAGES.labels(dialect, code).inc(count)


def submitted(connector: str, count: int) -> None:
    metrics.SUBMITTED.labels(connector).inc(count)


def finished(
    counts: Mapping[tuple[str | None, str, str], int],
    submit_to_final_ms: Mapping[str | None, Sequence[int]],
) -> None:
    """Messages that reached their final state in one commit (counted after
    it): how many per (connector, state, reason), and how long each took
    from submission, per connector. One label lookup per kind, not per
    message: a group of outcomes is thousands of messages."""
    for (connector, state, reason), count in counts.items():
        metrics.FINAL.labels(connector or "none", state, reason or "none").inc(count)
    for connector, times in submit_to_final_ms.items():
        histogram = metrics.SUBMIT_TO_FINAL_SECONDS.labels(connector or "none")
        for took in times:
            histogram.observe(max(0, took) / 1000)


def refunded(account: str, units: int) -> None:
    metrics.REFUNDED.labels(metrics.account_label(account)).inc(units / 100)


def callback_attempted(dialect: str, kind: str, outcome: str) -> None:
    """``outcome``: delivered, retry or failed (given up)."""
    metrics.CALLBACKS.labels(dialect, kind, outcome).inc()
