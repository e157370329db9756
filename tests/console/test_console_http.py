"""The console over real HTTP: log-in and its limits, CSRF, who sees what,
message search and history, the ledger form, and the sandbox's phones."""

from __future__ import annotations

import re
from collections.abc import Iterator

import requests

from smsgate.core.states import State
from smsgate.store.records import ConnectionHealth
from tests.console.support import csrf_of, new_login, signed_in
from tests.support.server import GatewayServer, TestAccount


def send(server: GatewayServer, account: TestAccount, mobile: str, text: str) -> int:
    reply = requests.post(
        f"{server.base_url}/api/services/sendsms/",
        json={**account.creds, "message": text, "shortcode": "SMSGATE", "mobile": mobile},
        timeout=10,
    ).json()
    return int(reply["responses"][0]["messageid"])


def final(server: GatewayServer, message_id: int) -> None:
    def done() -> bool:
        row = server.call(server.rt.store.message_row(message_id))
        return row is not None and row.done_at is not None

    server.wait_until(done, what=f"message {message_id} final")


def test_pages_need_a_session_and_login_goes_back(gateway: GatewayServer) -> None:
    base = gateway.base_url
    reply = requests.get(f"{base}/console/messages?state=queued", timeout=10)
    assert reply.url.startswith(f"{base}/console/login?next=")
    password = new_login(gateway, "ops")
    session = requests.Session()
    form = session.get(reply.url, timeout=10).text
    assert 'value="/console/messages?state=queued"' in form
    signed = session.post(
        f"{base}/console/login",
        data={
            "csrf": csrf_of(form),
            "login": "ops",
            "password": password,
            "next": "/console/messages?state=queued",
        },
        timeout=10,
    )
    assert signed.url == f"{base}/console/messages?state=queued"
    cookie = signed.history[0].headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    # Logging out ends the session in the database, not just in the browser.
    token = session.cookies.get("smsgate_console", path="/console")
    session.post(f"{base}/console/logout", data={"csrf": csrf_of(signed.text)}, timeout=10)
    replayed = requests.get(f"{base}/console/", cookies={"smsgate_console": token}, timeout=10)
    assert "/console/login" in replayed.url


def test_wrong_passwords_lock_the_login(sqlite_gateway: GatewayServer) -> None:
    base = sqlite_gateway.base_url
    password = new_login(sqlite_gateway, "ops")
    session = requests.Session()
    csrf = csrf_of(session.get(f"{base}/console/login", timeout=10).text)

    def attempt(secret: str) -> requests.Response:
        return session.post(
            f"{base}/console/login",
            data={"csrf": csrf, "login": "ops", "password": secret},
            timeout=10,
            allow_redirects=False,
        )

    unknown = session.post(
        f"{base}/console/login",
        data={"csrf": csrf, "login": "nobody", "password": "x"},
        timeout=10,
    )
    assert unknown.status_code == 401 and "wrong login or password" in unknown.text
    for _ in range(sqlite_gateway.settings.console_login_attempts):
        assert attempt("wrong").status_code == 401
    locked = attempt(password)  # even the right password, while locked
    assert locked.status_code == 429 and "too many failed log-ins" in locked.text
    assert "smsgate_console=" not in locked.headers.get("set-cookie", "")


def test_posts_without_the_csrf_token_are_refused(sqlite_gateway: GatewayServer) -> None:
    base = sqlite_gateway.base_url
    account = sqlite_gateway.create_account(credit="10")
    session, _ = signed_in(sqlite_gateway, "ops", new_login(sqlite_gateway, "ops"))
    forged = session.post(
        f"{base}/console/accounts/{account.id}/credit",
        data={"amount": "500", "direction": "topup", "note": "forged"},
        timeout=10,
    )
    assert forged.status_code == 403 and "expired or did not come from the console" in forged.text
    wrong = session.post(
        f"{base}/console/accounts/{account.id}/credit",
        data={"csrf": "guess", "amount": "500", "note": "forged"},
        timeout=10,
    )
    assert wrong.status_code == 403
    assert sqlite_gateway.call(sqlite_gateway.rt.store.balance(account.id)) == 1000
    login = requests.post(f"{base}/console/login", data={"login": "ops", "password": "x"})
    assert login.status_code == 403


