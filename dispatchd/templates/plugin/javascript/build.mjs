// Builds plugin.js into a WebAssembly component of the `{{world}}` world
// of dispatch:plugin@{{wit_version}}, with componentize-js.
// Usage: node build.mjs OUT.wasm
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUT.wasm');
  process.exit(2);
}
const here = (p) => fileURLToPath(new URL(p, import.meta.url));

const { component } = await componentize({
  sourcePath: here('./plugin.js'),
  witPath: here('./wit'),
  worldName: '{{world}}',
  // No WASI features: the plugin needs none, and dispatchd offers none.
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});
await writeFile(out, component);
