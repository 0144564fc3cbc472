'use strict';
// LossClient's TLS, mutual TLS, bearer token and retry options against a small
// in-process LossService (@grpc/grpc-js) that checks what arrives: the token
// as the server's --auth_token_file checks it, certificates made by
// tests/make_test_certs.sh.

const test = require('node:test');
const assert = require('assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { LossClient, LossServiceError } = require('..');
const { protoRoot } = require('../lib/client');
const { REPO } = require('./helpers');

const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'lossservice_certs_'));
const pem = (name) => fs.readFileSync(path.join(certs, name));
test.before(() => execFileSync(path.join(REPO, 'tests', 'make_test_certs.sh'), [certs]));
test.after(() => fs.rmSync(certs, { recursive: true, force: true }));

const definition = protoLoader.loadSync(path.join(protoRoot(), 'lossservice', 'v1', 'loss_service.proto'),
  { includeDirs: [protoRoot()], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
const { LossService } = grpc.loadPackageDefinition(definition).lossservice.v1;

// Evaluate answers a float32 scalar 1.5 after failing the first failFirst
// calls with UNAVAILABLE; with token set, a call without
// "authorization: Bearer <token>" is UNAUTHENTICATED.
async function serve(security = 'plaintext') {
  const state = { calls: 0, failFirst: 0, token: null, authorization: undefined };
  const server = new grpc.Server();
  server.addService(LossService.service, {
    Evaluate(call, callback) {
      state.calls += 1;
      const [authorization] = call.metadata.get('authorization');
      state.authorization = authorization;
      if (state.failFirst > 0) {
        state.failFirst -= 1;
        callback({ code: grpc.status.UNAVAILABLE, details: 'not yet' });
      } else if (state.token && authorization !== `Bearer ${state.token}`) {
        callback({ code: grpc.status.UNAUTHENTICATED, details: 'missing or wrong token' });
      } else {
        const raw = Buffer.from(new Float32Array([1.5]).buffer);
        callback(null, { loss: { shape: [], dtype: 'DATA_TYPE_FLOAT32', raw_data: raw }, request_id: call.request.request_id });
      }
    },
  });
  const credentials = security === 'plaintext'
    ? grpc.ServerCredentials.createInsecure()
    : grpc.ServerCredentials.createSsl(security === 'mtls' ? pem('ca.pem') : null,
      [{ private_key: pem('server.key'), cert_chain: pem('server.pem') }], security === 'mtls');
  const port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (e, p) => (e ? reject(e) : resolve(p)));
  });
  state.address = `127.0.0.1:${port}`;
  state.stop = () => server.forceShutdown();
  return state;
}

async function call(address, options = {}) {
  const client = new LossClient(address, { timeout: 10000, ...options });
  try {
    const { loss, requestId } = await client.mseLoss([1, 1], [1, 1], { requestId: 'fake-1' });
    assert.strictEqual(requestId, 'fake-1');
    return loss.item();
  } finally {
    client.close();
  }
}

async function failure(address, options) {
  try {
    await call(address, options);
  } catch (e) {
    assert.ok(e instanceof LossServiceError, String(e));
    return e;
  }
  assert.fail('the call did not fail');
}

test('retries UNAVAILABLE', async () => {
  const s = await serve();
  s.failFirst = 2;
  assert.strictEqual(await call(s.address), 1.5);
  assert.strictEqual(s.calls, 3);
  s.stop();
});

test('no retry when disabled', async () => {
  const s = await serve();
  s.failFirst = 2;
  const e = await failure(s.address, { retry: false });
  assert.deepStrictEqual([e.codeName, e.message], ['UNAVAILABLE', 'not yet']);
  assert.strictEqual(s.calls, 1);
  s.stop();
});

test('gives up after five attempts', async () => {
  const s = await serve();
  s.failFirst = 10;
  assert.strictEqual((await failure(s.address)).codeName, 'UNAVAILABLE');
  assert.strictEqual(s.calls, 5);
  s.stop();
});

test('a service config of one\'s own', async () => {
  const s = await serve();
  s.failFirst = 10;
  const serviceConfig = {
    methodConfig: [{
      name: [{ service: 'lossservice.v1.LossService' }],
      retryPolicy: {
        maxAttempts: 2, initialBackoff: '0.01s', maxBackoff: '0.01s', backoffMultiplier: 1,
        retryableStatusCodes: ['UNAVAILABLE'],
      },
    }],
  };
  assert.strictEqual((await failure(s.address, { serviceConfig })).codeName, 'UNAVAILABLE');
  assert.strictEqual(s.calls, 2);
  s.stop();
});

test('the token is sent as a bearer on every call', async () => {
  const s = await serve();
  s.token = 's3cret';
  assert.strictEqual(await call(s.address, { token: 's3cret' }), 1.5);
  assert.strictEqual(s.authorization, 'Bearer s3cret');
  for (const options of [{}, { token: 'wrong' }]) {
    const e = await failure(s.address, options);
    assert.deepStrictEqual([e.codeName, e.requestId], ['UNAUTHENTICATED', 'fake-1']);
  }
  s.stop();
});

test('TLS with the server\'s root certificate', async () => {
  const s = await serve('tls');
  assert.strictEqual(await call(s.address, { tls: true, rootCertificates: path.join(certs, 'ca.pem') }), 1.5);
  assert.strictEqual(await call(s.address, { tls: true, rootCertificates: pem('ca.pem'), token: 't' }), 1.5);
  assert.strictEqual(s.authorization, 'Bearer t');
  assert.strictEqual(await call(s.address, { tls: true, rootCertificates: pem('ca.pem'), tlsServerName: 'localhost' }), 1.5);
  s.stop();
});

test('TLS refuses what it cannot verify', async () => {
  const s = await serve('tls');
  for (const options of [
    { tls: true }, // the test CA is not among the default roots
    { tls: true, rootCertificates: pem('ca.pem'), tlsServerName: 'other.example' },
    {}, // plaintext to a TLS port
  ]) {
    const e = await failure(s.address, { retry: false, timeout: 5000, ...options });
    assert.strictEqual(e.codeName, 'UNAVAILABLE', JSON.stringify(Object.keys(options)));
  }
  assert.strictEqual(s.calls, 0);
  s.stop();
});

test('mutual TLS with a client certificate', async () => {
  const s = await serve('mtls');
  assert.strictEqual(await call(s.address, {
    tls: true, rootCertificates: pem('ca.pem'), privateKey: path.join(certs, 'client.key'),
    certificateChain: path.join(certs, 'client.pem'),
  }), 1.5);
  const e = await failure(s.address, { tls: true, rootCertificates: pem('ca.pem'), retry: false, timeout: 5000 });
  assert.strictEqual(e.codeName, 'UNAVAILABLE');
  assert.strictEqual(s.calls, 1);
  s.stop();
});
