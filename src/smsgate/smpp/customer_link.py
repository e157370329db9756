"""One customer's SMPP connection: bind, submit_sm gathered into batches,
query_sm and cancel_sm, deliver_sm with its window, and the deadlines that
find a dead peer.

submit_sm PDUs are not submitted one by one: every submit_sm read while no
read goes to the gateway as one batch, and what arrives while a few such
batches are running waits for one of them to finish, then goes as the next
batch; each submit_sm gets its own submit_sm_resp from its own result once
its batch is committed. A batch the gateway refuses
as a whole (credit, daily quota, rate) is retried one PDU at a time, so each
gets the answer it would have had alone.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from smsgate.account_limits import AccountThrottled
from smsgate.auth_guard import AuthThrottled
from smsgate.core.model import Account, MessageRequest, Rejection
from smsgate.credentials import CredentialKind
from smsgate.gateway import Overloaded, UpstreamUnavailable
from smsgate.smpp.customer_queries import answer_cancel, answer_query
from smsgate.smpp.endpoint import PduEndpoint
from smsgate.smpp.ingress import STATUS_OF_REJECTION, read_submit
from smsgate.smpp.pdu import (
    Bind,
    BindResp,
    CancelSm,
    CommandId,
    MessageIdResp,
    Pdu,
    QuerySm,
    ShortMessage,
    Status,
    encode,
)
from smsgate.store.outbox import SESSION_DIALECT
from smsgate.store.records import DailyQuotaExceeded, InsufficientCredit

if TYPE_CHECKING:
    from smsgate.smpp.server import SmppServer

log = logging.getLogger(__name__)

SERVER_SYSTEM_ID = "smsgate"

_MODES = {
    CommandId.BIND_TRANSMITTER: (True, False),
    CommandId.BIND_RECEIVER: (False, True),
    CommandId.BIND_TRANSCEIVER: (True, True),
}
_WHOLE_REFUSALS = (InsufficientCredit, DailyQuotaExceeded, AccountThrottled)
_STATUS_OF_REFUSAL: tuple[tuple[type[Exception], Status], ...] = (
    (InsufficientCredit, Status.RMSGQFUL),
    (DailyQuotaExceeded, Status.RMSGQFUL),
    (AccountThrottled, Status.RTHROTTLED),
    (Overloaded, Status.RTHROTTLED),
    (UpstreamUnavailable, Status.RSUBMITFAIL),
)
# Submissions one link may have running at once: while one batch commits the
# next is prepared, and the store commits concurrent ones together. Kept well
# under the account's requests in flight (SMSGATE_ACCOUNT_REQUESTS_IN_FLIGHT).
_MAX_SUBMISSIONS = 4


class CustomerLink(PduEndpoint):
    """A customer ESME's connection. Once bound as a receiver or transceiver
    it is what sends that account deliver_sm: ``account_id`` and ``deliver``."""

    close_on_malformed = False
    log_prefix = "smpp-server"

    def __init__(self, server: SmppServer) -> None:
        super().__init__(max_pdu_size=server.settings.smpp_server_max_pdu_bytes)
        self._server = server
        self._gateway = server.gateway
        self._settings = server.settings
        self.account: Account | None = None
        self.sends = self.receives = False
        self._binding = False
        now = time.monotonic()
        self._opened_at = self._heard_at = self._active_at = now
        self._enquiry: tuple[int, float] | None = None  # our enquire_link unanswered
        self._gathered: list[tuple[int, MessageRequest]] = []
        self._unanswered_submits = 0
        self._submissions = 0  # running
        self._launch_scheduled = False
        self._deliveries: dict[int, asyncio.Future[bool]] = {}
        self._delivery_room = asyncio.Condition()

    @property
    def account_id(self) -> int | None:
        return None if self.account is None else self.account.id

    # ------------------------------------------------------------ lifecycle

    def _opened(self) -> None:
        self._server.opened(self)

    def _lost(self, exc: Exception | None) -> None:
        log.info("smpp-server: %s disconnected (%s)", self.peer, exc or "closed")
        for future in self._deliveries.values():
            if not future.done():
                future.set_result(False)
        self._deliveries.clear()
        self._loop.create_task(self._room_made())  # waiting deliveries see it closed
        self._server.closed(self)

    def check_deadlines(self) -> None:
        """Close a link that never bound, has gone quiet, or stopped answering."""
        if not self.is_open:
            return
        settings, now = self._settings, time.monotonic()
        if self.account is None:
            if now - self._opened_at > settings.smpp_server_bind_timeout:
                log.info("smpp-server: %s did not bind in time", self.peer)
                self.abort()
            return
        if self._enquiry is not None:
            if now - self._enquiry[1] > settings.smpp_server_response_timeout:
                log.warning("smpp-server: %s stopped answering (half-open)", self.peer)
                self.abort()
            return
        if now - self._active_at > settings.smpp_server_idle_timeout:
            log.info("smpp-server: %s idle, unbinding", self.peer)
            self._write(encode(Pdu(CommandId.UNBIND, self._next_sequence(), 0, None)))
            self._close_after_flush()
        elif now - self._heard_at > settings.smpp_server_enquire_link_seconds:
            sequence = self._next_sequence()
            self._enquiry = (sequence, now)
            self._write(encode(Pdu(CommandId.ENQUIRE_LINK, sequence, 0, None)))

    async def shut(self, grace: float) -> None:
        """Unbind as a provider does when it stops: unbind, wait, close."""
        await self.unbind_and_close(grace, bound=self.account is not None)

    # ------------------------------------------------------------ reading

    def _handle(self, pdu: Pdu) -> None:
        self._heard_at = time.monotonic()
        command = pdu.command_id
        if command == CommandId.SUBMIT_SM:
            self._active_at = self._heard_at
            self._submit_sm(pdu)
        elif command == CommandId.DELIVER_SM_RESP:
            self._active_at = self._heard_at
            future = self._deliveries.pop(pdu.sequence, None)
            if future is not None and not future.done():
                future.set_result(pdu.command_status == Status.ROK)
                self._loop.create_task(self._room_made())
        elif command == CommandId.ENQUIRE_LINK_RESP:
            if self._enquiry is not None and self._enquiry[0] == pdu.sequence:
                self._enquiry = None
        elif command in (CommandId.QUERY_SM, CommandId.CANCEL_SM):
            self._active_at = self._heard_at
            self._ask(pdu)
        elif command in _MODES:
            self._bind(pdu)
        else:
            self._handle_link(pdu)

    # ------------------------------------------------------------ binding

    def _bind(self, pdu: Pdu) -> None:
        if self.account is not None or self._binding:
            self.respond(pdu, Status.RALYBND)
            return
        if not isinstance(pdu.body, Bind):
            self.respond(pdu, Status.RSYSERR)
            return
        self._binding = True
        self._loop.create_task(self._authenticate(pdu, pdu.body))

    async def _authenticate(self, pdu: Pdu, bind: Bind) -> None:
        try:
            status = await self._bind_status(pdu, bind)
        except Exception:
            log.exception("smpp-server: bind from %s failed", self.peer)
            status = Status.RBINDFAIL
        self._binding = False
        if status != Status.ROK:
            log.warning(
                "smpp-server: %s bind as %r refused: %s",
                self.peer,
                bind.system_id,
                Status(status).name,
            )
            self.respond(pdu, status)
            return
        self.respond(pdu, body=BindResp(SERVER_SYSTEM_ID))
        self._server.bound(self)

    async def _bind_status(self, pdu: Pdu, bind: Bind) -> Status:
        gateway, kind = self._gateway, CredentialKind.SMPP_PASSWORD
        try:
            account = await gateway.authenticate(
                kind, bind.system_id, bind.password, address=self.peer_host
            )
        except AuthThrottled:
            return Status.RBINDFAIL
        if account is None:
            # Checked after the password, so both refusals take as long.
            known = await gateway.knows(kind, bind.system_id)
            return Status.RINVPASWD if known else Status.RINVSYSID
        if not _address_allowed(account, self.peer_host):
            return Status.RBINDFAIL
        limit = account.options.get("smpp_max_binds")
        if not isinstance(limit, int):
            limit = self._settings.smpp_server_max_binds
        if self._server.bind_count(account.id) >= limit:
            return Status.RBINDFAIL
        if not self.is_open:
            return Status.RBINDFAIL
        self.account = account
        self.sends, self.receives = _MODES[CommandId(pdu.command_id)]
        self._active_at = time.monotonic()
        log.info("smpp-server: %s bound as %s for %s", self.peer, bind.system_id, account.name)
        return Status.ROK

    # ------------------------------------------------------------ submit_sm

    def _submit_sm(self, pdu: Pdu) -> None:
        account = self.account
        if account is None or not self.sends:
            self.respond(pdu, Status.RINVBNDSTS)
            return
        if self._unanswered_submits >= self._settings.smpp_server_window:
            self.respond(pdu, Status.RTHROTTLED)  # beyond the window it was told
            return
        assert isinstance(pdu.body, ShortMessage)
        now = self._gateway.store.clock()
        request = read_submit(
            pdu.body,
            now_ms=now,
            default_sender=account.senders[0] if account.senders else self._settings.default_sender,
            repliable=account.options.get("repliable") is True,
        )
        if isinstance(request, Status):
            self.respond(pdu, request)
            return
        self._unanswered_submits += 1
        self._gathered.append((pdu.sequence, request))
        if not self._launch_scheduled:
            # After the rest of this read: its submit_sm go in together.
            self._launch_scheduled = True
            self._loop.call_soon(self._launch)

    def _launch(self) -> None:
        """Submit what has been gathered, unless enough submissions are running
        (the next to finish launches the rest)."""
        self._launch_scheduled = False
        account = self.account
        if not self._gathered or account is None or self.closed.done():
            return
        if self._submissions >= _MAX_SUBMISSIONS:
            return
        gathered, self._gathered = self._gathered, []
        self._submissions += 1
        self._loop.create_task(self._answer(account, gathered))

    async def _answer(self, account: Account, gathered: list[tuple[int, MessageRequest]]) -> None:
        try:
            statuses = await self._statuses(account, gathered)
            for (sequence, _), (status, message_id) in zip(gathered, statuses, strict=True):
                answer = Pdu(CommandId.SUBMIT_SM_RESP, sequence, status, MessageIdResp(message_id))
                self._write(encode(answer))
            self._unanswered_submits -= len(gathered)
            self.flush()
        finally:
            self._submissions -= 1
            self._launch()

    async def _statuses(
        self, account: Account, gathered: Sequence[tuple[int, MessageRequest]]
    ) -> list[tuple[int, str]]:
        """(command_status, message_id) of each gathered submit_sm, in order."""
        requests = [request for _, request in gathered]
        try:
            submission = await self._gateway.submit(account, requests, dialect=SESSION_DIALECT)
        except _WHOLE_REFUSALS as exc:
            if len(requests) == 1:
                return [(_status_of(exc), "")]
            return [status for item in gathered for status in await self._statuses(account, [item])]
        except Exception as exc:
            return [(_status_of(exc), "")] * len(requests)
        return [
            (STATUS_OF_REJECTION[item.code], "")
            if isinstance(item, Rejection)
            else (Status.ROK, "" if item.id is None else str(item.id))
            for item in submission.results
        ]

    # ------------------------------------------------------------ query_sm, cancel_sm

    def _ask(self, pdu: Pdu) -> None:
        """query_sm and cancel_sm, from a session that may submit (TX or TRX)."""
        if self.account is None or not self.sends:
            self.respond(pdu, Status.RINVBNDSTS)
            return
        self._loop.create_task(self._answer_asking(self.account.id, pdu))

    async def _answer_asking(self, account_id: int, pdu: Pdu) -> None:
        store = self._gateway.store
        try:
            if isinstance(pdu.body, QuerySm):
                status, body = await answer_query(store, account_id, pdu.body)
                self.respond(pdu, status, body)
            elif isinstance(pdu.body, CancelSm):
                self.respond(pdu, await answer_cancel(store, account_id, pdu.body))
        except Exception:
            log.exception(
                "smpp-server: %s from %s failed", CommandId(pdu.command_id).name, self.peer
            )
            self.respond(pdu, Status.RSYSERR)

    # ------------------------------------------------------------ deliver_sm

    async def deliver(self, body: ShortMessage) -> bool:
        """Send a deliver_sm; True once the customer answered it ESME_ROK,
        False if it refused it, did not answer in time or went away."""
        window = self._settings.smpp_server_window
        async with self._delivery_room:
            await self._delivery_room.wait_for(
                lambda: len(self._deliveries) < window or not self.is_open
            )
        if not self.is_open:
            return False
        sequence = self._next_sequence()
        future: asyncio.Future[bool] = self._loop.create_future()
        self._deliveries[sequence] = future
        self._write(encode(Pdu(CommandId.DELIVER_SM, sequence, 0, body)))
        try:
            return await asyncio.wait_for(
                asyncio.shield(future), self._settings.smpp_server_response_timeout
            )
        except TimeoutError:
            self._deliveries.pop(sequence, None)
            return False
        finally:
            await self._room_made()

    async def _room_made(self) -> None:
        async with self._delivery_room:
            self._delivery_room.notify_all()


def _status_of(exc: Exception) -> Status:
    """The submit_sm_resp status of a submission the gateway refused."""
    for kind, status in _STATUS_OF_REFUSAL:
        if isinstance(exc, kind):
            return status
    log.error("smpp-server: submission failed", exc_info=exc)
    return Status.RSYSERR


def _address_allowed(account: Account, host: str) -> bool:
    """Whether the account's ``smpp_allowed_addresses`` (if set) cover ``host``."""
    ranges = account.options.get("smpp_allowed_addresses")
    if not ranges or not isinstance(ranges, list):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(
        address in ipaddress.ip_network(str(cidr), strict=False)
        for cidr in ranges
        if isinstance(cidr, str)
    )
