#!/usr/bin/env node
'use strict';
// An SMSC built on the npm smpp package, for testing smsgate against an SMPP
// implementation it did not write. Options and event lines are described in
// tests/peers/README.md; the Perl SMSC (../perl/smsc.pl) takes the same ones.

const crypto = require('crypto');
const smpp = require('smpp');
const { parseOptions, fail, emit, tlvHex, messageBytes, onJsonLines } = require('./common');

const options = parseOptions(process.argv.slice(2), {
  host: '127.0.0.1',
  port: 0,
  systemId: 'smsgate',
  password: 'secret',
  idStyle: 'decimal',
  receiptDelayMs: 50,
  receiptFirst: false,
  receiptTextId: 'same',
  receiptTlvId: 'same',
  receiptTlvs: true,
  throttle: 0,
  restartAfter: 0,
  rules: '000=absent,001=unknown,002=blacklisted,003=expired,004=rejected,005=replies',
});

const ID_STYLES = {
  decimal: (n) => String(n),
  hex: (n) => n.toString(16),
  'upper-hex': (n) => n.toString(16).toUpperCase(),
  padded: (n) => String(n).padStart(10, '0'),
  uuid: () => crypto.randomUUID(),
};
const HEX_STYLES = ['hex', 'upper-hex'];
const DECIMAL_STYLES = ['decimal', 'padded'];
if (!ID_STYLES[options.idStyle]) fail(`--id-style must be one of ${Object.keys(ID_STYLES)}`);
for (const name of ['receiptTextId', 'receiptTlvId']) {
  const spelling = options[name];
  const ok =
    spelling === 'same' ||
    (spelling === 'decimal' && HEX_STYLES.includes(options.idStyle)) ||
    (spelling === 'hex' && DECIMAL_STYLES.includes(options.idStyle));
  if (!ok) fail(`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${spelling} does not fit --id-style ${options.idStyle}`);
}

// Outcome by number ending, as smsgate's sandbox rules name them.
const OUTCOMES = {
  delivered: { stat: 'DELIVRD', state: 2, err: 0 },
  replies: { stat: 'DELIVRD', state: 2, err: 0, reply: true },
  absent: { stat: 'UNDELIV', state: 5, err: 6 },
  unknown: { stat: 'UNDELIV', state: 5, err: 1 },
  blacklisted: { stat: 'UNDELIV', state: 5, err: 13 },
  expired: { stat: 'EXPIRED', state: 3, err: 0 },
  rejected: { refuse: smpp.ESME_RSUBMITFAIL },
};
const rules = options.rules
  .split(',')
  .filter((item) => item.trim())
  .map((item) => {
    const [suffix, outcome] = item.split('=').map((part) => part.trim());
    if (!/^\d+$/.test(suffix) || !OUTCOMES[outcome]) fail(`--rules: cannot read ${item}`);
    return { suffix, outcome: OUTCOMES[outcome] };
  })
  .sort((a, b) => b.suffix.length - a.suffix.length);

function outcomeFor(destination) {
  const rule = rules.find((r) => destination.endsWith(r.suffix));
  return rule ? rule.outcome : OUTCOMES.delivered;
}

// ------------------------------------------------------------------ ids

let issued = 0;
function nextId() {
  const n = options.restartAfter ? (issued % options.restartAfter) + 1 : issued + 1;
  issued += 1;
  return ID_STYLES[options.idStyle](n);
}

function spell(id, spelling) {
  if (spelling === 'decimal') return String(parseInt(id, 16));
  if (spelling === 'hex') return parseInt(id, 10).toString(16);
  return id;
}

