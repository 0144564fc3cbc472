'use strict';
// Shared by the tests: a live loss_server on 127.0.0.1:0 (LOSS_SERVER names
// the binary; default the repository's build/), the examples PyTorch
// computed, and their comparison.

const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const assert = require('assert');
const { tensor } = require('..');

const REPO = path.join(__dirname, '..', '..', '..');
const EXAMPLES = JSON.parse(fs.readFileSync(path.join(REPO, 'tests', 'golden', 'examples.json'), 'utf8')).cases;

function startServer(...flags) {
  const binary = process.env.LOSS_SERVER || path.join(REPO, 'build', 'server', 'loss_server');
  const child = spawn(binary, ['--address', '127.0.0.1:0', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise((r) => child.once('exit', r));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill(); reject(new Error(`loss_server did not start: ${log}`)); }, 10000);
    const onData = (chunk) => {
      log += chunk;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        // stop() resolves once the server has exited.
        resolve({ address: `127.0.0.1:${m[1]}`, stop: () => { child.kill('SIGTERM'); return exited; } });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`loss_server exited ${code}: ${log}`)); });
  });
}

/** Registers before/after hooks that start a loss_server and a LossClient of
 * it; returns { server, client }, filled in once the hooks have run. */
function useClient(test) {
  const { LossClient } = require('..');
  const live = {};
  test.before(async () => {
    live.server = await startServer();
    live.client = new LossClient(live.server.address);
  });
  test.after(async () => {
    live.client.close();
    await live.server.stop();
  });
  return live;
}

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());

function fromJson(t) {
  const values = t.values.map((v) => (v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v));
  return tensor(values, t.shape, t.dtype);
}

/** [positional, options] of an example's call through the Node client. */
function callArguments(example) {
  const positional = example.required.map((name) => fromJson(example.args[name]));
  const options = {};
  for (const [name, value] of Object.entries(example.args)) {
    if (example.required.includes(name)) continue;
    options[camel(name)] = typeof value === 'object' ? fromJson(value) : value;
  }
  return [positional, options];
}

function assertMatches(got, expected, example, what) {
  const dtype = example.args[example.required[0]].dtype;
  const where = `${example.name} ${what}`;
  assert.strictEqual(got.dtype, dtype, `${where}: dtype`);
  assert.deepStrictEqual(got.shape, expected.shape, `${where}: shape`);
  const { atol, rtol } = example.tolerance;
  const ref = fromJson(expected).data;
  got.data.forEach((a, i) => {
    const b = ref[i];
    if (Number.isNaN(b) || !Number.isFinite(b)) {
      assert.ok(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)), `${where}[${i}]: ${a} vs ${b}`);
    } else {
      assert.ok(Math.abs(a - b) <= atol + rtol * Math.abs(b), `${where}[${i}]: service ${a}, PyTorch ${b}`);
    }
  });
}

module.exports = { REPO, EXAMPLES, startServer, useClient, camel, fromJson, callArguments, assertMatches };
