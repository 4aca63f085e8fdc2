#!/usr/bin/env node
'use strict';
// Socket.IO 4 contender: server in a forked child, client(s) in this process, websocket
// transport only, loopback 127.0.0.1, port 0. See README.md for arguments and output.
//
//   node socketio.js throughput N [--no-ack]
//   node socketio.js rtt N
//   node socketio.js fanout C M

const { HOST, log, finish, fail, guard, startServer, childGuard, rttSummary, positiveInt, unknownMode } = require('./lib/harness');

const WINDOW = 1000;          // throughput: most unacked emits in flight
const THROUGHPUT_WARMUP = 1000;
const RTT_WARMUP = 1000;
const FANOUT_WARMUP = 10;     // broadcasts before the measured ones
const RTT_STALL_MS = 2000;

if (process.argv[2] === '--server-child') {
  runServer(process.argv.slice(3));
} else {
  main().catch((err) => fail(String(err && err.stack || err)));
}

// ---------------------------------------------------------------- server (child process)

function runServer(args) {
  childGuard();
  const http = require('http');
  const { Server } = require('socket.io');
  const [mode, nArg] = args;
  const n = Number(nArg);

  const httpServer = http.createServer();
  const io = new Server(httpServer, { transports: ['websocket'], serveClient: false });
  let seen = 0;
  let connected = 0;

  io.on('connection', (socket) => {
    connected++;
    if (mode === 'fanout') process.send({ type: 'connected', count: connected });
    socket.on('warm', (i, ack) => { if (typeof ack === 'function') ack(); });
    socket.on('ping', (i, ack) => {
      if (mode === 'rtt') {
        socket.emit('pong', i);
        return;
      }
      seen++;
      if (typeof ack === 'function') ack();
      if (seen === n) process.send({ type: 'done', seen });
    });
  });

  process.on('message', (msg) => {
    if (msg && msg.type === 'broadcast') {
      for (let i = 0; i < msg.m; i++) io.emit(msg.event, i);
    }
  });

  httpServer.listen(0, HOST, () => process.send({ type: 'listening', port: httpServer.address().port }));
}

// ---------------------------------------------------------------- client (this process)

function connectClient(port) {
  const { io } = require('socket.io-client');
  return new Promise((resolve, reject) => {
    // forceNew: without it socket.io-client shares one Manager (one websocket) per URL.
    const socket = io('http://' + HOST + ':' + port, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
    });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => reject(err));
  });
}

async function main() {
  guard();
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === 'throughput') return throughput(positiveInt(rest.find((a) => !a.startsWith('--')), 'N'), !rest.includes('--no-ack'));
  if (mode === 'rtt') return rtt(positiveInt(rest[0], 'N'));
  if (mode === 'fanout') return fanout(positiveInt(rest[0], 'C'), positiveInt(rest[1], 'M'));
  unknownMode(mode, 'usage: node socketio.js throughput N [--no-ack] | rtt N | fanout C M');
}

// Emit `total` events with acks, at most WINDOW unacked; resolves when every ack arrived.
function ackedRun(socket, event, total, onProgress) {
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
      while (sent < total && sent - acked < WINDOW) socket.emit(event, sent++, onAck);
    }
    pump();
  });
}

// Emit `total` events without acks, WINDOW per turn of the event loop.
function unackedRun(socket, event, total) {
  return new Promise((resolve) => {
    let sent = 0;
    (function batch() {
      const end = Math.min(total, sent + WINDOW);
      while (sent < end) socket.emit(event, sent++);
      if (sent < total) setImmediate(batch);
      else resolve();
    })();
  });
}

