#!/usr/bin/env node
'use strict';
// The original Node uhura package (npm uhura@0.1.2) as a contender: server in a forked
// child, client in this process, loopback 127.0.0.1, port 0. See README.md.
//
//   node node-uhura.js throughput N [--nodelay]
//   node node-uhura.js rtt N [--budget S] [--nodelay]

const { HOST, log, finish, fail, guard, startServer, childGuard, rttSummary, positiveInt, unknownMode } = require('./lib/harness');

const WINDOW = 1000;          // throughput: most unacked sends in flight (as for socket.io)
const THROUGHPUT_WARMUP = 100; // small: the package slows down with the number in flight
// With one element in flight each uhura round trip waits on Nagle + delayed ACK (about
// 88 ms per round trip on Linux loopback), so a warm-up of 1,000 would take 90 s: keep it
// short and bound the measured part by time as well as by N.
const RTT_WARMUP = 10;
const RTT_STALL_MS = 2000;
const RTT_BUDGET_S = 30;      // default for --budget S: stop measuring after S seconds
// --nodelay: not how the package ships (it never calls setNoDelay); for diagnosis only.
let noDelay = false;

if (process.argv[2] === '--server-child') {
  runServer(process.argv.slice(3));
} else {
  main().catch((err) => fail(String(err && err.stack || err)));
}

// ---------------------------------------------------------------- server (child process)

function runServer(args) {
  childGuard();
  const Uhura = require('uhura');
  const [mode, nArg] = args;
  const n = Number(nArg);
  const serverNoDelay = args.includes('--nodelay');
  let seen = 0;

  const server = Uhura.createServer((con) => {
    con.setMaxListeners(0);
    if (serverNoDelay) con.socket.setNoDelay(true);
    con.on('warm', () => {});
    con.on('ping', (i) => {
      if (mode === 'rtt') {
        con.send('pong', i);
        return;
      }
      // uhura acks every object-mode element with an id itself, before emitting it.
      seen++;
      if (seen === n) process.send({ type: 'done', seen });
    });
  });
  server.on('error', (err) => {
    process.send({ type: 'error', message: String(err && err.stack || err) });
    process.exit(1);
  });
  server.listen(0, HOST, () => process.send({ type: 'listening', port: server.address().port }));
}

// ---------------------------------------------------------------- client (this process)

function connectClient(port) {
  const Uhura = require('uhura');
  return new Promise((resolve, reject) => {
    const client = Uhura.createClient(port, HOST);
    client.setMaxListeners(0); // one 'disconnect' listener per unacked send
    client.on('error', reject);
    if (noDelay) client.socket.setNoDelay(true);
    // uhura emits a local 'connect' (no config) as soon as the socket is attached; only the
    // server's 'connect' element (with its config) turns on object mode and acks.
    const onConnect = (config) => {
      if (!config) return;
      client.removeListener('connect', onConnect);
      resolve(client);
    };
    client.on('connect', onConnect);
  });
}

async function main() {
  guard();
  const [mode, ...rest] = process.argv.slice(2);
  noDelay = rest.includes('--nodelay');
  const positional = rest.filter((a, k) => !a.startsWith('--') && rest[k - 1] !== '--budget');
  const budgetAt = rest.indexOf('--budget');
  const budget = budgetAt >= 0 ? positiveInt(rest[budgetAt + 1], 'budget') : RTT_BUDGET_S;
  if (mode === 'throughput') return throughput(positiveInt(positional[0], 'N'));
  if (mode === 'rtt') return rtt(positiveInt(positional[0], 'N'), budget);
  unknownMode(mode, 'usage: node node-uhura.js throughput N [--nodelay] | rtt N [--budget S] [--nodelay]');
}

function ackedRun(client, event, total, onProgress) {
  return new Promise((resolve) => {
    let sent = 0;
    let acked = 0;
    const step = Math.max(1, Math.floor(total / 10));
    const onAck = () => {
      acked++;
      if (onProgress && acked % step === 0) onProgress(acked);
      if (acked === total) resolve();
      else pump();
    };
    function pump() {
      while (sent < total && sent - acked < WINDOW) client.send(event, sent++, onAck);
    }
    pump();
  });
}

async function throughput(n) {
  let serverDone;
  const serverSawAll = new Promise((resolve) => { serverDone = resolve; });
  const { port } = await startServer(__filename, ['throughput', String(n)].concat(noDelay ? ['--nodelay'] : []), (msg) => {
    if (msg.type === 'done') serverDone(process.hrtime.bigint());
  });
  const client = await connectClient(port);
  log('uhura throughput: connected to port ' + port + ', warm-up ' + THROUGHPUT_WARMUP + ' acked sends');
  await ackedRun(client, 'warm', THROUGHPUT_WARMUP);

  log('measuring ' + n + ' acked sends');
  const start = process.hrtime.bigint();
  await ackedRun(client, 'ping', n, (k) => log('  acked ' + k + '/' + n));
  const clientDoneAt = process.hrtime.bigint();
  const serverAt = await serverSawAll;
  const end = clientDoneAt > serverAt ? clientDoneAt : serverAt;
  const seconds = Number(end - start) / 1e9;
  log('done in ' + seconds.toFixed(3) + ' s');
  client.disconnect();
  finish({ eventsPerSecond: Math.round(n / seconds), n });
}

async function rtt(n, budgetS) {
  const { port } = await startServer(__filename, ['rtt', String(n)].concat(noDelay ? ['--nodelay'] : []), () => {});
  const client = await connectClient(port);
  log('uhura rtt: connected to port ' + port + ', warm-up ' + RTT_WARMUP + ', then ' + n + ' round trips');
  const total = RTT_WARMUP + n;
  const samples = [];
  let i = 0;
  let sentAt = 0n;
  let stallTimer = null;
  let stalled = false;
  let overBudget = false;
  let deadline = null; // hrtime at which measuring stops, set when the warm-up ends
  const step = Math.max(1, Math.floor(n / 10));
  let lastLog = Date.now();

  await new Promise((resolve) => {
    const armStall = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => {
        stalled = true;
        log('stalled: no pong within ' + RTT_STALL_MS + ' ms after ' + i + ' round trips (' +
          Math.max(0, i - RTT_WARMUP) + ' measured)');
        resolve();
      }, RTT_STALL_MS);
    };
    client.on('pong', () => {
      if (stalled) return;
      const now = process.hrtime.bigint();
      if (i >= RTT_WARMUP) {
        samples.push(now - sentAt);
        if (samples.length % step === 0 || Date.now() - lastLog > 5000) {
          lastLog = Date.now();
          log('  ' + samples.length + '/' + n + ', p50 so far ' + rttSummary(samples).p50us + ' us');
        }
      }
      i++;
      if (i === RTT_WARMUP) deadline = now + BigInt(budgetS) * 1000000000n;
      if (i === total) { clearTimeout(stallTimer); resolve(); return; }
      if (deadline !== null && now >= deadline) {
        overBudget = true;
        log('time budget of ' + budgetS + ' s used up after ' + samples.length + ' of ' + n + ' measured round trips');
        clearTimeout(stallTimer);
        resolve();
        return;
      }
      ping();
    });
    function ping() {
      armStall();
      sentAt = process.hrtime.bigint();
      client.send('ping', i);
    }
    ping();
  });
  try { client.disconnect(); } catch (_) { /* socket already gone */ }
  const result = Object.assign(rttSummary(samples), { n: samples.length });
  if (stalled) result.stalled = true;
  if (overBudget) result.budgetExceeded = true;
  finish(result);
}
