"""The one schema both engines share.

Conventions: every ``*_at`` column is unix epoch milliseconds (BIGINT), so
SQLite and PostgreSQL compare times identically and the dispatcher's due-time
arithmetic is integer math; money is integer hundredths of a credit.

The ``messages`` table is also the delivery queue: a message waiting for
dispatch has state ``queued`` or ``scheduled`` and ``due_at`` in the past, and a
dispatcher claims it by writing a lease (``lease_owner``/``lease_until``). The
partial index ``ix_messages_due`` covers exactly the waiting rows, so claiming
stays cheap however many delivered messages the table holds.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT primary keys autoincrement on PostgreSQL, but SQLite only aliases
# ROWID for a column typed exactly INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")

WAITING_FOR_DISPATCH = "state IN ('queued', 'scheduled')"

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("region", String(2), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("senders", JSON, nullable=False),
    Column("allowed_country_codes", JSON, nullable=False),
    Column("dlr_callback_url", Text),
    Column("options", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("identifier", String(128), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    # A secret the gateway must be able to use, not just check (the key of
    # HMAC-signed requests), encrypted with the installation's secret key.
    Column("sealed_secret", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Index("ix_credentials_lookup", "kind", "identifier"),
)

batches = Table(
    "batches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("dialect", String(16), nullable=False),
    Column("message_count", Integer, nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("description", Text),
    # A test-mode submission: validated and recorded, but nothing sent or charged.
    Column("test_mode", Boolean, nullable=False, server_default=text("false")),
    # The request that brought the batch in, redacted and bounded
    # (api/request_record.py): one value per batch, not per message.
    Column("request", Text),
    Index("ix_batches_account", "account_id", "created_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # No foreign keys here: the accepting transaction writes the batch and its
    # messages together, and a per-row key check (a lock on the parent row in
    # PostgreSQL) cost more than the COPY of a 30,000-message batch itself.
    Column("batch_id", Id, nullable=False),
    Column("account_id", Id, nullable=False),
    Column("recipient", String(20), nullable=False),
    Column("network_id", SmallInteger, nullable=False),
    Column("sender", String(20), nullable=False),
    Column("body", Text, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("segments", SmallInteger, nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("client_ref", String(64)),
    Column("priority", SmallInteger, nullable=False),
    Column("want_report", Boolean, nullable=False, server_default=text("true")),
    Column("flags", SmallInteger, nullable=False, server_default="0"),
    Column("routing_group", SmallInteger),
    Column("state", String(16), nullable=False),
    Column("reason", String(32), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("due_at", BigInteger, nullable=False),
    # Not to be sent after this instant (SMPP validity_period): a worker that
    # claims it later ends it expired, refunded, instead of sending it.
    Column("expires_at", BigInteger),
    # A part the customer cut itself, "reference/total/seq" (core.model.PartOf):
    # sent under that concatenation header instead of one of ours.
    Column("part_of", String(24)),
    Column("submitted_at", BigInteger),
    Column("done_at", BigInteger),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("lease_owner", String(128)),
    Column("lease_until", BigInteger),
    Column("connector", String(64)),
    Column("carrier_ref", String(64)),
    Index("ix_messages_batch", "batch_id"),
    # The console's message search pages newest first within an account or a
    # handset's number (keyset on id), so every page is an index range.
    Index("ix_messages_account_id", "account_id", "id"),
    Index("ix_messages_recipient", "recipient", "id"),
    # Messages waiting for a receipt, oldest first: what a receipt timeout ends.
    Index(
        "ix_messages_awaiting_receipt",
        "connector",
        "submitted_at",
        sqlite_where=text("state = 'submitted'"),
        postgresql_where=text("state = 'submitted'"),
    ),
    Index(
        "ix_messages_due",
        "priority",
        "due_at",
        sqlite_where=text(WAITING_FOR_DISPATCH),
        postgresql_where=text(WAITING_FOR_DISPATCH),
    ),
)

# Every part a carrier took, under the id it gave: a receipt names one part,
# and is matched here by connector and ``carrier_key`` (the id read the way
# the connector declares its carrier writes ids), within the connector's
# validity, the newest submission winning. ``state`` is that part's receipt,
# NULL until it comes; a message is final once its parts say so.
submitted_parts = Table(
    "submitted_parts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, nullable=False),
    Column("part", SmallInteger, nullable=False),
    Column("parts", SmallInteger, nullable=False),
    Column("connector", String(64), nullable=False),
    Column("carrier_key", String(64), nullable=False),
    Column("carrier_ref", String(64), nullable=False),
    Column("recipient", String(20), nullable=False),
    Column("submitted_at", BigInteger, nullable=False),
    Column("state", String(16)),
    Column("reason", String(32)),
    Column("carrier_status", String(32)),
    Column("receipt_text", Text),
    Column("receipt_at", BigInteger),
    Index("ix_submitted_parts_key", "connector", "carrier_key", "submitted_at"),
    Index("ix_submitted_parts_message", "message_id"),
)

# Every lease a dispatcher took on a message, written by the claiming
# statement itself: a message's history tells who held it and when, and a
# lease that ran out with nothing recorded shows as a claim followed by the
# next one. ``attempt`` is the attempt the claim counts as (a retry that was
# not the message's fault claims it again under the same number).
claims = Table(
    "claims",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", Id, nullable=False),
    Column("attempt", SmallInteger, nullable=False),
    Column("owner", String(128), nullable=False),
    Column("claimed_at", BigInteger, nullable=False),
    Column("lease_until", BigInteger, nullable=False),
    Index("ix_claims_message", "message_id"),
)

# Receipts that matched no submitted part when they came (the id is unknown,
# or its submission is not committed yet). They are kept, acknowledged to the
# carrier only once stored here, matched as soon as their submission is
# recorded, and shown to the operator when they never match.
unmatched_receipts = Table(
    "unmatched_receipts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connector", String(64), nullable=False),
    Column("carrier_key", String(64), nullable=False),
    Column("carrier_ref", String(64), nullable=False),
    Column("handset", String(20), nullable=False, server_default=""),
    Column("message_id", Id),
    Column("state", String(16), nullable=False),
    Column("reason", String(32), nullable=False, server_default=""),
    Column("carrier_status", String(32), nullable=False, server_default=""),
    Column("receipt_text", Text),
    Column("occurred_at", BigInteger, nullable=False),
    Column("match_since", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Index("ix_unmatched_receipts_key", "connector", "carrier_key"),
    Index("ix_unmatched_receipts_received", "received_at"),
)

# State changes the gateway decided itself: a carrier's refusal at submission,
# giving up after the attempts, a receipt timeout. What carriers said about
# parts they took (their ids, their receipts) is in ``submitted_parts``.
delivery_events = Table(
    "delivery_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", ForeignKey("messages.id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", String(32), nullable=False, server_default=""),
    Column("carrier_status", String(32)),
    Column("occurred_at", BigInteger, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
    Index("ix_delivery_events_message", "message_id"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("batch_id", ForeignKey("batches.id")),
    Column("message_id", ForeignKey("messages.id")),
    Column("note", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_ledger_account", "account_id", "id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", ForeignKey("accounts.id"), primary_key=True),
    Column("scope", String(32), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("batch_id", ForeignKey("batches.id")),
    Column("response", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

callback_outbox = Table(
    "callback_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("message_id", ForeignKey("messages.id")),
    Column("dialect", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("lease_until", BigInteger),
    Column("last_error", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger),
    Index(
        "ix_callback_outbox_due",
        "next_attempt_at",
        sqlite_where=text("state = 'pending'"),
        postgresql_where=text("state = 'pending'"),
    ),
    UniqueConstraint("message_id", "kind", "dialect", name="uq_callback_outbox_event"),
)

# Conversations (store/reply_routes.py): per (reply number, handset), the one
# account a reply on that pair belongs to and its latest repliable message.
# The pair is the account's until ``expires_at`` (the pool's window after that
# message); after it, another account may take the pair. Written only for
# repliable messages, so it costs nothing on ordinary bulk traffic.
reply_routes = Table(
    "reply_routes",
    metadata,
    Column("address", String(20), primary_key=True),
    Column("recipient", String(20), primary_key=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("message_id", ForeignKey("messages.id"), nullable=False),
    Column("batch_id", ForeignKey("batches.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", ForeignKey("accounts.id")),
    Column("message_id", ForeignKey("messages.id")),
    Column("batch_id", ForeignKey("batches.id")),
    Column("connector", String(64), nullable=False),
    Column("sender", String(20), nullable=False),
    Column("recipient", String(20), nullable=False),
    Column("body", Text, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_inbound_messages_account", "account_id", "id"),
)

# A condition a connector's upstream reported (no credit, quota exceeded),
# believed until ``until_at``; API processes refuse new work while it holds.
connector_conditions = Table(
    "connector_conditions",
    metadata,
    Column("connector", String(64), primary_key=True),
    Column("condition", String(32), nullable=False),
    Column("until_at", BigInteger, nullable=False),
    Column("reported_at", BigInteger, nullable=False),
)

# Who binds each shared carrier connection: one worker at a time, for as long
# as it keeps renewing (see delivery/ownership.py).
connector_leases = Table(
    "connector_leases",
    metadata,
    Column("connector", String(64), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("lease_until", BigInteger, nullable=False),
    Column("taken_at", BigInteger, nullable=False),
)

# What each shared connection is doing, written by the worker holding it
# every few seconds: the operator's view of binds that fail.
connector_health = Table(
    "connector_health",
    metadata,
    Column("connector", String(64), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("since", BigInteger, nullable=False),
    Column("last_error", Text),
    Column("error_at", BigInteger),
    Column("window", Integer, nullable=False),
    Column("in_flight", Integer, nullable=False),
    Column("sent", BigInteger, nullable=False),
    Column("refused", BigInteger, nullable=False),
    Column("paced_rate", Float, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("balance", BigInteger),
)

# Nonces of signed requests seen within the date tolerance: the primary key
# makes a replay fail in whichever API process it reaches.
request_nonces = Table(
    "request_nonces",
    metadata,
    Column("identifier", String(128), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("seen_at", BigInteger, nullable=False),
    Index("ix_request_nonces_seen", "seen_at"),
)

# Carrier connections configured at run time (smsgate connectors add). The
# SMPP URL carries a password, so it is kept sealed like other usable secrets.
connectors = Table(
    "connectors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("sealed_url", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Which connector carries which destinations: longest prefix first, then the
# lowest priority number; a route with a routing group only takes messages of
# that group. A route whose connector is down is skipped (failover).
routes = Table(
    "routes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("prefix", String(15), nullable=False, server_default=""),
    Column("routing_group", SmallInteger),
    Column("connector", String(64), nullable=False),
    Column("priority", SmallInteger, nullable=False, server_default="100"),
    Column("created_at", BigInteger, nullable=False),
    Column("price", BigInteger),
)

# Every callback attempt and the receiver's answer, so an operator can see
# why a report has not arrived (smsgate messages show, callbacks list).
callback_attempts = Table(
    "callback_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("callback_id", ForeignKey("callback_outbox.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", Id),
    Column("attempt", SmallInteger, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("answer", Text),
    Column("attempted_at", BigInteger, nullable=False),
    Index("ix_callback_attempts_callback", "callback_id"),
    Index("ix_callback_attempts_message", "message_id"),
)

# Each worker process reports in on a timer: when it was last seen and when
# its dispatcher last polled the queue, which is what /readyz asks of the cluster.
worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("seen_at", BigInteger, nullable=False),
    Column("last_claim_at", BigInteger),
)

# Who may open the web console: an operator (no account) sees everything, an
# account user only that account. Consecutive failed log-ins lock the login
# until ``locked_until``; a successful one clears the count.
console_users = Table(
    "console_users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("login", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("account_id", ForeignKey("accounts.id")),
    Column("failed_logins", SmallInteger, nullable=False, server_default="0"),
    Column("locked_until", BigInteger),
    Column("created_at", BigInteger, nullable=False),
)

# A signed-in browser: the cookie holds a random token, only its SHA-256 is
# kept, so a copy of the database opens no session. Kept in the database so
# every API process behind a balancer knows every session.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey("console_users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_console_sessions_expires_at", "expires_at"),
)

# Failed authentications per client address and per credential identifier,
# shared by every API process: past a few failures each key is locked for a
# time that doubles with every further failure (store/auth_limits.py).
auth_failures = Table(
    "auth_failures",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", BigInteger, nullable=False),
    Column("locked_until", BigInteger, nullable=False),
    Index("ix_auth_failures_last_failure", "last_failure_at"),
)
