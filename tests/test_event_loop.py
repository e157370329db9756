"""The long-running roles run on uvloop where it is installed (it is, with
uvicorn[standard], on every platform CI runs)."""

from __future__ import annotations

import asyncio

import pytest

from smsgate.event_loop import run_service


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_a_service_runs_on_uvloop() -> None:
    pytest.importorskip("uvloop", reason="uvloop does not build on this platform")
    assert run_service(loop_module()).startswith("uvloop")
