"""What a claimed message becomes on the wire to the carrier."""

from __future__ import annotations

from smsgate.smpp.smpp_time import parse_smpp_time
from smsgate.smpp.wire import submit_bodies
from tests.smpp.test_connector import outbound


def test_an_expiry_travels_as_the_validity_period_of_every_part() -> None:
    expires = 1_780_000_123_400
    bodies = submit_bodies(outbound(7, "+254712345678", "x" * 200, expires_at=expires), reference=9)
    assert len(bodies) == 2
    for body in bodies:
        assert parse_smpp_time(body.validity_period, 0) == expires
    [plain] = submit_bodies(outbound(8, "+254712345678", "hello"), reference=10)
    assert plain.validity_period == ""
