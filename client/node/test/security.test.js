'use strict';
// LossClient against loss_server processes started with TLS (--tls_cert,
// --tls_key), mutual TLS (--tls_client_ca) and a bearer token
// (--auth_token_file): what connects, what is refused and with which code.
// Certificates from tests/make_test_certs.sh (openssl).

const test = require('node:test');
const assert = require('assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { LossClient, LossServiceError, requests } = require('..');
const { REPO, startServer } = require('./helpers');

const TOKEN = 's3cret-token';
// mse([0.5, 1.5], [1, 1]) = (0.25 + 0.25) / 2, exact in float32.
const INPUT = new Float32Array([0.5, 1.5]);
const TARGET = new Float32Array([1, 1]);
const LOSS = 0.25;

const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'lossservice_security_'));
const file = (name) => path.join(certs, name);
const pem = (name) => fs.readFileSync(file(name));
const servers = {};

test.before(async () => {
  execFileSync(path.join(REPO, 'tests', 'make_test_certs.sh'), [certs]);
  // Whitespace around the token, which the server ignores.
  fs.writeFileSync(file('token'), `  ${TOKEN}\n\t\n`);
  const tls = [`--tls_cert=${file('server.pem')}`, `--tls_key=${file('server.key')}`];
  servers.tls = await startServer(...tls);
  servers.mtls = await startServer(...tls, `--tls_client_ca=${file('ca.pem')}`);
  servers.token = await startServer(`--auth_token_file=${file('token')}`);
});

test.after(async () => {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
  fs.rmSync(certs, { recursive: true, force: true });
});

async function withClient(server, options, f) {
  const client = new LossClient(servers[server].address, { timeout: 20000, ...options });
  try {
    return await f(client);
  } finally {
    client.close();
  }
}

// The loss of mse(INPUT, TARGET), checking the answer's dtype and request id.
function mse(server, options = {}, requestId = 'security-1') {
  return withClient(server, options, async (client) => {
    const { loss, requestId: id } = await client.mseLoss(INPUT, TARGET, { requestId });
    assert.strictEqual(loss.dtype, 'float32');
    assert.strictEqual(id, requestId);
    return loss.item();
  });
}

// The LossServiceError of a call that must fail (refusals not retried).
async function refusal(server, options, requestId = 'security-1') {
  try {
    await mse(server, { retry: false, ...options }, requestId);
  } catch (e) {
    assert.ok(e instanceof LossServiceError, String(e));
    return e;
  }
  return assert.fail('the call did not fail');
}

// --- --tls_cert, --tls_key ---

test('TLS with the test CA as roots', async () => {
  // As a file path and as a Buffer of PEM.
  assert.strictEqual(await mse('tls', { tls: true, rootCertificates: file('ca.pem') }), LOSS);
  assert.strictEqual(await mse('tls', { tls: true, rootCertificates: pem('ca.pem') }), LOSS);
  assert.strictEqual(await mse('tls', { tls: true, rootCertificates: pem('ca.pem'), tlsServerName: 'localhost' }), LOSS);
  assert.strictEqual(await withClient('tls', { tls: true, rootCertificates: pem('ca.pem') }, (c) => c.health()), 'SERVING');
});

test('TLS with the default roots is UNAVAILABLE', async () => {
  // The test CA is not among the default roots.
  assert.strictEqual((await refusal('tls', { tls: true })).codeName, 'UNAVAILABLE');
});

test('TLS with another server name is UNAVAILABLE', async () => {
  const e = await refusal('tls', { tls: true, rootCertificates: pem('ca.pem'), tlsServerName: 'other.example' });
  assert.strictEqual(e.codeName, 'UNAVAILABLE');
});

test('plaintext to a TLS server is UNAVAILABLE', async () => {
  assert.strictEqual((await refusal('tls', {})).codeName, 'UNAVAILABLE');
});

// --- --tls_client_ca: client certificates required and verified ---

test('mutual TLS with the client\'s certificate', async () => {
  assert.strictEqual(await mse('mtls', {
    tls: true, rootCertificates: pem('ca.pem'), privateKey: file('client.key'), certificateChain: file('client.pem'),
  }), LOSS);
});

test('mutual TLS without a client certificate is UNAVAILABLE', async () => {
  assert.strictEqual((await refusal('mtls', { tls: true, rootCertificates: pem('ca.pem') })).codeName, 'UNAVAILABLE');
});

test('mutual TLS with another CA\'s certificate is UNAVAILABLE', async () => {
  const e = await refusal('mtls', {
    tls: true, rootCertificates: pem('ca.pem'), privateKey: pem('other_client.key'), certificateChain: pem('other_client.pem'),
  });
  assert.strictEqual(e.codeName, 'UNAVAILABLE');
});

// --- --auth_token_file ---

test('the right token is accepted', async () => {
  assert.strictEqual(await mse('token', { token: TOKEN }, 'token-ok'), LOSS);
  await withClient('token', { token: TOKEN }, async (client) => {
    const losses = await client.listLosses();
    assert.ok(losses.some((l) => l.name === 'mse'));
    const answers = [];
    for await (const r of client.evaluateMany([requests.mseLoss(INPUT, TARGET)])) answers.push(r.loss.item());
    assert.deepStrictEqual(answers, [LOSS]);
  });
});

for (const [name, token] of [['missing', undefined], ['wrong', 'wrong'], ['longer', `${TOKEN}x`], ['leading space', ` ${TOKEN}`]]) {
  test(`a ${name} token is UNAUTHENTICATED with the request id`, async () => {
    const e = await refusal('token', { token }, 'token-1');
    assert.deepStrictEqual([e.code, e.codeName, e.requestId], [16, 'UNAUTHENTICATED', 'token-1']);
    assert.match(e.message, /bearer token/);
    assert.strictEqual(String(e), `LossServiceError: UNAUTHENTICATED: ${e.message} (request_id token-1)`);
    // A request id the client made up is reported too.
    const made = await withClient('token', { token, retry: false }, (c) => c.mseLoss(INPUT, TARGET).then(
      () => assert.fail('the call did not fail'), (error) => error));
    assert.strictEqual(made.codeName, 'UNAUTHENTICATED');
    assert.match(made.requestId, /^[0-9a-f]{16}$/);
  });
}

test('every LossService RPC needs the token', async () => {
  await withClient('token', {}, async (client) => {
    const calls = {
      listLosses: () => client.listLosses(),
      sigmoid: () => client.sigmoid(INPUT),
      evaluateMany: async () => {
        for await (const r of client.evaluateMany([requests.mseLoss(INPUT, TARGET)])) assert.fail(`answered ${r}`);
      },
    };
    for (const [name, call] of Object.entries(calls)) {
      await assert.rejects(call(), (e) => e instanceof LossServiceError && e.codeName === 'UNAUTHENTICATED', name);
    }
  });
});

test('health needs no token', async () => {
  await withClient('token', {}, async (client) => {
    assert.strictEqual(await client.health(), 'SERVING');
    assert.strictEqual(await client.health('lossservice.v1.LossService'), 'SERVING');
  });
});