async function throughput(n, withAck) {
  let serverDone;
  const serverSawAll = new Promise((resolve) => { serverDone = resolve; });
  const { port } = await startServer(__filename, ['throughput', String(n)], (msg) => {
    if (msg.type === 'done') serverDone(process.hrtime.bigint());
  });
  const socket = await connectClient(port);
  log('socket.io throughput: connected to port ' + port + ', warm-up ' + THROUGHPUT_WARMUP + ' acked emits');
  await ackedRun(socket, 'warm', THROUGHPUT_WARMUP);

  log('measuring ' + n + (withAck ? ' acked' : ' unacked') + ' emits');
  const start = process.hrtime.bigint();
  let clientDoneAt;
  if (withAck) {
    await ackedRun(socket, 'ping', n, (k) => log('  acked ' + k + '/' + n));
    clientDoneAt = process.hrtime.bigint();
  } else {
    await unackedRun(socket, 'ping', n);
    log('  all ' + n + ' emitted, waiting for the server');
  }
  const serverAt = await serverSawAll;
  // The server's 'done' arrives over IPC; with acks the clock stops at whichever of
  // (last ack, server saw all) is later, as observed in this process.
  const end = withAck && clientDoneAt > serverAt ? clientDoneAt : serverAt;
  const seconds = Number(end - start) / 1e9;
  socket.close();
  const result = { eventsPerSecond: Math.round(n / seconds), n };
  log('done in ' + seconds.toFixed(3) + ' s');
  finish(result);
}

async function rtt(n) {
  const { port } = await startServer(__filename, ['rtt', String(n)], () => {});
  const socket = await connectClient(port);
  log('socket.io rtt: connected to port ' + port + ', warm-up ' + RTT_WARMUP + ', then ' + n + ' round trips');
  const total = RTT_WARMUP + n;
  const samples = [];
  let i = 0;
  let sentAt = 0n;
  let stallTimer = null;
  const step = Math.max(1, Math.floor(n / 10));

  await new Promise((resolve) => {
    const armStall = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => { log('no pong within ' + RTT_STALL_MS + ' ms'); resolve(); }, RTT_STALL_MS);
    };
    socket.on('pong', () => {
      const now = process.hrtime.bigint();
      if (i >= RTT_WARMUP) {
        samples.push(now - sentAt);
        if (samples.length % step === 0) log('  ' + samples.length + '/' + n);
      }
      i++;
      if (i === total) { clearTimeout(stallTimer); resolve(); return; }
      ping();
    });
    function ping() {
      armStall();
      sentAt = process.hrtime.bigint();
      socket.emit('ping', i);
    }
    ping();
  });
  socket.close();
  const result = Object.assign(rttSummary(samples), { n: samples.length });
  if (samples.length < n) result.stalled = true;
  finish(result);
}

async function fanout(c, m) {
  const { port, child } = await startServer(__filename, ['fanout', '0'], () => {});
  log('socket.io fanout: connecting ' + c + ' clients to port ' + port);
  const sockets = [];
  // Connect in modest batches so the accept queue on a 2-core box is not the test.
  for (let k = 0; k < c; k += 50) {
    const batch = [];
    for (let j = k; j < Math.min(c, k + 50); j++) batch.push(connectClient(port));
    sockets.push(...(await Promise.all(batch)));
  }
  log('  ' + sockets.length + ' connected');

  let delivered = 0;
  let expected = 0;
  let onAll = null;
  for (const s of sockets) {
    s.on('warm', () => { if (++delivered === expected) onAll(); });
    s.on('ev', () => { if (++delivered === expected) onAll(); });
  }
  const broadcast = (event, count) => new Promise((resolve) => {
    delivered = 0;
    expected = c * count;
    onAll = resolve;
    child.send({ type: 'broadcast', event, m: count });
  });

  log('  warm-up: ' + FANOUT_WARMUP + ' broadcasts');
  await broadcast('warm', FANOUT_WARMUP);
  log('  measuring ' + m + ' broadcasts x ' + c + ' clients = ' + c * m + ' deliveries');
  const start = process.hrtime.bigint();
  await broadcast('ev', m);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  log('done in ' + seconds.toFixed(3) + ' s');
  for (const s of sockets) s.close();
  finish({ deliveriesPerSecond: Math.round((c * m) / seconds) });
}