def test_top_up_needs_a_note_and_writes_the_ledger(gateway: GatewayServer) -> None:
    base = gateway.base_url
    account = gateway.create_account(credit="10")
    session, csrf = signed_in(gateway, "ops", new_login(gateway, "ops"))
    url = f"{base}/console/accounts/{account.id}/credit"
    no_note = session.post(url, data={"csrf": csrf, "amount": "5", "note": " "}, timeout=10)
    assert no_note.status_code == 400 and "a note is required" in no_note.text
    bad = session.post(url, data={"csrf": csrf, "amount": "5.001", "note": "x"}, timeout=10)
    assert bad.status_code == 400
    debit = session.post(
        url, data={"csrf": csrf, "amount": "2.50", "direction": "debit", "note": "refund"}
    )
    assert debit.status_code == 200 and "7.50 credits" in debit.text
    entries = gateway.call(gateway.rt.store.ledger_entries(account.id))
    assert [(e.kind, e.amount, e.note) for e in entries][-1] == ("debit", -250, "refund")


def test_account_users_see_only_their_account(gateway: GatewayServer) -> None:
    base = gateway.base_url
    mine = gateway.create_account(name="mine")
    theirs = gateway.create_account(name="theirs")
    own_id = send(gateway, mine, "254712000001", "mine")
    other_id = send(gateway, theirs, "254712000002", "theirs")
    final(gateway, own_id)
    session, csrf = signed_in(gateway, "mine-user", new_login(gateway, "mine-user", "mine"))
    assert session.get(f"{base}/console/messages/{own_id}", timeout=10).status_code == 200
    # Another account's message and a message that does not exist answer alike.
    assert session.get(f"{base}/console/messages/{other_id}", timeout=10).status_code == 403
    assert session.get(f"{base}/console/messages/999999", timeout=10).status_code == 403
    listed = session.get(f"{base}/console/messages?account={theirs.id}", timeout=10).text
    assert f'data-message="{own_id}"' in listed and f'data-message="{other_id}"' not in listed
    assert session.get(f"{base}/console/accounts/{theirs.id}", timeout=10).status_code == 403
    assert session.get(f"{base}/console/phones", timeout=10).status_code == 403
    topup = session.post(
        f"{base}/console/accounts/{mine.id}/credit",
        data={"csrf": csrf, "amount": "100", "note": "self-service"},
        timeout=10,
    )
    assert topup.status_code == 403


def test_message_search_pages_and_history(gateway: GatewayServer) -> None:
    base = gateway.base_url
    account = gateway.create_account(credit="200")
    ids = [send(gateway, account, f"2547120001{i:02d}", f"hello {i}") for i in range(55)]
    for message_id in (ids[0], ids[-1]):
        final(gateway, message_id)
    session, _ = signed_in(gateway, "ops", new_login(gateway, "ops"))
    first = session.get(f"{base}/console/messages?account={account.id}", timeout=10).text
    shown = [int(i) for i in re.findall(r'data-message="(\d+)"', first)]
    assert shown == sorted(ids, reverse=True)[:50]
    older = re.search(r'href="(/console/messages\?[^"]+before=\d+)"', first)
    assert older, first
    rest = session.get(base + older.group(1).replace("&amp;", "&"), timeout=10).text
    assert [int(i) for i in re.findall(r'data-message="(\d+)"', rest)] == sorted(ids)[:5][::-1]
    by_number = session.get(f"{base}/console/messages?number=254712000107", timeout=10).text
    assert re.findall(r'data-message="(\d+)"', by_number) == [str(ids[7])]
    none = session.get(f"{base}/console/messages?dialect=eapi", timeout=10).text
    assert "No messages match." in none
    bad = session.get(f"{base}/console/messages?batch=abc", timeout=10)
    assert bad.status_code == 400 and "batch must be a whole number" in bad.text
    history = session.get(f"{base}/console/messages/{ids[0]}", timeout=10).text
    row = gateway.call(gateway.rt.store.message_row(ids[0]))
    assert row is not None and row.state == State.DELIVERED
    assert row.carrier_ref and row.carrier_ref in history
    assert "DELIVRD" in history and "hello 0" in history
    # One timeline, in the order the message lived it.
    timeline = history[history.index("data-timeline") :]
    steps = re.findall(r"<tr><td>[^<]*</td><td>([^<]+)</td>", timeline)
    assert steps[:5] == ["accepted", "claimed", "submitted", "receipt", "final"], steps
    [claim] = gateway.call(gateway.rt.store.message_history(ids[0])).claims
    assert f"attempt 1 by {claim.owner}" in timeline
    # The request that brought it in, without its key.
    assert "data-request" in history and "sendsms" in history and "254712000100" in history
    assert account.apikey not in history and "[redacted]" in history


