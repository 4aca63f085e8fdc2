#!/usr/bin/env node
'use strict';
// A real Node uhura@0.1.2 server, driven by JSON-line commands on stdin and reporting
// JSON lines on stdout, so the Rx.Uhura tests can use it as a peer.
//
//   node uhura-server.js [UNIX_SOCKET_PATH] [--echo] [--trace]
//
// Without a path it listens on 127.0.0.1, port 0. The line formats are listed in README.md.

const fs = require('fs');
const Uhura = require('uhura');
// The same module instance uhura's server uses (Node caches modules by resolved path).
const Connection = require('uhura/lib/connection');
const { emitLine, errorFields, log, run, toPlain, isApplicationEvent } = require('./lib/driver-io');

const argv = process.argv.slice(2);
const path = argv.find((a) => !a.startsWith('--'));
let echo = argv.includes('--echo');
let trace = argv.includes('--trace');

const connections = new Map(); // id -> Connection
let greeting = null; // { event, args, ack } sent from inside the connect callback
let nextId = 1;

// Connection's constructor attaches the socket first thing, so patching attach gives
// every connection an id before it can receive or emit anything.
const baseAttach = Connection.prototype.attach;
Connection.prototype.attach = function (stream) {
  if (this.__rxId === undefined) {
    this.__rxId = nextId++;
    connections.set(this.__rxId, this);
    emitLine({ type: 'accept', conn: this.__rxId });
  }
  const result = baseAttach.call(this, stream);
  const con = this;
  this.parser.prependListener('data', (element) => {
    if (trace) emitLine({ type: 'recv', conn: con.__rxId, element: toPlain(element) });
  });
  return result;
};

const baseSend = Connection.prototype._send;
Connection.prototype._send = function (data) {
  if (trace) emitLine({ type: 'sent', conn: this.__rxId, element: toPlain(data) });
  return baseSend.call(this, data);
};

// set() emits '_set' locally before sending it; only a '_set' from the wire is reported.
const baseSet = Connection.prototype.set;
Connection.prototype.set = function () {
  this.__localSet = true;
  try {
    return baseSet.apply(this, arguments);
  } finally {
    this.__localSet = false;
  }
};

// Every event the connection sees passes through emit: from the wire (application events,
// '_set', 'start', 'ack::<id>') and from uhura itself ('connect', 'disconnect', 'error').
const baseEmit = Connection.prototype.emit;
Connection.prototype.emit = function (name, ...args) {
  const conn = this.__rxId;
  const application = isApplicationEvent(name);
  if (name === '_set') {
    if (!this.__localSet) emitLine({ type: 'set', conn, args: toPlain(args) });
  } else if (name === 'start') {
    emitLine({ type: 'start', conn, config: toPlain(args[0]) });
  } else if (name === 'disconnect') {
    emitLine({ type: 'disconnect', conn });
  } else if (name === 'error') {
    emitLine(Object.assign({ type: 'error', conn }, errorFields(args[0])));
  } else if (application) {
    emitLine({ type: 'event', conn, event: name, args: toPlain(args) });
  }
  const result = baseEmit.apply(this, arguments);
  if (application && echo) this.send(name, ...args);
  return result;
};

const server = Uhura.createServer((con, resumed) => {
  emitLine({ type: 'connect', conn: con.__rxId, resumed: resumed === true, session: toPlain(con.get()) });
  // What a Node application typically does: send from the callback, i.e. before uhura
  // writes its own connect element.
  if (greeting) sendFrom(con, greeting);
});

server.on('error', (err) => {
  emitLine(Object.assign({ type: 'error', source: 'server' }, errorFields(err)));
  process.exit(1);
});

if (path) {
  try {
    if (fs.statSync(path).isSocket()) fs.unlinkSync(path);
  } catch (_) { /* no stale socket */ }
  server.listen(path, () => emitLine({ type: 'listening', path }));
} else {
  server.listen(0, '127.0.0.1', () => emitLine({ type: 'listening', port: server.address().port }));
}

function connection(command) {
  const con = connections.get(command.conn);
  if (!con) throw new Error('no connection ' + JSON.stringify(command.conn));
  return con;
}

let exiting = false;
function shutdown() {
  if (exiting) return;
  exiting = true;
  for (const con of connections.values()) {
    try { con.socket.destroy(); } catch (_) { /* already gone */ }
  }
  try { server.close(); } catch (_) { /* not listening */ }
  process.exit(0);
}

function sendFrom(con, command) {
  const args = Array.isArray(command.args) ? command.args.slice() : [];
  if (command.ack !== undefined && command.ack !== null) {
    const tag = command.ack;
    args.push(() => emitLine({ type: 'ack', conn: con.__rxId, tag }));
  }
  con.send(command.event, ...args);
}

run({
  send(command) {
    sendFrom(connection(command), command);
  },
  greet(command) {
    greeting = command.event === undefined || command.event === null ? null : command;
  },
  set(command) {
    const con = connection(command);
    if (command.key !== null && typeof command.key === 'object') con.set(command.key);
    else con.set(command.key, command.value);
  },
  get(command) {
    emitLine({ type: 'get', conn: command.conn, tag: command.tag, session: toPlain(connection(command).get()) });
  },
  invalidate(command) {
    connection(command).invalidateSession();
  },
  destroy(command) {
    connection(command).socket.destroy();
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