// A token bucket of `throttle` tokens, refilled at `throttle` per second.
let tokens = options.throttle;
let refilledAt = Date.now();
function takeToken() {
  if (!options.throttle) return true;
  const now = Date.now();
  tokens = Math.min(options.throttle, tokens + ((now - refilledAt) / 1000) * options.throttle);
  refilledAt = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

// ------------------------------------------------------------- deliver_sm

// deliver_sm not yet acknowledged, by system_id, waiting for a receiver bind.
const held = new Map();
const sessions = new Set();

function receiverFor(item) {
  const origin = item.origin;
  if (origin && origin.mode === 'transceiver' && sessions.has(origin)) return origin;
  for (const session of sessions) {
    if ((session.mode === 'receiver' || session.mode === 'transceiver') && session.systemId === item.systemId) {
      return session;
    }
  }
  return null;
}

function deliver(item) {
  const session = receiverFor(item);
  if (!session) {
    item.origin = null;
    if (!held.has(item.systemId)) held.set(item.systemId, []);
    held.get(item.systemId).push(item);
    emit('held', { kind: item.kind, message_id: item.messageId });
    return;
  }
  const pdu = new smpp.PDU('deliver_sm', { ...item.fields });
  item.attempts += 1;
  session.send(pdu, (resp) => {
    session.unacked.delete(pdu.sequence_number);
    emit('deliver_sm_resp', {
      sequence: pdu.sequence_number,
      status: resp.command_status,
      kind: item.kind,
      message_id: item.messageId,
    });
    if (resp.command_status !== 0) {
      item.origin = null;
      if (!held.has(item.systemId)) held.set(item.systemId, []);
      held.get(item.systemId).push(item); // refused: tried again on the next bind
    }
  });
  session.unacked.set(pdu.sequence_number, item);
  emit('deliver_sm', {
    sequence: pdu.sequence_number,
    kind: item.kind,
    message_id: item.messageId,
    receipt_id: item.receiptId,
    stat: item.stat,
    source: item.fields.source_addr,
    destination: item.fields.destination_addr,
    esm_class: item.fields.esm_class,
    data_coding: item.fields.data_coding,
    short_message: item.fields.short_message.toString('hex'),
    tlvs: tlvHex(pdu),
    attempt: item.attempts,
  });
}

function yymmddhhmm(ms) {
  return new Date(ms).toISOString().replace(/[-T:]/g, '').slice(2, 12);
}

function printable(bytes) {
  return Array.from(bytes.subarray(0, 20), (b) => (b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : '?')).join('');
}

/** The payload after the UDH, and the part number the UDH gives (1 without one). */
function userData(pdu) {
  const bytes = messageBytes(pdu);
  if (!(pdu.esm_class & 0x40) || !bytes.length) return { payload: bytes, part: 1 };
  const header = bytes.subarray(1, 1 + bytes[0]);
  let part = 1;
  for (let at = 0; at + 2 <= header.length; at += 2 + header[at + 1]) {
    if (header[at] === 0x00 && header[at + 1] === 3) part = header[at + 4];
    if (header[at] === 0x08 && header[at + 1] === 4) part = header[at + 5];
  }
  return { payload: bytes.subarray(1 + bytes[0]), part };
}

/** The addresses of a deliver_sm answering `pdu`: from its destination, to its source. */
function answering(pdu) {
  return {
    source_addr_ton: pdu.dest_addr_ton,
    source_addr_npi: pdu.dest_addr_npi,
    source_addr: pdu.destination_addr,
    dest_addr_ton: pdu.source_addr_ton,
    dest_addr_npi: pdu.source_addr_npi,
    destination_addr: pdu.source_addr,
  };
}

function receiptFor(session, pdu, messageId, outcome, submittedAt) {
  const textId = spell(messageId, options.receiptTextId);
  const tlvId = spell(messageId, options.receiptTlvId);
  const isText = [0, 1, 3].includes(pdu.data_coding);
  const preview = isText ? printable(userData(pdu).payload) : '';
  const err = String(outcome.err).padStart(3, '0');
  const text =
    `id:${textId} sub:001 dlvrd:${outcome.stat === 'DELIVRD' ? '001' : '000'}` +
    ` submit date:${yymmddhhmm(submittedAt)} done date:${yymmddhhmm(Date.now())}` +
    ` stat:${outcome.stat} err:${err} text:${preview}`;
  const fields = {
    ...answering(pdu),
    esm_class: 0x04,
    data_coding: 0,
    short_message: Buffer.from(text, 'ascii'),
  };
  if (options.receiptTlvs) {
    fields.receipted_message_id = tlvId;
    fields.message_state = outcome.state;
    if (outcome.err) fields.network_error_code = Buffer.from([3, outcome.err >> 8, outcome.err & 0xff]);
  }
  return {
    kind: 'receipt', systemId: session.systemId, origin: session, fields,
    messageId, receiptId: textId, stat: outcome.stat, attempts: 0,
  };
}

function replyFor(session, pdu, messageId) {
  const { payload, part } = userData(pdu);
  if (part !== 1) return null;
  const quoted = [0, 1].includes(pdu.data_coding) && payload.length && payload.every((b) => b >= 0x20 && b < 0x7f)
    ? payload.subarray(0, 40).toString('latin1')
    : 'your message';
  return {
    kind: 'mo', systemId: session.systemId, origin: session, messageId, receiptId: null, stat: null, attempts: 0,
    fields: {
      ...answering(pdu),
      esm_class: 0,
      data_coding: 0,
      short_message: Buffer.from(`Re: ${quoted}`, 'latin1'),
    },
  };
}

// ------------------------------------------------------------- sessions

function onSubmit(session, pdu) {
  if (session.mode !== 'transmitter' && session.mode !== 'transceiver') {
    session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
    return;
  }
  const submittedAt = Date.now();
  const outcome = outcomeFor(pdu.destination_addr);
  let status = 0;
  if (!takeToken()) status = smpp.ESME_RTHROTTLED;
  else if (outcome.refuse) status = outcome.refuse;
  const messageId = status === 0 ? nextId() : '';
  emit('submit_sm', {
    system_id: session.systemId,
    sequence: pdu.sequence_number,
    source: pdu.source_addr,
    destination: pdu.destination_addr,
    esm_class: pdu.esm_class,
    data_coding: pdu.data_coding,
    registered_delivery: pdu.registered_delivery,
    short_message: messageBytes(pdu).toString('hex'),
    tlvs: tlvHex(pdu),
    message_id: messageId,
    status,
  });
  const wanted = pdu.registered_delivery & 0x03;
  const receipt = status === 0 && (wanted === 1 || (wanted === 2 && outcome.stat !== 'DELIVRD'))
    ? receiptFor(session, pdu, messageId, outcome, submittedAt)
    : null;
  const reply = status === 0 && outcome.reply ? replyFor(session, pdu, messageId) : null;
  const later = [receipt, reply].filter(Boolean);
  const respond = () => session.send(pdu.response({ command_status: status, message_id: messageId }));
  if (options.receiptFirst) {
    later.forEach(deliver);
    respond();
  } else if (options.receiptDelayMs === 0) {
    respond();
    later.forEach(deliver);
  } else {
    respond();
    if (later.length) setTimeout(() => later.forEach(deliver), options.receiptDelayMs);
  }
}

function onBind(session, pdu, mode) {
  let status = 0;
  if (session.mode) status = smpp.ESME_RALYBND;
  else if (pdu.system_id !== options.systemId) status = smpp.ESME_RINVSYSID;
  else if (pdu.password !== options.password) status = smpp.ESME_RINVPASWD;
  emit('bind', { mode, system_id: pdu.system_id, status });
  if (status) {
    session.send(pdu.response({ command_status: status }));
    return;
  }
  session.mode = mode;
  session.systemId = pdu.system_id;
  session.send(pdu.response({ system_id: 'node-smsc' }));
  if (mode === 'receiver' || mode === 'transceiver') {
    const waiting = held.get(session.systemId) || [];
    held.delete(session.systemId);
    waiting.forEach(deliver);
  }
}

function onClose(session) {
  if (!sessions.delete(session)) return;
  emit('close', { system_id: session.systemId, mode: session.mode, unacknowledged: session.unacked.size });
  // What the session was sent but never acknowledged goes out again, as an SMSC retries.
  const unacked = [...session.unacked.values()];
  session.unacked.clear();
  for (const item of unacked) {
    item.origin = null;
    deliver(item);
  }
}

const server = smpp.createServer((session) => {
  session.mode = null;
  session.systemId = '';
  session.unacked = new Map();
  sessions.add(session);
  emit('connect', {});
  session.on('bind_transmitter', (pdu) => onBind(session, pdu, 'transmitter'));
  session.on('bind_receiver', (pdu) => onBind(session, pdu, 'receiver'));
  session.on('bind_transceiver', (pdu) => onBind(session, pdu, 'transceiver'));
  session.on('submit_sm', (pdu) => onSubmit(session, pdu));
  session.on('enquire_link', (pdu) => {
    emit('enquire_link', { sequence: pdu.sequence_number });
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    emit('unbind', { system_id: session.systemId });
    session.send(pdu.response());
    session.close();
  });
  session.on('unknown', (pdu) => session.send(pdu.response()));
  session.on('close', () => onClose(session));
  session.on('error', () => onClose(session));
});

// ------------------------------------------------------------- control

function sendMo(command) {
  const ucs2 = command.coding === 'ucs2';
  deliver({
    kind: 'mo', systemId: command.system_id || options.systemId, origin: null,
    messageId: null, receiptId: null, stat: null, attempts: 0,
    fields: {
      source_addr_ton: 1, source_addr_npi: 1, source_addr: command.source,
      dest_addr_ton: /^\d+$/.test(command.destination) ? 1 : 5, dest_addr_npi: 1,
      destination_addr: command.destination,
      esm_class: 0, data_coding: ucs2 ? 8 : 0,
      short_message: ucs2
        ? smpp.encodings.UCS2.encode(command.text)
        : smpp.encodings.ASCII.encode(command.text),
    },
  });
}

function stop() {
  let waiting = 0;
  for (const session of sessions) {
    if (!session.mode) continue;
    waiting += 1;
    session.unbind(() => session.close());
  }
  server.close();
  const exit = () => process.exit(0);
  if (!waiting) exit();
  setTimeout(exit, 1000).unref();
  setInterval(() => sessions.size || exit(), 10).unref();
}

onJsonLines((command) => {
  if (command.command === 'mo') sendMo(command);
  else if (command.command === 'drop') {
    for (const session of [...sessions]) session.destroy();
  } else emit('error', { message: `unknown command ${command.command}` });
});
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(options.port, options.host, () => {
  emit('ready', { impl: 'node', port: server.address().port });
});