def test_a_reply_from_a_sandbox_phone_reaches_the_inbox(sqlite_gateway: GatewayServer) -> None:
    base = sqlite_gateway.base_url
    account = sqlite_gateway.create_account()
    params = {
        **account.eapi_creds,
        "msisdn": "254712000300",
        "message": "Yes or no?",
        "repliable": "1",
    }
    sent = requests.get(f"{base}/eapi/submission/send_sms/2/2.0", params=params, timeout=10)
    message_id = int(sent.text.split("|")[2])
    final(sqlite_gateway, message_id)
    session, csrf = signed_in(sqlite_gateway, "ops", new_login(sqlite_gateway, "ops"))
    phones = session.get(f"{base}/console/phones", timeout=10).text
    assert "+254712000300" in phones
    phone = session.get(f"{base}/console/phones/+254712000300", timeout=10).text
    assert "Yes or no?" in phone
    answered = session.post(
        f"{base}/console/phones/+254712000300/reply",
        data={"csrf": csrf, "to": sqlite_gateway.settings.reply_numbers[0], "text": "Yes please"},
        timeout=10,
    )
    assert answered.status_code == 200 and "Yes please" in answered.text
    inbox = requests.get(
        f"{base}/eapi/reception/get_inbox/1/1.1", params=account.eapi_creds, timeout=10
    ).text
    assert "Yes please" in inbox and "254712000300" in inbox


def test_a_scheduled_batch_is_cancelled_and_refunded(gateway: GatewayServer) -> None:
    base = gateway.base_url
    account = gateway.create_account(name="sched", credit="10")
    stranger = gateway.create_account(name="stranger")
    reply = requests.post(
        f"{base}/api/services/sendsms/",
        json={
            **account.creds,
            "message": "tomorrow",
            "shortcode": "SMSGATE",
            "mobile": "254712000501,254712000502",
            "timeToSend": str(int(gateway.rt.store.clock() / 1000) + 86_400),
        },
        timeout=10,
    ).json()
    message_id = int(reply["responses"][0]["messageid"])
    row = gateway.call(gateway.rt.store.message_row(message_id))
    assert row is not None and row.state == State.SCHEDULED
    batch = row.batch_id
    assert gateway.call(gateway.rt.store.balance(account.id)) == 800

    outsider, outsider_csrf = signed_in(
        gateway, "stranger-user", new_login(gateway, "stranger-user", "stranger")
    )
    assert outsider.get(f"{base}/console/batches/{batch}", timeout=10).status_code == 403
    refused = outsider.post(
        f"{base}/console/batches/{batch}/cancel", data={"csrf": outsider_csrf}, timeout=10
    )
    assert refused.status_code == 403
    assert f'data-batch="{batch}"' not in outsider.get(f"{base}/console/batches").text
    assert stranger.id != account.id

    owner, csrf = signed_in(gateway, "sched-user", new_login(gateway, "sched-user", "sched"))
    page = owner.get(f"{base}/console/batches/{batch}", timeout=10).text
    assert 'data-progress="scheduled">2<' in page
    done = owner.post(f"{base}/console/batches/{batch}/cancel", data={"csrf": csrf}, timeout=10)
    assert done.status_code == 200
    assert "cancelled 2 messages, refunded 2.00 credits" in done.text
    assert 'data-progress="cancelled">2<' in done.text
    assert gateway.call(gateway.rt.store.balance(account.id)) == 1000


