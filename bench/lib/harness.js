'use strict';
// Shared plumbing for the bench scripts: the global timeout, the forked server child,
// progress on stderr and the single JSON result line on stdout.

const { fork } = require('child_process');

const GLOBAL_TIMEOUT_MS = 120000;
const HOST = '127.0.0.1';

let child = null;
let finished = false;

function log(...args) {
  process.stderr.write('[' + new Date().toISOString().slice(11, 23) + '] ' + args.join(' ') + '\n');
}

function killChild() {
  if (child && child.exitCode === null && child.signalCode === null) {
    try { child.kill('SIGKILL'); } catch (_) { /* already gone */ }
  }
}

// Print the one result line, take the server down and exit.
function finish(result, code = 0) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(result) + '\n', () => {
    killChild();
    process.exit(code);
  });
}

function fail(message) {
  log('error:', message);
  finish({ error: message }, 1);
}

// Call first thing in the parent: bounded run, no orphans.
function guard() {
  const timer = setTimeout(() => finish({ error: 'timeout' }, 1), GLOBAL_TIMEOUT_MS);
  timer.unref();
  process.on('exit', killChild);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => { killChild(); process.exit(1); });
  }
  process.on('uncaughtException', (err) => fail('uncaughtException: ' + (err && err.stack || err)));
  process.on('unhandledRejection', (err) => fail('unhandledRejection: ' + (err && err.stack || err)));
}

// Fork the server side (the same script with a --server-child argument) and resolve with
// { child, port } once it listens. Messages from the child after that go to onMessage.
function startServer(script, args, onMessage) {
  return new Promise((resolve, reject) => {
    child = fork(script, ['--server-child', ...args], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.once('error', reject);
    child.on('exit', (code, signal) => {
      if (!finished) fail('server child exited early (code ' + code + ', signal ' + signal + ')');
    });
    child.on('message', (msg) => {
      if (msg && msg.type === 'listening') {
        resolve({ child, port: msg.port });
      } else if (msg && msg.type === 'error') {
        fail('server: ' + msg.message);
      } else {
        onMessage(msg);
      }
    });
  });
}

// Call first thing in the server child: it dies with its parent, and never outlives the
// global timeout even if the parent was SIGKILLed.
function childGuard() {
  process.on('disconnect', () => process.exit(0));
  setTimeout(() => process.exit(1), GLOBAL_TIMEOUT_MS + 5000).unref();
  process.on('uncaughtException', (err) => {
    try { process.send({ type: 'error', message: String(err && err.stack || err) }); } catch (_) { /* parent gone */ }
    process.exit(1);
  });
}

// Every scenario of the comparison run. A script asked for one it does not implement answers
// {"unsupported":"<scenario>"} with exit code 3, so the harness reports it as missing, never as zero;
// anything else it does not know is bad usage (exit 2).
const SCENARIOS = ['throughput', 'rtt', 'fanout', 'idle-memory', 'allocations'];

function unknownMode(mode, usage) {
  if (SCENARIOS.includes(mode)) {
    log(mode + ': not implemented by this contender');
    finish({ unsupported: mode }, 3);
    return;
  }
  process.stderr.write(usage + '\n');
  finish({ error: 'usage' }, 2);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

// Round-trip samples in nanoseconds (BigInt) -> { p50us, p99us } in microseconds.
function rttSummary(samplesNs) {
  const us = samplesNs.map((ns) => Number(ns) / 1000).sort((a, b) => a - b);
  const round = (x) => (x === null ? null : Math.round(x * 10) / 10);
  return { p50us: round(percentile(us, 50)), p99us: round(percentile(us, 99)) };
}

function positiveInt(value, name) {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    log('bad ' + name + ': ' + JSON.stringify(value));
    process.stdout.write(JSON.stringify({ error: 'bad argument ' + name }) + '\n');
    process.exit(2);
  }
  return n;
}

module.exports = { HOST, log, finish, fail, guard, startServer, childGuard, rttSummary, positiveInt, unknownMode };
