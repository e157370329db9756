"""``smsgate demo``: a demo account with credentials for every dialect, and a server.

Running it again keeps the account's credentials (sealed in the database
with the installation key, so they can be printed again) and resets its
balance, so every example in the banner and the README works the same on
each run; ``--new-credentials`` issues new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from smsgate.commands.common import CliError
from smsgate.commands.operators import put_login
from smsgate.config import Settings
from smsgate.core.model import Account, AccountStatus
from smsgate.core.pricing import format_units, to_units
from smsgate.core.telesign_auth import new_api_key as new_telesign_key
from smsgate.core.telesign_auth import new_customer_id
from smsgate.credentials import (
    CredentialKind,
    hash_password,
    hash_secret,
    new_api_key,
    new_partner_id,
    new_password,
)
from smsgate.secret_box import SecretBox
from smsgate.store.records import NewCredential
from smsgate.store.repo import Store

DEMO_ACCOUNT = "demo"
DEMO_SENDER = "SMSGATE"
DEMO_CREDITS = "1000"


DEMO_OPERATOR = "operator"


@dataclass(frozen=True)
class DemoCredentials:
    partner_id: str
    apikey: str
    eapi_password: str
    customer_id: str
    telesign_key: str
    # The web console's logins, with passwords new on every run (only their
    # hashes are stored, so earlier ones cannot be printed again).
    operator_password: str = ""
    account_user_password: str = ""


async def prepare_demo(
    store: Store, settings: Settings, *, new_credentials: bool
) -> tuple[Account, DemoCredentials]:
    """Create the demo account or bring it back to its starting point."""
    box = SecretBox.for_settings(settings)
    account = await store.account_by_name(DEMO_ACCOUNT)
    if account is None:
        account = await store.create_account(
            name=DEMO_ACCOUNT,
            region=settings.default_region,
            timezone=settings.default_timezone,
            senders=[DEMO_SENDER],
        )
    else:
        await store.update_account(
            account.id, status=AccountStatus.ACTIVE.value, senders=[DEMO_SENDER]
        )
    kept = {} if new_credentials else await _kept_secrets(store, box, account.id)
    partner = kept.get(CredentialKind.PARTNER_APIKEY)
    eapi = kept.get(CredentialKind.EAPI_PASSWORD)
    telesign = kept.get(CredentialKind.TELESIGN_KEY)
    issued = DemoCredentials(
        partner_id=partner[0] if partner else new_partner_id(),
        apikey=partner[1] if partner else new_api_key(),
        eapi_password=eapi[1] if eapi else new_password(),
        customer_id=telesign[0] if telesign else new_customer_id(),
        telesign_key=telesign[1] if telesign else new_telesign_key(),
    )
    fresh = {
        CredentialKind.PARTNER_APIKEY: (issued.partner_id, issued.apikey, hash_secret),
        CredentialKind.EAPI_PASSWORD: (DEMO_ACCOUNT, issued.eapi_password, hash_password),
        CredentialKind.TELESIGN_KEY: (issued.customer_id, issued.telesign_key, hash_secret),
    }
    for kind, (identifier, secret, digest) in fresh.items():
        if kind not in kept:
            await store.replace_credential(
                account.id, NewCredential(kind, identifier, digest(secret), box.encrypt(secret))
            )
    await store.set_balance(account.id, to_units(DEMO_CREDITS), "demo balance reset")
    _, operator_password = await put_login(store, DEMO_OPERATOR, None)
    _, account_user_password = await put_login(store, DEMO_ACCOUNT, DEMO_ACCOUNT)
    issued = replace(
        issued,
        operator_password=operator_password,
        account_user_password=account_user_password,
    )
    refreshed = await store.account(account.id)
    if refreshed is None:
        raise CliError("the demo account vanished while it was being prepared; run again")
    return refreshed, issued


async def _kept_secrets(
    store: Store, box: SecretBox, account_id: int
) -> dict[str, tuple[str, str]]:
    """The demo's credentials that can be printed again: sealed, and unsealable
    with this installation's key."""
    kept: dict[str, tuple[str, str]] = {}
    for kind in (
        CredentialKind.PARTNER_APIKEY,
        CredentialKind.EAPI_PASSWORD,
        CredentialKind.TELESIGN_KEY,
    ):
        found = await store.account_sealed_secret(account_id, kind)
        if found is None:
            continue
        try:
            kept[kind] = (found[0], box.decrypt(found[1]))
        except Exception:
            continue  # sealed under another key: issue a new one
    return kept


def demo_banner(base: str, account: Account, issued: DemoCredentials, where: str) -> str:
    partner_id, apikey = issued.partner_id, issued.apikey
    creds = f'"partnerID":"{partner_id}","apikey":"{apikey}"'
    eapi = f"username={DEMO_ACCOUNT}&password={issued.eapi_password}"
    return f"""
smsgate demo: {where}, sandbox carrier
partnerID: {partner_id}
apikey: {apikey}
shortcode: {DEMO_SENDER}
eapi username: {DEMO_ACCOUNT}
eapi password: {issued.eapi_password}
telesign customer id: {issued.customer_id}
telesign api key: {issued.telesign_key}
balance: {format_units(account.balance)} credits

Web console: {base}/console/
console operator login: {DEMO_OPERATOR}
console operator password: {issued.operator_password}
console account login (the demo account only): {DEMO_ACCOUNT}
console account password: {issued.account_user_password}

Send one SMS (GET):
  curl '{base}/api/services/sendsms/?apikey={apikey}&partnerID={partner_id}&message=Hello&shortcode={DEMO_SENDER}&mobile=0712345678'

Send to several numbers (POST JSON):
  curl -X POST {base}/api/services/sendsms/ -H 'Content-Type: application/json' \\
    -d '{{{creds},"message":"Hello","shortcode":"{DEMO_SENDER}","mobile":"254712345678,254722000000"}}'

Send distinct messages (sendbulk):
  curl -X POST {base}/api/services/sendbulk/ -H 'Content-Type: application/json' \\
    -d '{{"count":2,"smslist":[{{{creds},"pass_type":"plain","clientsmsid":1,"mobile":"254712345678","message":"Hi Ann","shortcode":"{DEMO_SENDER}"}},{{{creds},"clientsmsid":2,"mobile":"254733000001","message":"Hi Bob","shortcode":"{DEMO_SENDER}"}}]}}'

Delivery report (use a messageid from above) and balance:
  curl -X POST {base}/api/services/getdlr/ -H 'Content-Type: application/json' -d '{{{creds},"messageID":"1"}}'
  curl -X POST {base}/api/services/getbalance/ -H 'Content-Type: application/json' -d '{{{creds}}}'

EAPI (pipe-delimited replies):
  curl '{base}/eapi/submission/send_sms/2/2.0?{eapi}&msisdn=254712345678&message=Hello'
  curl '{base}/eapi/user/get_credits/1/1.1?{eapi}'

Telesign-style bulk SMS (Basic auth here; the official SDK signs with HMAC):
  curl -u '{issued.customer_id}:{issued.telesign_key}' {base}/v1/verify/bulk_sms \\
    -d recipients=254712345678,254733000001 -d template='Your code is 1234'

Health and metrics:
  curl {base}/readyz
  curl {base}/metrics

Sandbox outcomes by number ending: 000 absent subscriber, 001 unknown, 002 sender
blacklisted, 003 expired, 004 refused by carrier (refunded), 005 delivered and the
handset replies; anything else is delivered.
"""
