'use strict';
// npm pack: copies the repository's proto/lossservice into the package, so
// that the packed module loads it from its own proto/ folder.
const fs = require('fs');
const path = require('path');

const from = path.join(__dirname, '..', '..', '..', 'proto', 'lossservice');
const to = path.join(__dirname, '..', 'proto', 'lossservice');
fs.rmSync(to, { recursive: true, force: true });
fs.cpSync(from, to, { recursive: true, filter: (src) => fs.statSync(src).isDirectory() || src.endsWith('.proto') });
