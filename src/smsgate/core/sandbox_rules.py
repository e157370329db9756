"""Outcome rules of the sandbox carrier, keyed by recipient number suffix.

The sandbox must be deterministic so that demos and tests can ask for a
specific outcome by choosing the number: "+254700000000" is an absent
subscriber by default, exactly like a real carrier would report it.
"""

from __future__ import annotations

from dataclasses import dataclass

from smsgate.core.states import Reason, State

_OUTCOMES: dict[str, tuple[State, Reason]] = {
    "delivered": (State.DELIVERED, Reason.NONE),
    "absent": (State.UNDELIVERABLE, Reason.ABSENT_SUBSCRIBER),
    "unknown": (State.UNDELIVERABLE, Reason.UNKNOWN_SUBSCRIBER),
    "blacklisted": (State.UNDELIVERABLE, Reason.SENDER_BLOCKED),
    "expired": (State.EXPIRED, Reason.VALIDITY_EXPIRED),
    "rejected": (State.REJECTED, Reason.CARRIER_REJECTED),
}


@dataclass(frozen=True, slots=True)
class SandboxRule:
    suffix: str
    state: State
    reason: Reason


def parse_sandbox_rules(raw: str) -> tuple[SandboxRule, ...]:
    """Read ``"000=absent,999=rejected"``; longer suffixes are tried first."""
    rules: list[SandboxRule] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        suffix, sep, outcome = item.partition("=")
        if not sep or not suffix.strip().isdigit():
            raise ValueError(f"expected digits=outcome, got {item!r}")
        try:
            state, reason = _OUTCOMES[outcome.strip().lower()]
        except KeyError:
            raise ValueError(
                f"unknown outcome {outcome!r}; choose from {', '.join(_OUTCOMES)}"
            ) from None
        rules.append(SandboxRule(suffix.strip(), state, reason))
    return tuple(sorted(rules, key=lambda rule: -len(rule.suffix)))


def outcome_for(rules: tuple[SandboxRule, ...], e164: str) -> tuple[State, Reason]:
    for rule in rules:
        if e164.endswith(rule.suffix):
            return rule.state, rule.reason
    return State.DELIVERED, Reason.NONE


DEFAULT_SANDBOX_RULES = parse_sandbox_rules(
    "000=absent,001=unknown,002=blacklisted,003=expired,004=rejected"
)