def test_operators_add_and_remove_connections_and_routes(sqlite_gateway: GatewayServer) -> None:
    base = sqlite_gateway.base_url
    session, csrf = signed_in(sqlite_gateway, "ops", new_login(sqlite_gateway, "ops"))

    def post(path: str, **fields: str) -> requests.Response:
        return session.post(f"{base}/console{path}", data={"csrf": csrf, **fields}, timeout=10)

    bad = post("/connections", name="smsc1", url="smpp://u:p@127.0.0.1:2775?window=abc")
    assert bad.status_code == 400 and "window=&#39;abc&#39; is not a whole number" in bad.text
    saved = post("/connections", name="smsc1", url="smpp://acme:s3cret@127.0.0.1:2775?window=7")
    assert saved.status_code == 200 and "connection smsc1 saved" in saved.text
    assert "s3cret" not in saved.text and 'data-connection="smsc1"' in saved.text
    unknown = post("/routes", prefix="2547", connector="nowhere")
    assert unknown.status_code == 400
    assert post("/routes", prefix="2547", connector="smsc1", price="x").status_code == 400
    added = post("/routes", prefix="2547", connector="smsc1", priority="5", price="0.80")
    assert added.status_code == 200 and "0.80" in added.text
    (route,) = sqlite_gateway.call(sqlite_gateway.rt.store.routes())
    assert (route.prefix, route.connector, route.priority, route.price) == ("2547", "smsc1", 5, 80)
    assert post(f"/routes/{route.id}/remove").status_code == 200
    assert sqlite_gateway.call(sqlite_gateway.rt.store.routes()) == []
    assert post("/connections/smsc1/remove").status_code == 200
    assert sqlite_gateway.call(sqlite_gateway.rt.store.connectors()) == []
    upstream = post(
        "/connections", name="up1", url="advanta+https://123456:k3y@provider.example/api/services"
    )
    assert upstream.status_code == 200 and "have the provider push reports" in upstream.text
    assert "k3y" not in upstream.text and "https://provider.example/api/services" in upstream.text
    (row,) = sqlite_gateway.call(sqlite_gateway.rt.store.connectors())
    assert (row.name, row.kind) == ("up1", "http")
    # As a worker reports it once the provider said what credit we have there.
    report = ConnectionHealth("up1", "bound", 0, None, None, 4, 0, 0, 0, 0.0, balance=123_45)
    sqlite_gateway.call(sqlite_gateway.rt.store.report_health("worker-x", [report]))
    page = session.get(f"{base}/console/connections", timeout=10).text
    assert "balance 123.45" in page
    assert post("/connections", name="up2", url="nonsense+https://x").status_code == 400
    assert post("/connections/up1/remove").status_code == 200

    sqlite_gateway.create_account(name="shop")
    user, user_csrf = signed_in(
        sqlite_gateway, "shop-user", new_login(sqlite_gateway, "shop-user", "shop")
    )
    assert user.get(f"{base}/console/connections", timeout=10).status_code == 403
    forbidden = user.post(
        f"{base}/console/connections",
        data={"csrf": user_csrf, "name": "x", "url": "smpp://a:b@127.0.0.1:2775"},
        timeout=10,
    )
    assert forbidden.status_code == 403
    assert sqlite_gateway.call(sqlite_gateway.rt.store.connectors()) == []


