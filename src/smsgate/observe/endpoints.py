"""``/healthz``, ``/readyz`` and ``/metrics``: what a load balancer, an
orchestrator and Prometheus ask every process, API or worker.

``/healthz`` says only that the process answers (a liveness probe must not
fail because the database is down, or the orchestrator would restart every
process at once). ``/readyz`` says whether the cluster can do its job: the
database answers, its schema is the one this code expects, and some worker
polled the queue recently (``SMSGATE_HEARTBEAT_SECONDS``).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smsgate.config import Settings
from smsgate.observe.metrics import render
from smsgate.store.migrate import current_revision, head_revision
from smsgate.store.repo import Store

log = logging.getLogger(__name__)

# A worker whose last queue poll is older than this many heartbeats is not claiming.
STALE_HEARTBEATS = 3


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def readiness(store: Store, heartbeat_seconds: float) -> dict[str, Any]:
    """Each check's verdict, and ``ready`` when all pass."""
    checks: dict[str, Any] = {}
    try:
        revision = await current_revision(store.engines)
    except Exception as exc:
        return {"ready": False, "database": f"unreachable: {type(exc).__name__}: {exc}"}
    checks["database"] = "ok"
    head = head_revision()
    checks["migrations"] = "ok" if revision == head else f"at {revision}, code expects {head}"
    since = store.clock() - int(heartbeat_seconds * STALE_HEARTBEATS * 1000)
    claiming = await store.claiming_workers(since)
    checks["workers"] = claiming or "no worker polled the queue recently"
    checks["ready"] = checks["migrations"] == "ok" and bool(claiming)
    return checks


def observe_routes(store: Store, settings: Settings) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = await readiness(store, settings.heartbeat_seconds)
        return _json(checks, 200 if checks["ready"] else 503)

    async def metrics(request: Request) -> Response:
        if settings.metrics_token:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {settings.metrics_token}".encode()):
                return Response(
                    "metrics need 'Authorization: Bearer <SMSGATE_METRICS_TOKEN>'\n",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        try:
            snapshot = await store.cluster_snapshot(account_limit=settings.metrics_max_accounts)
        except Exception as exc:
            log.warning("metrics: cannot read the cluster's state: %s", exc)
            snapshot = None
        return Response(render(snapshot), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
