"""Outcome rules of the sandbox carrier, keyed by recipient number suffix.

The sandbox must be deterministic so that demos and tests can ask for a
specific outcome by choosing the number: "+254700000000" is an absent
subscriber by default, exactly like a real carrier would report it.
"""

from __future__ import annotations

from dataclasses import dataclass

from smsgate.core.states import Reason, State

_OUTCOMES: dict[str, tuple[State, Reason, bool]] = {
    "delivered": (State.DELIVERED, Reason.NONE, False),
    "replies": (State.DELIVERED, Reason.NONE, True),
    "absent": (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER, False),
    "unknown": (State.UNDELIVERABLE, Reason.UNKNOWN_SUBSCRIBER, False),
    "blacklisted": (State.UNDELIVERABLE, Reason.SENDER_BLOCKED, False),
    "expired": (State.EXPIRED, Reason.VALIDITY_EXPIRED, False),
    "rejected": (State.REJECTED, Reason.CARRIER_REJECTED, False),
}


@dataclass(frozen=True, slots=True)
class SandboxRule:
    """``replies``: the handset is delivered to and then answers the sender."""

    suffix: str
    state: State
    reason: Reason
    replies: bool = False


def parse_sandbox_rules(raw: str) -> tuple[SandboxRule, ...]:
    """Read ``"000=absent,999=rejected"``; longer suffixes are tried first."""
    rules: list[SandboxRule] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        suffix, sep, outcome = item.partition("=")
        if not sep or not suffix.strip().isdigit():
            raise ValueError(f"expected digits=outcome, got {item!r}")
        try:
            state, reason, replies = _OUTCOMES[outcome.strip().lower()]
        except KeyError:
            raise ValueError(
                f"unknown outcome {outcome!r}; choose from {', '.join(_OUTCOMES)}"
            ) from None
        rules.append(SandboxRule(suffix.strip(), state, reason, replies))
    return tuple(sorted(rules, key=lambda rule: -len(rule.suffix)))


_DELIVERED = SandboxRule("", State.DELIVERED, Reason.NONE)


def rule_for(rules: tuple[SandboxRule, ...], e164: str) -> SandboxRule:
    """The first (longest) rule whose suffix ends the number; delivered otherwise."""
    for rule in rules:
        if e164.endswith(rule.suffix):
            return rule
    return _DELIVERED


DEFAULT_SANDBOX_RULES = parse_sandbox_rules(
    "000=absent,001=unknown,002=blacklisted,003=expired,004=rejected,005=replies"
)