def test_an_account_user_rotates_a_key_and_sets_its_urls(sqlite_gateway: GatewayServer) -> None:
    base = sqlite_gateway.base_url
    account = sqlite_gateway.create_account(name="shop")
    other = sqlite_gateway.create_account(name="other")
    session, csrf = signed_in(
        sqlite_gateway, "shop-user", new_login(sqlite_gateway, "shop-user", "shop")
    )
    page = f"{base}/console/accounts/{account.id}"
    rotated = session.post(f"{page}/keys", data={"csrf": csrf, "kind": "partner"}, timeout=10)
    assert rotated.status_code == 200 and "shown once" in rotated.text
    apikey = re.search(r"<code data-secret>([0-9a-f]{32})</code>", rotated.text)
    assert apikey and apikey.group(1) != account.apikey
    # The new key sends, the old one is refused; the secret is not on the page again.
    sms = {"message": "hi", "shortcode": "SMSGATE", "mobile": "0712345678"}

    def send_with(key: str) -> dict[str, object]:
        reply = requests.post(
            f"{base}/api/services/sendsms/",
            json={"partnerID": account.partner_id, "apikey": key, **sms},
            timeout=10,
        )
        return dict(reply.json())

    sqlite_gateway.wait_until(
        lambda: "responses" in send_with(apikey.group(1)), what="the new key works"
    )
    sqlite_gateway.wait_until(
        lambda: "responses" not in send_with(account.apikey), what="the old key stops"
    )
    assert apikey.group(1) not in session.get(page, timeout=10).text

    bad = session.post(f"{page}/urls", data={"csrf": csrf, "dlr_url": "ftp://x"}, timeout=10)
    assert bad.status_code == 400
    saved = session.post(
        f"{page}/urls",
        data={
            "csrf": csrf,
            "dlr_url": "https://shop.example/dlr",
            "mo_url": "https://shop.example/mo",
        },
        timeout=10,
    )
    assert saved.status_code == 200 and "callback URLs saved" in saved.text
    stored = sqlite_gateway.call(sqlite_gateway.rt.store.account(account.id))
    assert stored is not None and stored.dlr_callback_url == "https://shop.example/dlr"
    assert stored.options["mo_callback_url"] == "https://shop.example/mo"
    elsewhere = session.post(
        f"{base}/console/accounts/{other.id}/keys", data={"csrf": csrf, "kind": "eapi"}, timeout=10
    )
    assert elsewhere.status_code == 403


def test_operators_create_and_suspend_accounts(sqlite_gateway: GatewayServer) -> None:
    base = sqlite_gateway.base_url
    session, csrf = signed_in(sqlite_gateway, "ops", new_login(sqlite_gateway, "ops"))
    bad = session.post(
        f"{base}/console/accounts",
        data={"csrf": csrf, "name": "new shop", "senders": "SHOP"},
        timeout=10,
    )
    assert bad.status_code == 400 and "a name is" in bad.text
    long_sender = session.post(
        f"{base}/console/accounts",
        data={"csrf": csrf, "name": "newshop", "senders": "WAYTOOLONGSENDER"},
        timeout=10,
    )
    assert long_sender.status_code == 400
    made = session.post(
        f"{base}/console/accounts",
        data={"csrf": csrf, "name": "newshop", "senders": "SHOP, 22555"},
        timeout=10,
    )
    assert made.status_code == 200 and "Account newshop" in made.text
    account = sqlite_gateway.call(sqlite_gateway.rt.store.account_by_name("newshop"))
    assert account is not None and account.senders == ("SHOP", "22555")
    again = session.post(
        f"{base}/console/accounts", data={"csrf": csrf, "name": "newshop"}, timeout=10
    )
    assert again.status_code == 400 and "exists already" in again.text
    suspended = session.post(
        f"{base}/console/accounts/{account.id}/status",
        data={"csrf": csrf, "status": "suspended"},
        timeout=10,
    )
    assert suspended.status_code == 200 and "account suspended" in suspended.text
    stored = sqlite_gateway.call(sqlite_gateway.rt.store.account(account.id))
    assert stored is not None and stored.status.value == "suspended"
    # A live part that does not exist gets the page, never an error.
    odd = session.get(f"{base}/console/", headers={"x-console-part": "../base"}, timeout=10)
    assert odd.status_code == 200 and "<html" in odd.text


