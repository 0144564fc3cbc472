'use strict';
// npm pack makes a package that works on its own: installed into a scratch
// project outside the repository, it loads the .proto it carries and calls
// the server.

const test = require('node:test');
const assert = require('assert');
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { useClient } = require('./helpers');

const live = useClient(test);

test('npm pack, npm install, call', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lossservice_npm_'));
  try {
    const npm = (...args) => execFileSync('npm', [...args, '--loglevel=error', '--no-audit', '--no-fund'],
      { encoding: 'utf8' });
    npm('pack', '--pack-destination', dir, path.join(__dirname, '..'));
    assert.ok(!fs.existsSync(path.join(__dirname, '..', 'proto')), 'postpack left proto/ behind');
    const tarball = fs.readdirSync(dir).find((f) => f.endsWith('.tgz'));
    const contents = execFileSync('tar', ['tzf', path.join(dir, tarball)], { encoding: 'utf8' }).split('\n');
    assert.ok(contents.includes('package/proto/lossservice/v1/loss_service.proto'), contents.join(' '));
    fs.writeFileSync(path.join(dir, 'package.json'), '{"name": "scratch", "private": true}');
    execFileSync('npm', ['install', '--prefer-offline', '--loglevel=error', '--no-audit', '--no-fund', `./${tarball}`],
      { cwd: dir });
    const script = `const { LossClient } = require('lossservice');
      const c = new LossClient(${JSON.stringify(live.server.address)});
      c.l1Loss([1, 2], [1, 4], { reduction: 'sum' }).then((r) => { console.log(r.loss.item()); c.close(); });`;
    const env = { ...process.env };
    delete env.LOSSSERVICE_PROTO_DIR;
    const out = execFileSync('node', ['-e', script], { cwd: dir, env, encoding: 'utf8' });
    assert.strictEqual(out.trim(), '2');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
