"""Mobile network identification by number prefix.

Customers of the partnerID/apikey dialect read a numeric ``networkid`` per
recipient (1 Safaricom, 2 Airtel, 3 Telkom in Kenya). A prefix table is exact
for the networks an operator configures and costs one dict probe per prefix
length, which matters on 30,000-number requests; number portability makes any
such table approximate, as it is at every provider.
"""

from __future__ import annotations

from collections.abc import Mapping

UNKNOWN_NETWORK = 0

DEFAULT_NETWORK_PREFIXES: Mapping[str, int] = {
    # Safaricom
    **{p: 1 for p in ("25470", "25471", "25472", "25479")},
    **{f"25474{d}": 1 for d in "0123568"},
    **{f"2547{p}": 1 for p in ("57", "58", "59", "68", "69")},
    **{f"25411{d}": 1 for d in "012345"},
    # Airtel
    **{p: 2 for p in ("25473", "25478", "254762")},
    **{f"25475{d}": 2 for d in "0123456"},
    **{f"25410{d}": 2 for d in "012"},
    # Telkom
    "25477": 3,
}


class NetworkTable:
    """Longest-prefix match from E.164 digits to a network id."""

    def __init__(self, prefixes: Mapping[str, int]) -> None:
        self._prefixes = dict(prefixes)
        self._lengths = sorted({len(p) for p in self._prefixes}, reverse=True)

    def lookup(self, e164: str) -> int:
        digits = e164.lstrip("+")
        for length in self._lengths:
            network = self._prefixes.get(digits[:length])
            if network is not None:
                return network
        return UNKNOWN_NETWORK
