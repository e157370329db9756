"""What a viewer may see, and in which time zone.

An account user is refused anything outside their account with 403, whether
or not it exists, so ids reveal nothing; operators see everything.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from smsgate.console.auth import Viewer
from smsgate.store.repo import Store

UTC_ZONE = ZoneInfo("UTC")


class Refused(Exception):
    """A request this viewer may not make; answered with ``status`` and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def require_own(viewer: Viewer, account_id: int | None) -> None:
    """Refuse an account user anything outside their account."""
    if viewer.user.account_id is not None and account_id != viewer.user.account_id:
        raise Refused(403, "this belongs to another account")


async def zone_of(store: Store, viewer: Viewer | None) -> ZoneInfo:
    """Account users read times in their account's zone, operators in UTC."""
    if viewer is None or viewer.user.account_id is None:
        return UTC_ZONE
    account = await store.account(viewer.user.account_id)
    try:
        return ZoneInfo(account.timezone) if account else UTC_ZONE
    except (ValueError, KeyError):
        return UTC_ZONE
