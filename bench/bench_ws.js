// Twin of bench_ws.c with Node's ws (tools/node, `make deps`), impl
// "node": 16-byte messages echoed over one connection, and the resident
// memory per idle connection (client and server both in this process)
// without and with permessage-deflate. Prints bench/run.py's lines.
//
//   node bench_ws.js [--smoke] [--time SECONDS]
'use strict';
const path = require('path');
const { WebSocket, WebSocketServer } = require(
  path.join(__dirname, '..', 'tools', 'node', 'node_modules', 'ws'));

const MSG = Buffer.alloc(16);
const IDLE_CONNS = 1000;
const SMOKE_IDLE = 20;
const smoke = process.argv.includes('--smoke');
const ti = process.argv.indexOf('--time');
const seconds = ti > 0 ? parseFloat(process.argv[ti + 1]) : 0.3;

function listen(opts) {
  return new Promise((resolve) => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...opts });
    wss.on('listening', () => resolve(wss));
  });
}

function connect(port, opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, opts);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

// Round trips for about `seconds` (or 100 in a smoke run).
async function pingpong() {
  const wss = await listen({ perMessageDeflate: false });
  wss.on('connection', (s) => s.on('message', (d, bin) => s.send(d, { binary: bin })));
  const ws = await connect(wss.address().port, { perMessageDeflate: false });
  let n = 0;
  const limit = smoke ? 100 : Infinity;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  await new Promise((resolve) => {
    ws.on('message', () => {
      n++;
      if (n >= limit || process.hrtime.bigint() >= deadline) return resolve();
      ws.send(MSG);
    });
    ws.send(MSG);
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`RESULT ws_pingpong_1 node ${(n / secs).toPrecision(6)} per_s`);
  ws.close();
  await new Promise((r) => wss.close(r));
}

async function idle(row, deflate) {
  const conns = smoke ? SMOKE_IDLE : IDLE_CONNS;
  const pmd = deflate ? { threshold: 0 } : false;
  const wss = await listen({ perMessageDeflate: pmd });
  wss.on('connection', (s) => s.once('message', (d) => s.send(d.toString())));
  global.gc && global.gc();
  const before = process.memoryUsage().rss;
  const clients = [];
  for (let i = 0; i < conns; i++) {
    const ws = await connect(wss.address().port, { perMessageDeflate: pmd });
    await new Promise((r) => { ws.once('message', r); ws.send('hello, idle'); });
    clients.push(ws);
  }
  const per = (process.memoryUsage().rss - before) / conns;
  console.log(`RESULT ${row} node ${per.toPrecision(6)} ns`);
  for (const ws of clients) ws.terminate();
  await new Promise((r) => wss.close(r));
}

(async () => {
  await pingpong();
  await idle('ws_idle_mem', false);
  await idle('ws_idle_mem_deflate', true);
  process.exit(0);
})();
