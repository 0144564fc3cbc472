'use strict';
// npm pack: `prepack` copies the repository's proto/lossservice into the
// package, so that the packed module loads the .proto from its own proto/;
// `postpack` (--remove) takes the copy away again, so that the source tree
// always loads the repository's.
const fs = require('fs');
const path = require('path');

const from = path.join(__dirname, '..', '..', '..', 'proto', 'lossservice');
const to = path.join(__dirname, '..', 'proto');
fs.rmSync(to, { recursive: true, force: true });
if (process.argv[2] !== '--remove') {
  fs.cpSync(from, path.join(to, 'lossservice'), {
    recursive: true,
    filter: (src) => fs.statSync(src).isDirectory() || src.endsWith('.proto'),
  });
}
