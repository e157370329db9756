"""The console in a real browser: Debian's chromium, driven by Playwright
through its executable path (Playwright never downloads a browser here).

One gateway and one browser serve the whole module; each test opens its own
browser context (its own cookies). The pages the README shows are captured
as the tests pass through them: into docs/screenshots/ with
SMSGATE_UPDATE_SCREENSHOTS=1 (how the README's images are made), otherwise
into a temporary folder, so a test run leaves the checkout as it was. Without chromium or
Playwright these tests skip with the reason, except in CI, where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.conftest import fast_settings
from tests.console.support import new_login
from tests.support.server import GatewayServer, TestAccount

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = (
    Path(__file__).parents[2] / "docs" / "screenshots"
    if os.environ.get("SMSGATE_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "smsgate-console-screenshots"
)


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (./scripts/install-test-peers installs it as root)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is missing (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    problem = _missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; the console's browser tests are required in CI")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    database = tmp_path_factory.mktemp("console") / "console.sqlite3"
    running = GatewayServer(fast_settings(f"sqlite:///{database}")).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def account(server: GatewayServer) -> TestAccount:
    return server.create_account(name="shop", credit="50")


@pytest.fixture
def context(browser: Browser, server: GatewayServer) -> Iterator[BrowserContext]:
    opened = browser.new_context(base_url=server.base_url, viewport={"width": 1200, "height": 800})
    opened.set_default_timeout(10_000)
    try:
        yield opened
    finally:
        opened.close()


def log_in(context: BrowserContext, login: str, password: str) -> Page:
    page = context.new_page()
    page.goto("/console/")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/console/")
    return page


def operator(context: BrowserContext, server: GatewayServer) -> Page:
    return log_in(context, "ops", new_login(server, "ops"))


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def send_each_dialect(server: GatewayServer, account: TestAccount) -> dict[str, str]:
    """One message through each dialect's API; the number each went to, by dialect."""
    base = server.base_url
    numbers = {"advanta": "254712400111", "eapi": "254712400112", "telesign": "254712400113"}
    advanta = requests.post(
        f"{base}/api/services/sendsms/",
        json={
            **account.creds,
            "message": "Order 1 shipped",
            "shortcode": "SMSGATE",
            "mobile": numbers["advanta"],
        },
        timeout=10,
    )
    eapi = requests.get(
        f"{base}/eapi/submission/send_sms/2/2.0",
        params={**account.eapi_creds, "msisdn": numbers["eapi"], "message": "Order 2 shipped"},
        timeout=10,
    )
    telesign = requests.post(
        f"{base}/v1/verify/bulk_sms",
        auth=(account.customer_id, account.telesign_key),
        data={"recipients": numbers["telesign"], "template": "Order 3 shipped"},
        timeout=10,
    )
    replies: list[Any] = [advanta, eapi, telesign]
    assert all(reply.status_code < 300 for reply in replies), [r.text for r in replies]
    return numbers


def test_log_in_and_see_the_dashboard(context: BrowserContext, server: GatewayServer) -> None:
    page = operator(context, server)
    page.get_by_role("heading", name="Dashboard").wait_for()
    assert page.locator("svg.chart:not(.day) polyline").count() == 4
    assert page.locator("svg.chart.day polyline").count() == 1
    assert page.locator("[data-figure=queued]").inner_text().isdigit()


def test_messages_of_each_dialect_appear_with_their_final_state(
    context: BrowserContext, server: GatewayServer, account: TestAccount
) -> None:
    from playwright.sync_api import expect

    page = operator(context, server)
    page.goto(f"/console/messages?account={account.id}")
    # Sent after the page was opened: the list shows them without a reload.
    numbers = send_each_dialect(server, account)
    for dialect, number in numbers.items():
        row = page.locator("tr", has_text=f"+{number}")
        expect(row).to_contain_text(dialect)
        expect(row.locator("td.state")).to_have_text("delivered")
    screenshot(page, "messages")
    page.locator("tr", has_text=f"+{numbers['advanta']}").get_by_role("link").first.click()
    expect(page.locator("[data-state]")).to_have_text("delivered")
    expect(page.get_by_text("DELIVRD").first).to_be_visible()
    screenshot(page, "message")
    # The dashboard counts them, updating in place.
    page.goto("/console/")
    expect(page.locator("[data-series=delivered]")).to_have_text("3")
    expect(page.locator("[data-day-total]")).to_have_text("3")
    sandbox = page.locator("table.per-connection tr[data-connection=sandbox]")
    expect(sandbox).to_contain_text("100.0%")
    screenshot(page, "dashboard")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/console/messages?account={account.id}")
    screenshot(page, "messages-phone")


