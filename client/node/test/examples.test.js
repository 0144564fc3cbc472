'use strict';
// Every loss and activation through its LossClient method, with the examples
// PyTorch computed (tests/golden/examples.json, written by
// tools/gen_golden.py): torch's defaults once, every option once.

const test = require('node:test');
const assert = require('assert');
const { LossClient, requests } = require('..');
const { EXAMPLES, useClient, camel, fromJson, callArguments, assertMatches } = require('./helpers');

const live = useClient(test);

for (const example of EXAMPLES.filter((e) => e.kind === 'loss')) {
  test(`loss example ${example.name}`, async () => {
    const [positional, options] = callArguments(example);
    if (example.grad_output) options.gradOutput = fromJson(example.grad_output);
    const method = camel(example.function);
    const { loss, grad, requestId } = await live.client[method](...positional, { ...options, grad: true });
    assertMatches(loss, example.expected_loss, example, 'loss');
    assertMatches(grad, example.expected_grad, example, 'grad');
    assert.match(requestId, /^[0-9a-f]{16}$/);
    const plain = await live.client[method](...positional, options);
    assert.strictEqual(plain.grad, undefined);
    assertMatches(plain.loss, example.expected_loss, example, 'loss without grad');
  });
}

for (const example of EXAMPLES.filter((e) => e.kind === 'activation')) {
  test(`activation example ${example.name}`, async () => {
    const [positional, options] = callArguments(example);
    const out = await live.client[camel(example.function)](...positional, options);
    assertMatches(out, example.expected_output, example, 'output');
  });
}

test('every example over one stream', async () => {
  const losses = EXAMPLES.filter((e) => e.kind === 'loss');
  const batch = losses.map((example) => {
    const [positional, options] = callArguments(example);
    if (example.grad_output) options.gradOutput = fromJson(example.grad_output);
    return requests[camel(example.function)](...positional, { ...options, grad: true });
  });
  let i = 0;
  for await (const { loss, grad } of live.client.evaluateMany(batch)) {
    assertMatches(loss, losses[i].expected_loss, losses[i], 'loss (stream)');
    assertMatches(grad, losses[i].expected_grad, losses[i], 'grad (stream)');
    i += 1;
  }
  assert.strictEqual(i, losses.length);
});

test('every listed loss has a method and two examples', async () => {
  const listed = (await live.client.listLosses()).map((l) => l.name);
  assert.strictEqual(listed.length, 21);
  assert.deepStrictEqual([...listed].sort(), [...new Set(EXAMPLES.filter((e) => e.loss).map((e) => e.loss))].sort());
  for (const name of listed) {
    const mine = EXAMPLES.filter((e) => e.loss === name);
    assert.strictEqual(mine.length, 2, name);
    assert.strictEqual(typeof LossClient.prototype[camel(mine[0].function)], 'function', name);
    assert.strictEqual(requests[camel(mine[0].function)].loss, name);
  }
  assert.strictEqual(Object.keys(requests).length, listed.length);
});
