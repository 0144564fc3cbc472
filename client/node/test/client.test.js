'use strict';
// LossClient against a live loss_server: typed arrays in and out, the one
// error type, the 64 MiB default, streams, ListLosses and health.

const test = require('node:test');
const assert = require('assert');
const {
  LossClient, LossServiceError, Tensor, tensor, requests, channelOptions, DEFAULT_MAX_MESSAGE_BYTES,
} = require('..');
const { startServer, useClient } = require('./helpers');

const live = useClient(test);

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof LossServiceError, `not a LossServiceError: ${e}`);
    return e;
  }
  assert.fail('the call did not fail');
}

test('typed arrays in, the input dtype out', async () => {
  const x = tensor(new Float32Array([0.5, 1.5, -1]), [1, 3]);
  const { loss, grad } = await live.client.mseLoss(x, tensor(new Float32Array(3), [1, 3]), { grad: true });
  assert.ok(loss instanceof Tensor && loss.data instanceof Float32Array);
  assert.deepStrictEqual(loss.shape, []);
  assert.strictEqual(loss.item(), Math.fround((0.25 + 2.25 + 1) / 3));
  assert.deepStrictEqual(grad.shape, [1, 3]);
  assert.ok(grad.data instanceof Float32Array);
  const sum = await live.client.mseLoss(new Float64Array([0.5, 1.5, -1]), new Float64Array(3), { reduction: 'sum' });
  assert.ok(sum.loss.data instanceof Float64Array);
  assert.strictEqual(sum.loss.item(), 3.5);
  // Plain arrays carry no dtype: float64, or int64 where indices are meant.
  const l1 = await live.client.l1Loss([[1, 2, 3]], [[1.5, 2, 2]], { reduction: 'none' });
  assert.deepStrictEqual([l1.loss.dtype, l1.loss.shape, l1.loss.toArray()], ['float64', [1, 3], [0.5, 0, 1]]);
  const ce = await live.client.crossEntropy(new Float32Array([0, 0]), 1);  // unbatched: (C) and ()
  assert.strictEqual(ce.loss.item(), Math.fround(Math.log(2)));
  const nll = await live.client.nllLoss({ data: new Float64Array([-1, -2, -3, -4]), shape: [2, 2] }, new Int32Array([1, 0]));
  assert.strictEqual(nll.loss.item(), (2 + 3) / 2);
});

test('errors carry code, message and request id', async () => {
  const x = tensor(new Float32Array(6), [2, 3]);
  let e = await rejection(live.client.mseLoss(x, tensor(new Float32Array(6), [3, 2]), { requestId: 'req-7' }));
  assert.strictEqual(e.code, 3);
  assert.strictEqual(e.codeName, 'INVALID_ARGUMENT');
  assert.ok(e.message.includes('[2, 3]') && e.message.includes('[3, 2]'), e.message);
  assert.strictEqual(e.requestId, 'req-7');
  assert.strictEqual(String(e), `LossServiceError: INVALID_ARGUMENT: ${e.message} (request_id req-7)`);
  e = await rejection(live.client.nllLoss(x, new BigInt64Array([0n, 3n])));
  assert.strictEqual(e.codeName, 'INVALID_ARGUMENT');
  assert.match(e.requestId, /^[0-9a-f]{16}$/);
  e = await rejection(live.client.softmax(x, { dim: 2 }));
  assert.strictEqual(e.codeName, 'INVALID_ARGUMENT');
  assert.strictEqual(e.requestId, undefined);
});

