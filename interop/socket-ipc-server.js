#!/usr/bin/env node
'use strict';
// A real Node @crussell52/socket-ipc@0.4.0 Server, driven by JSON-line commands on stdin and
// reporting JSON lines on stdout, so the Rx.Uhura tests can use it as a peer.
//
//   node socket-ipc-server.js SOCKET_FILE [--exit-on-uncaught]
//
// It calls listen() at once. The line formats are listed in README.md; what the package does
// on the wire and when it emits what is in SOCKET-IPC-NOTES.md.

const fs = require('fs');
const { Server } = require('@crussell52/socket-ipc');
const { acknowledged, emitDone, emitLine, errorFields, log, run } = require('./lib/driver-io');
const { ipcErrorFields, present } = require('./lib/socket-ipc-fields');

const argv = process.argv.slice(2);
const socketFile = argv.find((a) => !a.startsWith('--'));
const exitOnUncaught = argv.includes('--exit-on-uncaught');

if (!socketFile) {
  emitLine({ type: 'error', source: 'driver', message: 'usage: node socket-ipc-server.js SOCKET_FILE [--exit-on-uncaught]' });
  process.exit(2);
}

let server;
try {
  server = new Server({ socketFile });
} catch (err) {
  // The constructor refuses an empty path or one that looks like a port.
  emitLine(Object.assign({ type: 'error', source: 'driver' }, errorFields(err)));
  process.exit(2);
}

server.on('listening', () => {
  emitLine({ type: 'listening', socketFile, mode: fileMode(socketFile) });
});

server.on('connection', (clientId, socket) => {
  emitLine({ type: 'connection', clientId });
  // The package has no per-client close event; the raw socket it hands out says when the
  // client is gone (the package forgets the id on the socket's 'end' or 'close').
  // No 'error' listener goes on the socket: the package adds none either, and one here would
  // hide what a plain Node server does with a client socket error.
  socket.on('close', (hadError) => emitLine({ type: 'connectionClose', clientId, hadError }));
});

server.on('message', (message, topic, clientId) => {
  emitLine({ type: 'message', topic: present(topic), message: present(message), clientId });
});

// The package passes the client id as a second argument for errors from a client's data.
server.on('error', (err, clientId) => {
  const line = Object.assign({ type: 'error', source: 'server' }, ipcErrorFields(err));
  if (clientId !== undefined) line.clientId = clientId;
  emitLine(line);
});

server.on('close', () => emitLine({ type: 'close' }));

server.listen();

// "0755"-style permission bits of the socket file, or null when it cannot be read.
function fileMode(path) {
  try {
    return (fs.statSync(path).mode & 0o7777).toString(8).padStart(4, '0');
  } catch (_) {
    return null;
  }
}

let exiting = false;
function shutdown() {
  if (exiting) return;
  exiting = true;
  // Like a process that dies: no close(), the OS drops the sockets, the socket file stays.
  process.exit(0);
}

run(Object.assign(acknowledged({
  send(command) {
    server.send(command.topic, command.message, command.clientId);
  },
  broadcast(command) {
    server.broadcast(command.topic, command.message);
  },
  close() {
    server.close();
  },
  // A second listen(): the package throws.
  listen() {
    server.listen();
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
