'use strict';
// Shared plumbing for the uhura driver scripts: one JSON object per stdout line,
// JSON-line commands from stdin, diagnostics on stderr, and no silent crashes.

const readline = require('readline');

// Turns anything (including values JSON cannot express, cycles, Errors) into
// something JSON.stringify accepts, so a report line is never lost.
function toPlain(value) {
  if (value === undefined) return null;
  try {
    const json = JSON.stringify(value);
    return json === undefined ? null : JSON.parse(json);
  } catch (err) {
    return { unserializable: String(err && err.message) };
  }
}

function emitLine(obj) {
  let line;
  try {
    line = JSON.stringify(obj);
  } catch (err) {
    line = JSON.stringify({ type: 'error', source: 'driver', message: 'cannot serialize report: ' + err.message });
  }
  // stdout to a pipe is synchronous on Linux, so each line leaves the process at once.
  process.stdout.write(line + '\n');
}

function errorFields(err) {
  const out = { message: err && err.message !== undefined ? String(err.message) : String(err) };
  // err.name is often just "Error" for subclasses; the constructor's name is the class.
  if (err && err.name !== undefined) out.name = String(err.name);
  if (err && err.constructor && err.constructor.name) out.class = err.constructor.name;
  if (err && err.code !== undefined) out.code = err.code;
  if (err && err.stack) out.stack = String(err.stack);
  return out;
}

function log(...parts) {
  process.stderr.write('[' + process.argv[1].split('/').pop() + '] ' + parts.join(' ') + '\n');
}

// Installs process-wide error reporting and the stdin command loop.
// handlers: { [cmd]: (command) => void }, onClose: () => void
// options.exitOnUncaught: after reporting an uncaught exception, exit with code 1 as a plain
// Node process would (by default the driver reports it and lives on).
// options.acknowledge: a line that is not a known command also gets a "done" line (ok false),
// for drivers whose handlers are wrapped with acknowledged().
function run(handlers, onClose, options) {
  const exitOnUncaught = Boolean(options && options.exitOnUncaught);
  const acknowledge = Boolean(options && options.acknowledge);
  process.on('uncaughtException', (err) => {
    emitLine(Object.assign({ type: 'error', source: 'uncaughtException' }, errorFields(err)));
    if (exitOnUncaught) process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    emitLine(Object.assign({ type: 'error', source: 'unhandledRejection' }, errorFields(err)));
  });
  // A reader that went away must not turn into an endless EPIPE loop.
  process.stdout.on('error', (err) => {
    if (err && err.code === 'EPIPE') process.exit(0);
  });

  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  rl.on('line', (line) => {
    if (!line.trim()) return;
    let command;
    try {
      command = JSON.parse(line);
    } catch (err) {
      emitLine({ type: 'error', source: 'command', message: 'invalid JSON command: ' + err.message, line });
      if (acknowledge) emitLine({ type: 'done', cmd: null, ok: false });
      return;
    }
    // Own properties only: "toString" or "constructor" is not a command.
    const handler = command && Object.prototype.hasOwnProperty.call(handlers, command.cmd) ? handlers[command.cmd] : undefined;
    if (!handler) {
      emitLine({ type: 'error', source: 'command', message: 'unknown command: ' + JSON.stringify(command && command.cmd), command });
      if (acknowledge) emitDone(command !== null && typeof command === 'object' ? command : { cmd: null }, false);
      return;
    }
    try {
      handler(command);
    } catch (err) {
      emitLine(Object.assign({ type: 'error', source: 'command', command }, errorFields(err)));
    }
  });
  rl.on('close', () => onClose());
}

// Wraps command handlers so that each command, carried out or failed, is followed by
// {"type":"done","cmd":NAME,"ok":BOOL} (plus the command's "id" when it has one, plus the fields of
// an object the handler returns, e.g. {result: ...}). Everything the
// handler caused synchronously (events the package emits inside the call, an error line when the
// handler threw) is printed before that line, so a caller can wait on it.
function acknowledged(handlers) {
  const wrapped = {};
  for (const name of Object.keys(handlers)) {
    wrapped[name] = (command) => {
      let ok = false;
      let extra;
      try {
        extra = handlers[name](command);
        ok = true;
      } catch (err) {
        emitLine(Object.assign({ type: 'error', source: 'command', command }, errorFields(err)));
      }
      emitDone(command, ok, extra !== null && typeof extra === 'object' ? extra : undefined);
    };
  }
  return wrapped;
}

// The acknowledgement line itself, for a handler that ends the process before returning.
// extra: further fields for the line (e.g. a call's return value), never overriding type/cmd/ok/id.
function emitDone(command, ok, extra) {
  const done = { type: 'done', cmd: command.cmd, ok };
  if (command.id !== undefined) done.id = command.id;
  for (const key of Object.keys(extra || {})) {
    if (!Object.prototype.hasOwnProperty.call(done, key)) done[key] = extra[key];
  }
  emitLine(done);
}

// Names uhura uses for its own purposes; everything else is an application event.
const INTERNAL = new Set(['_set', 'start', 'connect', 'disconnect', 'error', 'invalidateSession', 'newListener', 'removeListener']);
function isApplicationEvent(name) {
  return !(INTERNAL.has(name) || (typeof name === 'string' && name.startsWith('ack::')));
}

module.exports = { acknowledged, emitDone, emitLine, errorFields, log, run, toPlain, isApplicationEvent };