test('local mistakes reject with the same error', async () => {
  const x = new Float32Array(3);
  let e = await rejection(live.client.mseLoss(x, x, { reduction: 'avg', requestId: 'r1' }));
  assert.deepStrictEqual([e.codeName, e.requestId], ['INVALID_ARGUMENT', 'r1']);
  assert.strictEqual(e.message, "reduction: 'avg' is not one of 'mean', 'sum', 'none', 'batchmean'");
  e = await rejection(live.client.crossEntropy(x, new BigInt64Array([0n]), { ignore_index: 1 }));
  assert.match(e.message, /^crossEntropy: unknown option 'ignore_index' \(options: weight, ignoreIndex, /);
  e = await rejection(live.client.mseLoss(new Uint8Array(3), x));
  assert.strictEqual(e.message, 'input: Tensor data must be a Float32Array, Float64Array, BigInt64Array or Int32Array');
  e = await rejection(live.client.mseLoss(tensor(new Float32Array(5), undefined), { data: new Float32Array(5), shape: [2, 3] }));
  assert.strictEqual(e.message, 'target: Tensor: 5 values for shape [2, 3]');
});

test('a deadline', async () => {
  const n = 1000000;
  const e = await rejection(live.client.mseLoss(new Float32Array(n), new Float32Array(n), { timeout: 1 }));
  assert.strictEqual(e.codeName, 'DEADLINE_EXCEEDED');
});

test('a 2M-float gradient arrives with the defaults', async () => {
  const n = 2000000;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (i % 1000) / 500;
  const y = new Float32Array(n).fill(0.25);
  const { grad } = await live.client.mseLoss(x, y, { grad: true });
  assert.deepStrictEqual(grad.shape, [n]);
  assert.ok(grad.data.byteLength > 4 * 1024 * 1024);
  for (const i of [0, 1, 999, 123456, n - 1]) {
    const want = (2 * (x[i] - y[i])) / n;
    assert.ok(Math.abs(grad.data[i] - want) <= 1e-6 * Math.abs(want) + 1e-12, `grad[${i}]`);
  }
  assert.strictEqual(DEFAULT_MAX_MESSAGE_BYTES, 64 * 1024 * 1024);
  // gRPC's own 4 MiB limit refuses the same call.
  const small = new LossClient(live.server.address, { maxMessageBytes: 4 * 1024 * 1024 });
  const e = await rejection(small.mseLoss(x, y, { grad: true }));
  small.close();
  assert.strictEqual(e.codeName, 'RESOURCE_EXHAUSTED');
});

test('evaluateMany answers in order, with in-band errors', async () => {
  const x = new Float32Array([0.5, 1.5]);
  const y = new Float32Array([1, 1]);
  const batch = [requests.mseLoss(x, y, { reduction: 'sum' }), requests.mseLoss(x, new Float32Array(3)),
    requests.l1Loss(x, y, { reduction: 'sum', grad: true })];
  const answers = [];
  for await (const a of live.client.evaluateMany(batch, { returnExceptions: true })) answers.push(a);
  assert.strictEqual(answers.length, 3);
  assert.strictEqual(answers[0].loss.item(), 0.5);
  assert.ok(answers[1] instanceof LossServiceError);
  assert.strictEqual(answers[1].codeName, 'INVALID_ARGUMENT');
  assert.strictEqual(answers[1].requestId, batch[1].requestId);
  assert.strictEqual(answers[2].loss.item(), 1);
  assert.deepStrictEqual(answers[2].grad.toArray(), [-1, 1]);
  // Without returnExceptions the first error is thrown.
  const seen = [];
  const e = await rejection((async () => {
    for await (const a of live.client.evaluateMany(batch)) seen.push(a.loss.item());
  })());
  assert.deepStrictEqual(seen, [0.5]);
  assert.strictEqual(e.requestId, batch[1].requestId);
});

test('evaluateMany throws what the requests throw, after their answers', async () => {
  function* batch() {
    yield requests.l1Loss([1, 2], [1, 4]);
    yield requests.l1Loss([1], [1], { reduction: 'avg', requestId: 'bad' });
  }
  const seen = [];
  const e = await rejection((async () => {
    for await (const a of live.client.evaluateMany(batch())) seen.push(a.loss.item());
  })());
  assert.deepStrictEqual(seen, [1]);
  assert.deepStrictEqual([e.codeName, e.requestId], ['INVALID_ARGUMENT', 'bad']);
});

test('evaluateMany drives a training loop', async () => {
  // Each request is built from the previous answer, over one stream.
  const t = [1, -2, 3];
  const w = new Float64Array(3);
  let applied = () => {};
  async function* steps() {
    for (let i = 0; i < 50; i++) {
      yield requests.mseLoss(Float64Array.from(w), Float64Array.from(t), { grad: true });
      await new Promise((resolve) => { applied = resolve; });
    }
  }
  const losses = [];
  for await (const { loss, grad } of live.client.evaluateMany(steps())) {
    losses.push(loss.item());
    for (let i = 0; i < 3; i++) w[i] -= 0.75 * grad.data[i];  // grad = 2 (w - t) / 3: halves the error
    applied();
  }
  assert.strictEqual(losses.length, 50);
  assert.ok(Math.abs(losses[0] - 14 / 3) < 1e-12);
  for (let i = 1; i < 50; i++) {
    assert.ok(Math.abs(losses[i] - losses[i - 1] / 4) <= 1e-9 * losses[i - 1], `step ${i}`);
  }
});

test('listLosses', async () => {
  const losses = await live.client.listLosses();
  assert.strictEqual(losses.length, 21);
  assert.deepStrictEqual(losses.map((l) => l.fieldNumber), Array.from({ length: 21 }, (_, i) => 10 + i));
  const byName = Object.fromEntries(losses.map((l) => [l.name, l]));
  assert.deepStrictEqual(byName.kl_div.reductions, ['mean', 'sum', 'none', 'batchmean']);
  assert.deepStrictEqual(byName.rmse.reductions, ['mean']);
  assert.ok(losses.every((l) => l.hasGrad));
});

test('health', async () => {
  assert.strictEqual(await live.client.health(), 'SERVING');
  assert.strictEqual(await live.client.health('lossservice.v1.LossService'), 'SERVING');
  const e = await rejection(live.client.health('no.such.Service'));
  assert.strictEqual(e.codeName, 'NOT_FOUND');
});

test('channel options by default', () => {
  const o = channelOptions();
  assert.strictEqual(o['grpc.max_send_message_length'], 64 * 1024 * 1024);
  assert.strictEqual(o['grpc.max_receive_message_length'], 64 * 1024 * 1024);
  const policy = JSON.parse(o['grpc.service_config']).methodConfig[0].retryPolicy;
  assert.deepStrictEqual(policy.retryableStatusCodes, ['UNAVAILABLE']);
  assert.strictEqual(policy.maxAttempts, 5);
  assert.strictEqual(channelOptions({ retry: false })['grpc.service_config'], undefined);
});

test('a stopped server is unavailable', async () => {
  const s = await startServer();
  await s.stop();
  const c = new LossClient(s.address, { timeout: 10000 });
  const e = await rejection(c.mseLoss([1], [1]));
  c.close();
  assert.strictEqual(e.codeName, 'UNAVAILABLE');
});
