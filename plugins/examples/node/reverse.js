#!/usr/bin/env node
// reverse: a minimal Corral worker plugin in Node.js, written from
// plugins/proto/README.md alone (no SDK). It reverses its payload's text.
// Install: `npm ci` here, then put an executable wrapper in plugin_dir:
//   #!/bin/sh
//   exec node /path/to/reverse.js
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const forge = require('node-forge');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = path.join(__dirname, '..', '..', 'proto');
const INFO = { name: 'reverse', version: '1.0.0', description: 'reverses the payload text' };
const fail = (msg) => { process.stderr.write(msg + '\n'); process.exit(1); };

// 2.3 Magic cookie.
if (process.env.CORRAL_PLUGIN !== '8b2f3c1e-corral-worker-plugin') {
  fail('This binary is a plugin. These are not meant to be executed directly.');
}
// 2.4 Version negotiation: this plugin speaks version 2 only.
const offered = (process.env.PLUGIN_PROTOCOL_VERSIONS || '1').split(',').map(Number);
const VERSION = 2;
if (!offered.includes(VERSION)) process.stderr.write(`host offers versions ${offered}; answering ${VERSION}\n`);

// 2.5 Automatic mutual TLS: a self-signed certificate for localhost.
function certificate() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }));
  cert.serialNumber = '01' + crypto.randomBytes(15).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 30000);
  cert.validity.notAfter = new Date(Date.now() + 10 * 365 * 86400000);
  const name = [{ name: 'commonName', value: 'localhost' }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] },
  ]);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return { certPem: forge.pki.certificateToPem(cert), keyPem, der };
}

// 6. Jobs: one call of the Session.
function runJob(req, emit, signal) {
  const text = Buffer.from(req.payload || []).toString('utf8');
  emit({ log: { stream: 'plugin', line: `reversing ${text.length} characters` } });
  if (!text) return emit({ error: { message: 'nothing to reverse', non_retryable: true } });
  if (signal.aborted) return emit({ error: { message: 'cancelled' } });
  emit({ progress: { percent: 50, message: 'half way' } });
  emit({ result: { data: Buffer.from([...text].reverse().join(''), 'utf8') } });
}

// 4. Version 2: every job over one Session stream.
function session(call) {
  const calls = new Map(); // call_id -> AbortController
  call.on('data', (msg) => {
    const id = msg.call_id;
    if (msg.start) {
      const ctl = new AbortController();
      calls.set(id, ctl);
      const timeout = Number(msg.start.timeout_ms);
      const timer = timeout > 0 ? setTimeout(() => ctl.abort(), timeout) : null;
      let done = false;
      const emit = (ev) => {
        if (done || call.writableEnded) return;
        done = 'result' in ev || 'error' in ev;
        if (done) { calls.delete(id); if (timer) clearTimeout(timer); }
        call.write({ call_id: id, ...ev });
      };
      try { runJob(msg.start, emit, ctl.signal); } catch (e) { emit({ error: { message: String(e) } }); }
    } else if (msg.cancel && calls.has(id)) {
      calls.get(id).abort();
    }
  });
  const end = () => { for (const ctl of calls.values()) ctl.abort(); calls.clear(); if (!call.writableEnded) call.end(); };
  call.on('end', end);
  call.on('error', end);
  call.on('cancelled', end);
}

const load = (file) => grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO_DIR, file),
  { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true }));
const worker = load('worker.proto').corral.plugins.v1.Worker.service;
const health = load('health.proto').grpc.health.v1.Health.service;
const goplugin = load('goplugin.proto').plugin;

const server = new grpc.Server();
const dir = fs.mkdtempSync(path.join(process.env.PLUGIN_UNIX_SOCKET_DIR || os.tmpdir(), 'corral-node-'));
const sock = path.join(dir, 'plugin.sock');
const stop = (code) => { server.forceShutdown(); fs.rmSync(dir, { recursive: true, force: true }); process.exit(code); };

server.addService(worker, {
  Info: (_, cb) => cb(null, { ...INFO, api_version: VERSION }),
  Configure: (_, cb) => cb(null, {}),
  Run: (call) => call.destroy({ code: grpc.status.UNIMPLEMENTED, details: 'version 2 only' }),
  Session: session,
});
server.addService(health, { Check: (_, cb) => cb(null, { status: 1 }) });
server.addService(goplugin.GRPCController.service, {
  Shutdown: (_, cb) => { cb(null, {}); setTimeout(() => stop(0), 50); },
});
server.addService(goplugin.GRPCStdio.service, { StreamStdio: () => {} }); // never sends; ends with the process

const clientCert = process.env.PLUGIN_CLIENT_CERT;
if (!clientCert) fail('PLUGIN_CLIENT_CERT is not set: Corral always asks for mTLS');
const { certPem, keyPem, der } = certificate();
const creds = grpc.ServerCredentials.createSsl(Buffer.from(clientCert),
  [{ private_key: Buffer.from(keyPem), cert_chain: Buffer.from(certPem) }], true);

server.bindAsync('unix:' + sock, creds, (err) => {
  if (err) fail(`listen: ${err.message}`);
  // 2.7 The handshake line; nothing else ever goes to stdout.
  const b64 = der.toString('base64').replace(/=+$/, '');
  process.stdout.write(`1|${VERSION}|unix|${sock}|grpc|${b64}\n`);
  process.stderr.write(`reverse plugin serving on ${sock}\n`);
});

// 7. Stopping: ignore SIGINT, exit on SIGTERM or when the agent is gone.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => stop(0));
const ppid = process.ppid;
setInterval(() => { if (process.ppid !== ppid) stop(71); }, 250).unref();
