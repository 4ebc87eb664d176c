// Builds plugin.js into a WebAssembly component implementing the
// `transformer` world of dispatch:plugin@0.1.0, with componentize-js.
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
  witPath: here('../../plugin-sdk/wit'),
  worldName: 'transformer',
  // No WASI features: the plugin needs none, and dispatchd offers none.
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});
await writeFile(out, component);
