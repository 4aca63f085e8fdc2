#!/usr/bin/env node
'use strict';
// A real Node uhura@0.1.2 client, driven by JSON-line commands on stdin and reporting
// JSON lines on stdout, so the Rx.Uhura tests can use it as a peer.
//
//   node uhura-client.js PORT_OR_UNIX_PATH [--reconnect] [--echo] [--trace]
//
// A number is a TCP port on 127.0.0.1; anything else is a unix socket path.
// The line formats are listed in README.md.

const Uhura = require('uhura');
const { emitLine, errorFields, log, run, toPlain, isApplicationEvent } = require('./lib/driver-io');

const argv = process.argv.slice(2);
const target = argv.find((a) => !a.startsWith('--'));
const autoReconnect = argv.includes('--reconnect');
let echo = argv.includes('--echo');
let trace = argv.includes('--trace');

if (!target) {
  emitLine({ type: 'error', source: 'driver', message: 'usage: node uhura-client.js PORT_OR_PATH [--reconnect] [--echo] [--trace]' });
  process.exit(2);
}

// Uhura.createClient connects synchronously (it emits its first 'connect' before returning),
// so the hooks go on the prototype before the client exists.
const proto = Uhura.Client.prototype;

const baseAttach = proto.attach;
proto.attach = function (stream) {
  const result = baseAttach.call(this, stream);
  this.parser.prependListener('data', (element) => {
    if (trace) emitLine({ type: 'recv', element: toPlain(element) });
  });
  return result;
};

const baseSend = proto._send;
proto._send = function (data) {
  if (trace) emitLine({ type: 'sent', element: toPlain(data) });
  return baseSend.call(this, data);
};

// set() emits '_set' locally before sending it; only a '_set' from the wire is reported.
const baseSet = proto.set;
proto.set = function () {
  this.__localSet = true;
  try {
    return baseSet.apply(this, arguments);
  } finally {
    this.__localSet = false;
  }
};

// 'connect' is emitted twice per connection: locally when the socket is attached (no
// argument) and when the server's connect element arrives (its feature config).
const baseEmit = proto.emit;
proto.emit = function (name, ...args) {
  const application = isApplicationEvent(name);
  if (name === 'connect') {
    emitLine({ type: 'connect', config: args.length > 0 ? toPlain(args[0]) : null, session: toPlain(this.get()) });
  } else if (name === '_set') {
    if (!this.__localSet) emitLine({ type: 'set', args: toPlain(args) });
  } else if (name === 'invalidateSession') {
    emitLine({ type: 'invalidateSession' });
  } else if (name === 'disconnect') {
    emitLine({ type: 'disconnect' });
  } else if (name === 'error') {
    emitLine(Object.assign({ type: 'error' }, errorFields(args[0])));
  } else if (application) {
    emitLine({ type: 'event', event: name, args: toPlain(args) });
  }
  const result = baseEmit.apply(this, arguments);
  if (application && echo) this.send(name, ...args);
  return result;
};

const client = /^\d+$/.test(target)
  ? Uhura.createClient(Number(target), '127.0.0.1')
  : Uhura.createClient({ path: target });
if (autoReconnect) client.autoReconnect();

let exiting = false;
function shutdown() {
  if (exiting) return;
  exiting = true;
  client._reconnect = false;
  if (client._timer) clearTimeout(client._timer);
  try { client.socket.destroy(); } catch (_) { /* already gone */ }
  process.exit(0);
}

run({
  send(command) {
    const args = Array.isArray(command.args) ? command.args.slice() : [];
    if (command.ack !== undefined && command.ack !== null) {
      const tag = command.ack;
      args.push(() => emitLine({ type: 'ack', tag }));
    }
    client.send(command.event, ...args);
  },
  set(command) {
    if (command.key !== null && typeof command.key === 'object') client.set(command.key);
    else client.set(command.key, command.value);
  },
  get(command) {
    emitLine({ type: 'get', tag: command.tag, session: toPlain(client.get()) });
  },
  disconnect() {
    client.disconnect();
  },
  reconnect() {
    client.reconnect();
  },
  echo(command) {
    echo = command.on !== false;
  },
  trace(command) {
    trace = command.on !== false;
  },
  exit() {
    shutdown();
  },
}, () => {
  log('stdin closed, exiting');
  shutdown();
});
