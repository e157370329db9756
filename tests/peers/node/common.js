'use strict';
// What the npm-smpp SMSC and ESME share: command-line options, the JSON event
// lines they print, and raw access to message bytes.
//
// The smpp package decodes short_message and message_payload into text as it
// reads them. A test peer must report the exact octets it was sent, so that
// decoding is turned off here and done explicitly, with the package's own
// decoder, only where text is wanted.

const readline = require('readline');
const smpp = require('smpp');

for (const command of ['submit_sm', 'deliver_sm']) {
  const param = smpp.commands[command].params.short_message;
  param.filter = { encode: smpp.filters.message.encode, decode: (value) => value };
}
smpp.tlvs.message_payload.filter = {
  encode: smpp.filters.message.encode,
  decode: (value) => value,
};

/** Parse `--name value`, `--flag` and `--no-flag` against defaults (camelCase keys). */
function parseOptions(argv, defaults, repeated = []) {
  const options = { ...defaults };
  for (const name of repeated) options[name] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) fail(`unexpected argument ${arg}`);
    let name = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    let value;
    if (name.startsWith('no') && name.length > 2 && typeof defaults[lower(name.slice(2))] === 'boolean') {
      name = lower(name.slice(2));
      value = false;
    } else if (typeof defaults[name] === 'boolean') {
      value = true;
    } else if (name in defaults || repeated.includes(name)) {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      value = argv[++i];
      if (typeof defaults[name] === 'number') {
        value = Number(value);
        if (!Number.isFinite(value) || value < 0) fail(`${arg} needs a number >= 0`);
      }
    } else {
      fail(`unknown option ${arg}`);
    }
    if (repeated.includes(name)) options[name].push(value);
    else options[name] = value;
  }
  return options;
}

function lower(name) {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/** One event as one JSON line on stdout. */
function emit(event, fields) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

/** The TLVs of a decoded PDU as {"0x001e": "hex of the value"}, re-encoded by the package. */
function tlvHex(pdu) {
  const out = {};
  for (const key of Object.keys(pdu)) {
    const tlv = smpp.tlvs[key];
    if (tlv) {
      const values = tlv.multiple ? pdu[key] : [pdu[key]];
      const parts = values.map((value) => {
        const buffer = Buffer.alloc(tlv.type.size(value));
        tlv.type.write(value, buffer, 0);
        return buffer.toString('hex');
      });
      out[tagName(tlv.id)] = parts.join('');
    } else if (/^\d+$/.test(key) && Buffer.isBuffer(pdu[key])) {
      out[tagName(Number(key))] = pdu[key].toString('hex');
    }
  }
  return out;
}

function tagName(id) {
  return `0x${id.toString(16).padStart(4, '0')}`;
}

/** The octets of the message: short_message, or message_payload when that is empty. */
function messageBytes(pdu) {
  const short = Buffer.isBuffer(pdu.short_message) ? pdu.short_message : Buffer.alloc(0);
  if (short.length || !Buffer.isBuffer(pdu.message_payload)) return short;
  return pdu.message_payload;
}

/** The message's text as the package decodes it (UDH dropped). */
function messageText(pdu) {
  const decoded = smpp.filters.message.decode.call(pdu, messageBytes(pdu));
  return typeof decoded.message === 'string' ? decoded.message : decoded.message.toString('latin1');
}

/** Call `handle` with each JSON object written to stdin, one a line. */
function onJsonLines(handle) {
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (!line.trim()) return;
    let value;
    try {
      value = JSON.parse(line);
    } catch (error) {
      emit('error', { message: `not JSON: ${line}` });
      return;
    }
    handle(value);
  });
}

module.exports = { parseOptions, fail, emit, tlvHex, messageBytes, messageText, onJsonLines };
