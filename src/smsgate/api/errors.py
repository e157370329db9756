"""Telling "try again later" failures apart from bugs.

When the database is unreachable, locked past its timeout or out of
connections, the right answer is each dialect's retry-later code (the work is
fine, the moment is not); anything else is a defect and is logged as one.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError


def is_transient_storage_error(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | PoolTimeoutError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
