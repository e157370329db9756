"""Signing in to the console over HTTP, as a browser without JavaScript would."""

from __future__ import annotations

import re

import requests

from smsgate.commands.operators import put_login
from tests.support.server import GatewayServer

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html
    return found.group(1)


def new_login(server: GatewayServer, login: str, account: str | None = None) -> str:
    """Create a console login the way ``smsgate operators create`` does; its password."""
    _, password = server.call(put_login(server.rt.store, login, account))
    return password


def signed_in(server: GatewayServer, login: str, password: str) -> tuple[requests.Session, str]:
    """A session signed in as ``login`` and the CSRF token its forms carry."""
    session = requests.Session()
    form = session.get(f"{server.base_url}/console/login", timeout=10)
    reply = session.post(
        f"{server.base_url}/console/login",
        data={"csrf": csrf_of(form.text), "login": login, "password": password},
        timeout=10,
    )
    assert reply.status_code == 200 and reply.url.endswith("/console/"), reply.text
    return session, csrf_of(reply.text)
