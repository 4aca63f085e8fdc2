#!/usr/bin/env node
'use strict';
// A real Node @crussell52/socket-ipc@0.4.0 Client, driven by JSON-line commands on stdin and
// reporting JSON lines on stdout, so the Rx.Uhura tests can use it as a peer.
//
//   node socket-ipc-client.js SOCKET_FILE [RETRY_DELAY] [RECONNECT_DELAY] [--exit-on-uncaught]
//
// A delay is milliseconds ("50"), a JSON range ('{"min":10,"max":50}'), or "-" for the
// package's default. It calls connect() at once. The line formats are listed in README.md;
// what the package does on the wire and when it emits what is in SOCKET-IPC-NOTES.md.

const { Client } = require('@crussell52/socket-ipc');
const { acknowledged, emitDone, emitLine, errorFields, log, run } = require('./lib/driver-io');
const { ipcErrorFields, present } = require('./lib/socket-ipc-fields');

const usage = 'usage: node socket-ipc-client.js SOCKET_FILE [RETRY_DELAY] [RECONNECT_DELAY] [--exit-on-uncaught]';
const argv = process.argv.slice(2);
const positional = argv.filter((a) => !a.startsWith('--'));
const exitOnUncaught = argv.includes('--exit-on-uncaught');
const [socketFile, retryText, reconnectText] = positional;

if (!socketFile) {
  emitLine({ type: 'error', source: 'driver', message: usage });
  process.exit(2);
}

let client;
try {
  client = new Client({ socketFile, retryDelay: delay(retryText), reconnectDelay: delay(reconnectText) });
} catch (err) {
  // The constructor refuses an empty path or one that looks like a port.
  emitLine(Object.assign({ type: 'error', source: 'driver' }, errorFields(err)));
  process.exit(2);
}

function delay(text) {
  if (text === undefined || text === '-') return undefined;
  const value = text.trim().startsWith('{') ? JSON.parse(text) : Number(text);
  if (typeof value === 'number' && !Number.isFinite(value)) {
    emitLine({ type: 'error', source: 'driver', message: 'not a delay: ' + JSON.stringify(text) + '; ' + usage });
    process.exit(2);
  }
  return value;
}

client.on('connect', () => emitLine({ type: 'connect' }));
client.on('reconnect', () => emitLine({ type: 'reconnect' }));
client.on('connectError', (err) => emitLine(Object.assign({ type: 'connectError' }, ipcErrorFields(err))));
client.on('disconnect', () => emitLine({ type: 'disconnect' }));
client.on('close', () => emitLine({ type: 'close' }));
client.on('message', (message, topic) => {
  emitLine({ type: 'message', topic: present(topic), message: present(message) });
});
client.on('error', (err) => emitLine(Object.assign({ type: 'error', source: 'client' }, ipcErrorFields(err))));

client.connect();

let exiting = false;
function shutdown() {
  if (exiting) return;
  exiting = true;
  // Like a process that dies: no close(), the OS drops the socket.
  process.exit(0);
}

run(Object.assign(acknowledged({
  send(command) {
    client.send(command.topic, command.message);
  },
  close() {
    client.close();
  },
  // A second connect(): the package throws.
  connect() {
    client.connect();
  },
}), {
  exit(command) {
    emitDone(command, true);
    shutdown();
  },
}), () => {
  log('stdin closed, exiting');
  shutdown();
}, { exitOnUncaught, acknowledge: true });