def test_operators_change_an_accounts_settings_and_options(gateway: GatewayServer) -> None:
    base = gateway.base_url
    account = gateway.create_account(
        name="opts", options={"mo_callback_url": "https://opts.example/mo"}
    )
    session, csrf = signed_in(gateway, "ops", new_login(gateway, "ops"))
    url = f"{base}/console/accounts/{account.id}/settings"
    fields = {"csrf": csrf, "senders": "OPTS 22555", "countries": "254 256", "timezone": "UTC"}
    bad_quota = session.post(url, data={**fields, "option_daily_quota": "-3"}, timeout=10)
    assert bad_quota.status_code == 400 and "daily quota" in bad_quota.text
    bad_zone = session.post(url, data={**fields, "timezone": "Mars/Base"}, timeout=10)
    assert bad_zone.status_code == 400
    bad_country = session.post(url, data={**fields, "countries": "999"}, timeout=10)
    assert bad_country.status_code == 400
    unchanged = gateway.call(gateway.rt.store.account(account.id))
    assert unchanged is not None and unchanged.senders == ("SMSGATE",)
    saved = session.post(
        url,
        data={**fields, "option_daily_quota": "500", "option_repliable": "yes"},
        timeout=10,
    )
    assert saved.status_code == 200 and "settings saved" in saved.text
    stored = gateway.call(gateway.rt.store.account(account.id))
    assert stored is not None
    assert stored.senders == ("OPTS", "22555") and stored.allowed_country_codes == (254, 256)
    assert stored.timezone == "UTC"
    assert stored.options == {
        "daily_quota": 500,
        "repliable": True,
        "mo_callback_url": "https://opts.example/mo",
    }
    # An emptied field unsets its option.
    session.post(url, data={**fields, "option_daily_quota": "500"}, timeout=10)
    stored = gateway.call(gateway.rt.store.account(account.id))
    assert stored is not None and "repliable" not in stored.options
    user, user_csrf = signed_in(gateway, "opts-user", new_login(gateway, "opts-user", "opts"))
    refused = user.post(url, data={**fields, "csrf": user_csrf}, timeout=10)
    assert refused.status_code == 403


def test_live_parts_arrive_as_server_sent_events(sqlite_gateway: GatewayServer) -> None:
    """The stream a page's script opens sends its part at once, then again
    when it changes: here a message sent after the page was opened."""
    base = sqlite_gateway.base_url
    account = sqlite_gateway.create_account(credit="20")
    session, _ = signed_in(sqlite_gateway, "ops", new_login(sqlite_gateway, "ops"))
    with session.get(
        f"{base}/console/messages?account={account.id}&live_part=message_rows",
        headers={"accept": "text/event-stream"},
        stream=True,
        timeout=10,
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = _events(stream)
        assert "data-message=" not in next(events)  # nothing sent yet
        message_id = send(sqlite_gateway, account, "254712000101", "live")
        for event in events:
            if f'data-message="{message_id}"' in event:
                break
    # Without a session there is no stream, only the way to log in.
    anonymous = requests.get(
        f"{base}/console/messages?live_part=message_rows",
        headers={"accept": "text/event-stream"},
        allow_redirects=False,
        timeout=10,
    )
    assert anonymous.status_code == 303


def _events(stream: requests.Response) -> Iterator[str]:
    """Each event's data (its ``data:`` lines joined), as the browser sees it."""
    lines: list[str] = []
    for raw in stream.iter_lines(decode_unicode=True):
        if raw.startswith("data: "):
            lines.append(raw[6:])
        elif raw == "" and lines:
            yield "\n".join(lines)
            lines = []
