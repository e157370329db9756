"""Group commit: small writes that arrive together share one transaction.

Each accepted request must be durable before its reply, and a commit costs
a log flush plus, on SQLite, a thread hop per statement that takes longer
than the statement itself. Under many concurrent single-message requests,
committing each alone makes those the ceiling. Instead, the jobs that queue
up while one transaction runs go together into the next one, which a
``run_group`` function writes with a handful of statements for the whole
group, answering each job with its own result or its own exception (one
job's missing credit refuses only that job). Every caller gets its answer
once the shared commit has returned, never before; if the commit fails, all
of them get that failure and none of their writes stands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

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
            try:
                async with self._begin() as conn:
                    results = await self._run_group(conn, [job for job, _ in group])
            except Exception as exc:  # the transaction itself failed: none of it stands
                results = [exc] * len(group)
            for (_, future), result in zip(group, results, strict=True):
                if future.done():
                    continue  # its caller went away; what it wrote is committed all the same
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
