'use strict';
// LossClient's retries against a small in-process LossService (@grpc/grpc-js)
// that fails on demand, as a real server cannot be made to. (TLS, mutual TLS
// and tokens against loss_server itself: security.test.js.)

const test = require('node:test');
const assert = require('assert');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { LossClient, LossServiceError } = require('..');
const { protoRoot } = require('../lib/client');

const definition = protoLoader.loadSync(path.join(protoRoot(), 'lossservice', 'v1', 'loss_service.proto'),
  { includeDirs: [protoRoot()], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
const { LossService } = grpc.loadPackageDefinition(definition).lossservice.v1;

// Evaluate answers a float32 scalar 1.5 after failing the first failFirst
// calls with UNAVAILABLE.
async function serve() {
  const state = { calls: 0, failFirst: 0 };
  const server = new grpc.Server();
  server.addService(LossService.service, {
    Evaluate(call, callback) {
      state.calls += 1;
      if (state.failFirst > 0) {
        state.failFirst -= 1;
        callback({ code: grpc.status.UNAVAILABLE, details: 'not yet' });
      } else {
        const raw = Buffer.from(new Float32Array([1.5]).buffer);
        callback(null, { loss: { shape: [], dtype: 'DATA_TYPE_FLOAT32', raw_data: raw }, request_id: call.request.request_id });
      }
    },
  });
  const port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)));
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
