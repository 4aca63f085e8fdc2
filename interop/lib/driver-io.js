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
  if (err && err.code !== undefined) out.code = err.code;
  if (err && err.stack) out.stack = String(err.stack);
  return out;
}

function log(...parts) {
  process.stderr.write('[' + process.argv[1].split('/').pop() + '] ' + parts.join(' ') + '\n');
}

// Installs process-wide error reporting and the stdin command loop.
// handlers: { [cmd]: (command) => void }, onClose: () => void
function run(handlers, onClose) {
  process.on('uncaughtException', (err) => {
    emitLine(Object.assign({ type: 'error', source: 'uncaughtException' }, errorFields(err)));
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
      return;
    }
    const handler = command && handlers[command.cmd];
    if (!handler) {
      emitLine({ type: 'error', source: 'command', message: 'unknown command: ' + JSON.stringify(command && command.cmd), command });
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

// Names uhura uses for its own purposes; everything else is an application event.
const INTERNAL = new Set(['_set', 'start', 'connect', 'disconnect', 'error', 'invalidateSession', 'newListener', 'removeListener']);
function isApplicationEvent(name) {
  return !(INTERNAL.has(name) || (typeof name === 'string' && name.startsWith('ack::')));
}

module.exports = { emitLine, errorFields, log, run, toPlain, isApplicationEvent };
