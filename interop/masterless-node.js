#!/usr/bin/env node
'use strict';
// One real Node masterless@0.4.1 node (a Server: it listens and connects out), driven by JSON-line
// commands on stdin and reporting JSON lines on stdout, so the Rx.Uhura tests can use it as a peer.
//
//   node masterless-node.js NODE_ID LISTEN_HOST LISTEN_PORT [--exit-on-uncaught] [--debug] [--no-shim]
//
// LISTEN_HOST "-" lets the package listen on every interface (its default); LISTEN_PORT 0 picks a
// free port (the "listening" line tells which). --debug turns on the package's own `debug` output
// (DEBUG=masterless,masterless:heartbeat) on stderr. --no-shim leaves process.hrtime alone, to see
// the package's heartbeat crash on current Node. The line formats are in README.md; what the package
// does on the wire and when it emits what is in MASTERLESS-NOTES.md.

const { acknowledged, emitDone, emitLine, errorFields, log, run } = require('./lib/driver-io');

const usage = 'usage: node masterless-node.js NODE_ID LISTEN_HOST|- LISTEN_PORT [--exit-on-uncaught] [--debug] [--no-shim]';
const argv = process.argv.slice(2);
const positional = argv.filter((a) => !a.startsWith('--'));
const exitOnUncaught = argv.includes('--exit-on-uncaught');
const [nodeId, hostText, portText] = positional;
const port = Number(portText);

if (!nodeId || hostText === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
  emitLine({ type: 'error', source: 'driver', message: usage });
  process.exit(2);
}

// The package's heartbeat calls process.hrtime(node.lastSend) every second for every known node,
// and lastSend is [] until something was sent to that node through send() or keep(). Node 0.10 read
// the missing tuple entries as 0 and returned the current time; current Node throws ERR_OUT_OF_RANGE
// (an uncaught exception from a timer: the process dies about a second after a peer's id arrives).
// The shim restores the old answer. It must be in place before the package is loaded.
if (!argv.includes('--no-shim')) {
  const realHrtime = process.hrtime;
  const shimmed = function hrtime(time) {
    return Array.isArray(time) && time.length === 0 ? realHrtime.call(process) : realHrtime.call(process, time);
  };
  shimmed.bigint = realHrtime.bigint;
  process.hrtime = shimmed;
}

if (argv.includes('--debug')) {
  // debug@1.0.5 reads DEBUG once, when the package requires it.
  process.env.DEBUG = 'masterless,masterless:heartbeat';
}

const Server = require('masterless');

const options = { port };
if (hostText !== '-') options.host = hostText;

let server;
try {
  server = new Server(nodeId, options);
} catch (err) {
  emitLine(Object.assign({ type: 'error', source: 'driver' }, errorFields(err)));
  process.exit(2);
}

// The package puts no listener on its net.Server: a failed listen (EADDRINUSE, a bad host) would be
// an uncaught exception. Report it and exit 1, as the other drivers do after a failed listen.
server._server.on('error', (err) => {
  emitLine(Object.assign({ type: 'error', source: 'listen' }, errorFields(err)));
  process.exit(1);
});

server.on('listening', (info) => {
  const address = server._server.address();
  emitLine({ type: 'listening', info, host: address.address, port: address.port });
});
server.on('connect', (id, info) => emitLine({ type: 'connect', id, info }));
server.on('disconnect', (id) => emitLine({ type: 'disconnect', id }));
server.on('message', (from, packet) => emitLine({ type: 'message', from, packet }));
// masterless@0.4.1 never emits 'error' itself; a listener costs nothing and would catch a later one.
server.on('error', (err) => emitLine(Object.assign({ type: 'error', source: 'server' }, errorFields(err))));

let exiting = false;
function shutdown() {
  if (exiting) return;
  exiting = true;
  // Like a process that dies: no close(), the OS drops the sockets.
  process.exit(0);
}

run(Object.assign(acknowledged({
  // server.connect(uri, callback). The callback runs once per attempt, when its handshake is confirmed
  // (error null, the remote id) or the attempt fails (error message, id null); a self-connection
  // closed by the remote end reports "connection closed".
  connect(command) {
    const uri = command.uri;
    server.connect(uri, (err, id) => {
      emitLine({ type: 'connectResult', uri, error: err ? String(err.message) : null, remoteId: err ? null : id });
    });
  },
  // The package's return value: true/false for one id, the number of known nodes for an array.
  send(command) {
    return { result: server.send(command.to, command.packet) };
  },
  // keep and disconnect name the node in "id" (so their done line repeats it). "value" absent keeps
  // (the package's default); present, it is passed through as is.
  keep(command) {
    if (Object.prototype.hasOwnProperty.call(command, 'value')) {
      server.keep(command.id, command.value);
    } else {
      server.keep(command.id);
    }
    return { kept: server.isKept(command.id) };
  },
  disconnect(command) {
    server.disconnect(command.id);
  },
  // Ids of the nodes the package knows (stable, handshaking or reconnecting) and its info().
  state() {
    return { connections: server.connections(), info: server.info() };
  },
  close() {
    server.close(() => emitLine({ type: 'closed' }));
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
