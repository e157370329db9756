"""/metrics, /readyz and /healthz of a running gateway, on both engines."""

from __future__ import annotations

from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import fast_settings
from tests.support.receiver import CallbackReceiver
from tests.support.server import GatewayServer

from smsgate.observe.endpoints import readiness


def scrape(base: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(base + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_what_was_committed(gateway: GatewayServer) -> None:
    with CallbackReceiver(fail_first=1) as receiver:
        account = gateway.create_account(callback_url=receiver.url, credit="50")
        before = scrape(gateway.base_url)
        reply = requests.post(
            gateway.base_url + "/api/services/sendsms",
            json={
                **account.creds,
                "message": "hi",
                "shortcode": "SMSGATE",
                "mobile": "254712345678,254712345004,12",
            },
        ).json()
        assert [r["response-code"] for r in reply["responses"]] == [200, 200, 1003]
        refused = requests.post(
            gateway.base_url + "/api/services/sendsms", json={**account.creds, "mobile": "1"}
        ).json()
        assert refused["response-code"] == 1001
        receiver.wait_for(3, timeout=20)  # two reports, the first one answered 500 once

        def settled() -> bool:
            now = scrape(gateway.base_url)
            return (
                value(
                    now,
                    "smsgate_callback_attempts_total",
                    dialect="advanta",
                    kind="dlr",
                    outcome="delivered",
                )
                - value(
                    before,
                    "smsgate_callback_attempts_total",
                    dialect="advanta",
                    kind="dlr",
                    outcome="delivered",
                )
                == 2
            )

        gateway.wait_until(settled, 20, "both callbacks counted")
        after = scrape(gateway.base_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("smsgate_messages_accepted_total", dialect="advanta") == 2
    assert delta("smsgate_messages_refused_total", dialect="advanta", code="invalid_number") == 1
    assert delta("smsgate_requests_refused_total", dialect="advanta", code="1001") == 1
    assert delta("smsgate_messages_submitted_total", connector="sandbox") == 1
    assert (
        delta("smsgate_messages_final_total", connector="sandbox", state="delivered", reason="none")
        == 1
    )
    assert (
        delta(
            "smsgate_messages_final_total",
            connector="none",
            state="rejected",
            reason="carrier_rejected",
        )
        + delta(
            "smsgate_messages_final_total",
            connector="sandbox",
            state="rejected",
            reason="carrier_rejected",
        )
        == 1
    )
    assert delta("smsgate_accept_seconds_count", dialect="advanta") == 1
    assert delta("smsgate_submit_to_receipt_seconds_count", connector="sandbox") == 1
    assert (
        delta("smsgate_callback_attempts_total", dialect="advanta", kind="dlr", outcome="retry")
        == 1
    )
    name = f"acct-{account.partner_id}"
    assert delta("smsgate_credits_charged_total", account=name) == 2
    assert delta("smsgate_credits_refunded_total", account=name) == 1
    assert value(after, "smsgate_account_balance_credits", account=name) == 49
    assert value(after, "smsgate_queue_messages", state="queued") == 0
    assert value(after, "smsgate_callbacks_pending", when="all") == 0
    assert value(after, "smsgate_database_up") == 1


def test_scheduled_and_due_messages_show_in_the_queue_gauges(tmp_path: Path) -> None:
    settings = fast_settings(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    server = GatewayServer(settings, workers=False).start()  # nobody dispatches
    try:
        account = server.create_account()
        for when in ("", "2099-01-01 09:00"):
            payload = {
                **account.creds,
                "message": "x",
                "shortcode": "SMSGATE",
                "mobile": "0712345678",
            }
            if when:
                payload["timeToSend"] = when
            requests.post(server.base_url + "/api/services/sendsms", json=payload)
        samples = scrape(server.base_url)
        assert value(samples, "smsgate_queue_messages", state="queued") == 1
        assert value(samples, "smsgate_queue_due_messages") == 1
        assert value(samples, "smsgate_queue_oldest_due_age_seconds") >= 0
        ready = requests.get(server.base_url + "/readyz")
        assert ready.status_code == 503 and "no worker" in ready.json()["workers"]
        assert requests.get(server.base_url + "/healthz").json() == {"status": "ok"}
    finally:
        server.stop()


def test_metrics_token_and_readiness(tmp_path: Path) -> None:
    settings = fast_settings(
        f"sqlite:///{tmp_path / 't.sqlite3'}", metrics_token="s3cret", heartbeat_seconds=0.2
    )
    server = GatewayServer(settings).start()
    try:
        assert requests.get(server.base_url + "/metrics").status_code == 401
        wrong = requests.get(server.base_url + "/metrics", headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401
        assert scrape(server.base_url, Authorization="Bearer s3cret")
        server.wait_until(
            lambda: requests.get(server.base_url + "/readyz").status_code == 200, 10, "ready"
        )
        checks = server.call(readiness(server.rt.store, 0.2))
        assert checks["database"] == "ok" and checks["migrations"] == "ok"
        assert checks["workers"] == [settings.worker_id]
    finally:
        server.stop()
