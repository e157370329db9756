"""Group commit: small writes that arrive together share one transaction.

Each accepted request must be durable before its reply, and a commit costs
a log flush plus, on SQLite, a thread hop per statement that takes longer
than the statement itself. Under many concurrent single-message requests,
committing each alone makes those the ceiling. Instead, the jobs that queue
up while one transaction runs go together into the next one, which a
``run_group`` function writes with a handful of statements for the whole
group, answering each job with its own result or its own exception (one
job's missing credit refuses only that job). Every caller gets its answer
once the shared commit has returned, never before.

One job must never fail its neighbours: if a statement of the shared
transaction fails (a row one job brought that the database refuses), the
transaction is rolled back and each job is run again alone, in a
transaction of its own, so only the job at fault gets the failure. A failed
COMMIT is not retried, since it may have stood (a connection lost while
committing): all of its jobs get that failure, as a lone job would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

Job = TypeVar("Job")
Result = TypeVar("Result")
GroupRunner = Callable[[AsyncConnection, Sequence[Job]], Awaitable[list[Result | Exception]]]


class GroupCommit(Generic[Job, Result]):
    def __init__(
        self,
        begin: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        run_group: GroupRunner[Job, Result],
        *,
        max_group: int = 512,
    ) -> None:
        self._begin = begin
        self._run_group = run_group
        self._max_group = max_group
        self._waiting: list[tuple[Job, asyncio.Future[Result]]] = []
        self._leader: asyncio.Task[None] | None = None
        self.largest_group = 0
        self.retried_alone = 0  # jobs run again on their own after a shared failure

    async def run(self, job: Job) -> Result:
        """``job``'s result once the transaction it went into has committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, future))
        if self._leader is None or self._leader.done():
            self._leader = asyncio.create_task(self._lead(), name="group-commit")
        return await future

    async def _lead(self) -> None:
        while self._waiting:
            group = self._waiting[: self._max_group]
            del self._waiting[: self._max_group]
            self.largest_group = max(self.largest_group, len(group))
            jobs = [job for job, _ in group]
            results, rolled_back = await self._commit(jobs)
            if rolled_back and len(jobs) > 1:
                log.warning(
                    "a shared transaction of %d jobs failed (%s); each runs again alone",
                    len(jobs),
                    type(results[0]).__name__,
                )
                self.retried_alone += len(jobs)
                results = [(await self._commit([job]))[0][0] for job in jobs]
            for (_, future), result in zip(group, results, strict=True):
                if future.done():
                    continue  # its caller went away; what it wrote is committed all the same
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _commit(self, jobs: list[Job]) -> tuple[list[Result | Exception], bool]:
        """The jobs' results in one transaction, and whether it was rolled back
        because a statement failed (nothing of it stands, so it may be retried)."""
        failed_inside = False
        try:
            async with self._begin() as conn:
                try:
                    return await self._run_group(conn, jobs), False
                except Exception:
                    failed_inside = True
                    raise
        except Exception as exc:  # the transaction failed: none of it stands
            return [exc] * len(jobs), failed_inside