def test_a_sandbox_phone_replies_into_the_inbox(
    context: BrowserContext, server: GatewayServer, account: TestAccount
) -> None:
    from playwright.sync_api import expect

    base = server.base_url
    params = {
        **account.eapi_creds,
        "msisdn": "254712400010",
        "message": "Shall we deliver tomorrow?",
        "repliable": "1",
    }
    sent = requests.get(f"{base}/eapi/submission/send_sms/2/2.0", params=params, timeout=10)
    assert sent.text.startswith("0|"), sent.text
    page = operator(context, server)
    page.get_by_role("link", name="Sandbox phones").click()
    page.get_by_role("link", name="+254712400010").click()
    expect(page.get_by_text("Shall we deliver tomorrow?")).to_be_visible()
    page.get_by_label("Text").fill("Yes, after 10")
    page.get_by_role("button", name="Send from the handset").click()
    expect(page.locator("li.out .bubble", has_text="Yes, after 10")).to_be_visible()
    screenshot(page, "phone")
    inbox = requests.get(
        f"{base}/eapi/reception/get_inbox/1/1.1", params=account.eapi_creds, timeout=10
    ).text
    assert "Yes, after 10" in inbox and "254712400010" in inbox


def test_top_up_shows_the_ledger_line(
    context: BrowserContext, server: GatewayServer, account: TestAccount
) -> None:
    from playwright.sync_api import expect

    page = operator(context, server)
    page.get_by_role("link", name="Accounts").click()
    screenshot(page, "accounts")
    page.get_by_role("link", name="shop").click()
    before = server.call(server.rt.store.balance(account.id))
    page.get_by_label("Credits").fill("25.50")
    page.get_by_label("Note (kept in the ledger)").fill("bank transfer 8841")
    page.get_by_role("button", name="Record").click()
    line = page.locator("table.ledger tbody tr").first
    expect(line).to_contain_text("bank transfer 8841")
    expect(line).to_contain_text("25.50")
    assert server.call(server.rt.store.balance(account.id)) == before + 2550
    screenshot(page, "account")
    page.get_by_role("link", name="Batches").click()
    expect(page.locator("tr[data-batch]").first).to_be_visible()
    screenshot(page, "batches")


def test_an_account_user_cannot_open_another_accounts_message(
    context: BrowserContext, server: GatewayServer, account: TestAccount
) -> None:
    stranger = server.create_account(name="stranger")
    theirs = requests.post(
        f"{server.base_url}/api/services/sendsms/",
        json={
            **stranger.creds,
            "message": "private",
            "shortcode": "SMSGATE",
            "mobile": "0712400020",
        },
        timeout=10,
    ).json()["responses"][0]["messageid"]
    page = log_in(context, "shop-user", new_login(server, "shop-user", "shop"))
    response = page.goto(f"/console/messages/{theirs}")
    assert response is not None and response.status == 403
    assert "another account" in page.inner_text("main")
    assert page.get_by_role("link", name="Sandbox phones").count() == 0


def test_a_post_without_the_csrf_token_is_refused(
    context: BrowserContext, server: GatewayServer, account: TestAccount
) -> None:
    page = operator(context, server)
    before = server.call(server.rt.store.balance(account.id))
    # The browser's own session cookie goes along; only the token is missing.
    refused = page.request.post(
        f"/console/accounts/{account.id}/credit",
        form={"amount": "1000", "direction": "topup", "note": "forged"},
    )
    assert refused.status == 403
    assert server.call(server.rt.store.balance(account.id)) == before
