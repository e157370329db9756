"""Property: whatever a browser (or anything else) sends the console, search
fields, form fields or raw bodies, it answers a page (200), a correction
(400), a refusal (401, 403, 404, 429) or a redirect, never a 500, and a
forged form changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.console.support import new_login, signed_in
from tests.support.server import GatewayServer

ANSWERS = {200, 303, 400, 401, 403, 404, 429}

field_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "9" * 25, "2026-13-40T99:99", "2026-01-01T10:00", "+2547"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
search_names = st.sampled_from(
    ["account", "number", "batch", "state", "dialect", "since", "until", "before", "x"]
)
form_names = st.sampled_from(
    [
        "csrf",
        "amount",
        "direction",
        "note",
        "kind",
        "dlr_url",
        "mo_url",
        "name",
        "url",
        "text",
        "to",
    ]
)
paths = st.sampled_from(
    [
        "/console/accounts/{account}/credit",
        "/console/accounts/{account}/keys",
        "/console/accounts/{account}/urls",
        "/console/batches/1/cancel",
        "/console/connections",
        "/console/routes",
        "/console/phones/+254712345678/reply",
        "/console/login",
    ]
)


@pytest.fixture
def operator(sqlite_gateway: GatewayServer) -> tuple[requests.Session, str, int]:
    account = sqlite_gateway.create_account(credit="10")
    session, csrf = signed_in(sqlite_gateway, "ops", new_login(sqlite_gateway, "ops"))
    return session, csrf, account.id


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.dictionaries(search_names, field_values, max_size=5))
def test_any_search_is_answered(
    sqlite_gateway: GatewayServer, operator: tuple[requests.Session, str, int], query: Any
) -> None:
    session, _, _ = operator
    reply = session.get(f"{sqlite_gateway.base_url}/console/messages", params=query, timeout=10)
    assert reply.status_code in {200, 400}, reply.text[:500]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=paths,
    fields=st.dictionaries(form_names, field_values, max_size=6),
    raw=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_any_post_is_answered_and_a_forged_one_changes_nothing(
    sqlite_gateway: GatewayServer,
    operator: tuple[requests.Session, str, int],
    path: str,
    fields: dict[str, str],
    raw: bytes | None,
) -> None:
    session, _, account_id = operator
    url = sqlite_gateway.base_url + path.format(account=account_id)
    body: Any = raw if raw is not None else fields
    before = sqlite_gateway.call(sqlite_gateway.rt.store.balance(account_id))
    reply = session.post(url, data=body, timeout=10, allow_redirects=False)
    assert reply.status_code in ANSWERS, reply.text[:500]
    # No post here carries the session's token: nothing may change.
    assert sqlite_gateway.call(sqlite_gateway.rt.store.balance(account_id)) == before
    assert sqlite_gateway.call(sqlite_gateway.rt.store.connectors()) == []
