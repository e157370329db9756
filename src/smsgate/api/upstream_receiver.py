"""The route upstream HTTP providers push delivery reports and replies to.

Each upstream connection has its own secret path (``connectors list`` shows
it), which the operator sets as the callback URL of the account at the
provider. A push is stored, matched or not, before it is answered 200, so a
provider that retries until it gets a 200 loses nothing; an unknown path is
404 and an unreadable push 400, so the provider sees its mistake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from smsgate.delivery.connectors.http import dialect_client
from smsgate.delivery.connectors.http_settings import HttpSettings
from smsgate.delivery.connectors.receiver_paths import RECEIVER_PATH, receiver_secret
from smsgate.delivery.connectors.upstream import DialectClient, Push, PushError
from smsgate.secret_box import SecretBox
from smsgate.store.records import InboundMessage, Receipt
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

MAX_PUSH_BYTES = 64 * 1024
_REFRESH_SECONDS = 5.0
_VALIDITY_MS = 7 * 24 * 3_600_000
"""A pushed receipt matches a message submitted within the last week."""


class UpstreamReceiver:
    def __init__(self, store: Store, secrets: SecretBox) -> None:
        self._store = store
        self._secrets = secrets
        self._by_secret: dict[str, tuple[str, DialectClient]] = {}
        self._loaded_at = -_REFRESH_SECONDS
        self._loading = asyncio.Lock()

    def routes(self) -> list[Route]:
        return [Route(f"{RECEIVER_PATH}/{{secret}}", self._push, methods=["GET", "POST"])]

    async def _push(self, request: Request) -> Response:
        connection = await self._connection(request.path_params["secret"])
        if connection is None:
            return PlainTextResponse("not found", status_code=404)
        name, client = connection
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_PUSH_BYTES:
                return PlainTextResponse("push too large", status_code=413)
        now = self._store.clock()
        try:
            push = Push(bytes(body), dict(request.query_params), dict(request.headers))
            items = client.read_push(name, push, now)
        except PushError as exc:
            log.info("unreadable push from upstream %s: %s", name, exc)
            return PlainTextResponse(str(exc), status_code=400)
        receipts = [
            replace(r, match_since=now - _VALIDITY_MS) for r in items if isinstance(r, Receipt)
        ]
        inbound = [m for m in items if isinstance(m, InboundMessage)]
        if receipts or inbound:
            await self._store.record_delivery(f"receiver:{name}", [], {}, receipts, inbound)
        return PlainTextResponse("ok")

    async def _connection(self, secret: str) -> tuple[str, DialectClient] | None:
        """The upstream connection whose secret path this is; the stored
        connections are read again every few seconds (once, however many
        pushes are waiting), so one added with ``connectors add`` is reachable
        without a restart."""
        async with self._loading:
            stale = time.monotonic() - self._loaded_at > _REFRESH_SECONDS
            if secret not in self._by_secret and stale:
                self._by_secret = await self._load()
                self._loaded_at = time.monotonic()
        return self._by_secret.get(secret)

    async def _load(self) -> dict[str, tuple[str, DialectClient]]:
        found: dict[str, tuple[str, DialectClient]] = {}
        for row in await self._store.connectors():
            if row.kind == "http":
                settings = HttpSettings.from_url(self._secrets.decrypt(row.sealed_url))
                found[receiver_secret(self._secrets, row.name)] = (
                    row.name,
                    dialect_client(settings),
                )
        return found
