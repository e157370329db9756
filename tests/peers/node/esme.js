#!/usr/bin/env node
'use strict';
// An ESME built on the npm smpp package, for testing an SMPP server (smsgate's
// simulator, smsgate's customer-facing server) with a client it did not write.
// Options and event lines are described in tests/peers/README.md; the Perl
// ESME (../perl/esme.pl) takes the same ones.

const smpp = require('smpp');
const { parseOptions, fail, emit, tlvHex, messageBytes, messageText, onJsonLines } = require('./common');

const options = parseOptions(
  process.argv.slice(2),
  {
    host: '127.0.0.1',
    port: 2775,
    systemId: 'smsgate',
    password: 'secret',
    mode: 'transceiver',
    window: 10,
    responses: 0,
    delivers: 0,
    seconds: 0,
    enquireLinkMs: 0,
    ack: true,
  },
  ['message'],
);
if (!['transceiver', 'transmitter', 'receiver'].includes(options.mode)) {
  fail('--mode must be transceiver, transmitter or receiver');
}

const GSM_SINGLE = 160;
const GSM_PART = 153;
const UCS2_SINGLE = 140;
const UCS2_PART = 134;

let reference = 0;
const queue = []; // submit_sm fields waiting for a window slot
let inFlight = 0;
let index = 0;
const counts = { submitted: 0, responses: 0, delivers: 0 };
let bound = false;
let stopping = false;

/** The submit_sm field sets (one per part) of a message given as JSON. */
function partsOf(message, messageIndex) {
  const from = message.from ?? 'SHOP'; // '' asks for no source: the gateway's own
  const base = {
    source_addr: from,
    source_addr_ton: /^\d+$/.test(from) ? 1 : 5,
    source_addr_npi: /^\d+$/.test(from) ? 1 : 0,
    destination_addr: String(message.to),
    dest_addr_ton: 1,
    dest_addr_npi: 1,
    registered_delivery: message.registered_delivery === undefined ? 1 : message.registered_delivery,
  };
  const label = message.id === undefined ? messageIndex : message.id;
  if (message.hex !== undefined) {
    return [{ ...base, esm_class: message.esm_class || 0, data_coding: message.data_coding || 0,
      short_message: Buffer.from(message.hex, 'hex'), label, part: 1, parts: 1 }];
  }
  const text = String(message.text);
  const gsm = message.coding ? message.coding === 'gsm' : smpp.encodings.ASCII.match(text);
  const bytes = gsm ? smpp.encodings.ASCII.encode(text) : smpp.encodings.UCS2.encode(text);
  const single = gsm ? GSM_SINGLE : UCS2_SINGLE;
  const dataCoding = gsm ? 0 : 8;
  if (bytes.length <= single) {
    return [{ ...base, esm_class: 0, data_coding: dataCoding, short_message: bytes, label, part: 1, parts: 1 }];
  }
  const chunks = [];
  for (let at = 0; at < bytes.length;) {
    let end = Math.min(at + (gsm ? GSM_PART : UCS2_PART), bytes.length);
    if (gsm && end < bytes.length && bytes[end - 1] === 0x1b) end -= 1; // keep an escape with its character
    if (!gsm && end < bytes.length && (bytes[end - 2] & 0xfc) === 0xd8) end -= 2; // keep a surrogate pair
    chunks.push(bytes.subarray(at, end));
    at = end;
  }
  reference = (reference + 1) & 0xff;
  return chunks.map((chunk, i) => ({
    ...base,
    esm_class: 0x40,
    data_coding: dataCoding,
    short_message: Buffer.concat([Buffer.from([5, 0, 3, reference, chunks.length, i + 1]), chunk]),
    label,
    part: i + 1,
    parts: chunks.length,
  }));
}

function enqueue(message) {
  queue.push(...partsOf(message, index++));
  pump();
}

function pump() {
  while (bound && !stopping && inFlight < options.window && queue.length) {
    const { label, part, parts, ...fields } = queue.shift();
    const pdu = new smpp.PDU('submit_sm', fields);
    inFlight += 1;
    counts.submitted += 1;
    session.send(pdu, (resp) => {
      inFlight -= 1;
      counts.responses += 1;
      emit('submit_sm_resp', {
        sequence: resp.sequence_number,
        index: label,
        part,
        status: resp.command_status,
        message_id: resp.message_id === undefined ? null : resp.message_id,
      });
      pump();
      checkDone();
    });
    emit('submit_sm', { sequence: pdu.sequence_number, index: label, part, parts, destination: fields.destination_addr });
  }
}

function checkDone() {
  const wanted = [];
  if (options.responses) wanted.push(counts.responses >= options.responses);
  if (options.delivers) wanted.push(counts.delivers >= options.delivers);
  if (wanted.length && wanted.every(Boolean)) unbind();
}

function unbind() {
  if (stopping) return;
  stopping = true;
  if (!bound) finish(0);
  session.unbind(() => {
    emit('unbind_resp', {});
    finish(0);
  });
  setTimeout(() => finish(0), 2000).unref();
}

function finish(code) {
  emit('unbound', { ...counts, in_flight: inFlight });
  session.destroy();
  process.exit(code);
}

const session = smpp.connect({
  host: options.host,
  port: options.port,
  auto_enquire_link_period: options.enquireLinkMs || undefined,
});
const BIND = { transceiver: 'bind_transceiver', transmitter: 'bind_transmitter', receiver: 'bind_receiver' };
session.on('connect', () => {
  session[BIND[options.mode]]({ system_id: options.systemId, password: options.password }, (resp) => {
    emit('ready', { impl: 'node', mode: options.mode, status: resp.command_status, system_id: resp.system_id || '' });
    if (resp.command_status !== 0) {
      session.destroy();
      process.exit(3);
    }
    bound = true;
    for (const raw of options.message) enqueue(JSON.parse(raw));
    if (options.seconds) setTimeout(unbind, options.seconds * 1000);
    pump();
    checkDone();
  });
});
session.on('deliver_sm', (pdu) => {
  counts.delivers += 1;
  emit('deliver_sm', {
    sequence: pdu.sequence_number,
    source: pdu.source_addr,
    destination: pdu.destination_addr,
    esm_class: pdu.esm_class,
    data_coding: pdu.data_coding,
    short_message: messageBytes(pdu).toString('hex'),
    text: messageText(pdu),
    tlvs: tlvHex(pdu),
  });
  if (options.ack) session.send(pdu.response({ message_id: '' }));
  checkDone();
});
session.on('enquire_link', (pdu) => {
  emit('enquire_link', { sequence: pdu.sequence_number });
  session.send(pdu.response());
});
session.on('enquire_link_resp', (pdu) => emit('enquire_link_resp', { sequence: pdu.sequence_number }));
session.on('unbind', (pdu) => {
  emit('unbind', {});
  session.send(pdu.response(), () => finish(0));
});
session.on('unknown', (pdu) => session.send(pdu.response()));
session.on('error', (error) => emit('error', { message: String(error.message || error) }));
session.on('close', () => {
  if (!stopping) {
    emit('closed', { ...counts, in_flight: inFlight });
    process.exit(1);
  }
});

onJsonLines((message) => {
  if (message.command === 'unbind') unbind();
  else enqueue(message);
});
process.on('SIGTERM', unbind);
process.on('SIGINT', unbind);
