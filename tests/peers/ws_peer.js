// The Node `ws` peer of tests/test_ws_peers.c (ws from tools/node).
//
//   node ws_peer.js server deflate|plain [CERT KEY]
//                                          echo server on 127.0.0.1, a
//                                          free port (over TLS with CERT
//                                          and KEY); prints "listening on
//                                          PORT"; stops when stdin ends
//   node ws_peer.js client URL deflate|plain [CA]
//                                          runs the matrix against a conc
//                                          server (a wss:// URL trusting
//                                          the CA file), prints "ok", or
//                                          the failure and exits 1
//
// The echo protocol is the one ws_peer.py describes.
'use strict';
const fs = require('fs');
const https = require('https');
const path = require('path');
const { WebSocket, WebSocketServer } = require(
  path.join(__dirname, '..', '..', 'tools', 'node', 'node_modules', 'ws'));

const MIB = 1 << 20;
const WAIT = 10000;

function deflate(mode) {
  return mode === 'deflate' ? { threshold: 0 } : false;
}

function server(mode, cert, key) {
  const opts = { maxPayload: 2 * MIB, perMessageDeflate: deflate(mode) };
  let wss;
  if (cert) {
    const tls = https.createServer({
      cert: fs.readFileSync(cert), key: fs.readFileSync(key),
    });
    wss = new WebSocketServer({ ...opts, server: tls });
    tls.listen(0, '127.0.0.1', () => {
      console.log(`listening on ${tls.address().port}`);
    });
  } else {
    wss = new WebSocketServer({ ...opts, host: '127.0.0.1', port: 0 });
    wss.on('listening', () => {
      console.log(`listening on ${wss.address().port}`);
    });
  }
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      if (text === 'frag') {
        ws.send('ab', { fin: false });
        ws.send('cd', { fin: false });
        ws.send('ef', { fin: true });
      } else if (text === 'ping-me') {
        ws.once('pong', () => ws.send('pinged'));
        ws.ping();
      } else if (text !== null && text.startsWith('close:')) {
        ws.close(parseInt(text.slice(6), 10), 'bye');
      } else {
        ws.send(data, { binary: isBinary });
      }
    });
  });
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

// A queue of what a socket receives, so the matrix reads it in order.
function inbox(ws) {
  const items = [];
  const waiters = [];
  const push = (item) => {
    const w = waiters.shift();
    if (w) w(item); else items.push(item);
  };
  ws.on('message', (data, isBinary) => push({ data, isBinary }));
  ws.on('pong', (data) => push({ pong: data }));
  ws.on('close', (code, reason) => push({ close: code, reason: reason.toString() }));
  return () => new Promise((resolve, reject) => {
    const item = items.shift();
    if (item) return resolve(item);
    const t = setTimeout(() => reject(new Error('timed out')), WAIT);
    waiters.push((it) => { clearTimeout(t); resolve(it); });
  });
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

function open(url, mode, ca) {
  return new Promise((resolve, reject) => {
    const opts = { perMessageDeflate: deflate(mode), maxPayload: 2 * MIB };
    if (ca) opts.ca = fs.readFileSync(ca);
    const ws = new WebSocket(url, opts);
    const next = inbox(ws);
    ws.once('open', () => resolve([ws, next]));
    ws.once('error', reject);
  });
}

async function roundTrip(ws, next, msg, binary) {
  ws.send(msg, { binary });
  const got = await next();
  check(got.isBinary === binary && Buffer.compare(Buffer.from(got.data), Buffer.from(msg)) === 0,
    `echo of ${binary ? 'binary' : 'text'} of ${msg.length}`);
}

async function client(url, mode, ca) {
  let [ws, next] = await open(url, mode, ca);
  const ext = ws.extensions;
  check(mode === 'deflate' ? ext.includes('permessage-deflate') : ext === '',
    `extensions ${JSON.stringify(ext)} in mode ${mode}`);
  const big = Buffer.alloc(MIB);
  for (let i = 0; i < MIB; i++) big[i] = i & 0xff;
  await roundTrip(ws, next, 'hello', false);
  await roundTrip(ws, next, 'h\u00e9llo \u2603', false);
  await roundTrip(ws, next, Buffer.from([0, 255, 1]), true);
  await roundTrip(ws, next, '', false);
  await roundTrip(ws, next, Buffer.alloc(0), true);
  await roundTrip(ws, next, big, true);
  ws.send('fr', { fin: false });
  ws.send('ag', { fin: false });
  ws.send('ment', { fin: true });
  check((await next()).data.toString() === 'fragment', 'fragmented send');
  ws.send('frag');
  check((await next()).data.toString() === 'abcdef', 'fragmented receive');
  ws.send('stream');
  check((await next()).data.toString() === 'str\u00e9am', "a message from conc's producer");
  ws.ping('js');
  check((await next()).pong.toString() === 'js', 'pong');
  ws.send('ping-me');
  check((await next()).data.toString() === 'pinged', "the server's ping");
  ws.close(1000);
  let end = await next();
  check(end.close === 1000, `close code ${end.close}`);

  [ws, next] = await open(url, mode, ca);
  ws.send('close:4001');
  end = await next();
  check(end.close === 4001 && end.reason === 'bye', `server close ${end.close} ${end.reason}`);

  [ws, next] = await open(url, mode, ca);
  ws.close(4002, 'peer bye');
  await next();
  console.log('ok');
}

if (process.argv[2] === 'server') {
  server(process.argv[3], process.argv[4], process.argv[5]);
} else {
  client(process.argv[3], process.argv[4], process.argv[5]).catch((e) => {
    console.log(`FAILED: ${e.message}`);
    process.exit(1);
  });
}
