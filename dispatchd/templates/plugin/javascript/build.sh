#!/usr/bin/env bash
# Builds {{name}}.wasm in this folder: a WebAssembly component of the
# `{{world}}` world of dispatch:plugin@{{wit_version}}, with componentize-js
# (npm, pinned in package.json).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "{{name}}: needs Node.js 20 or later and npm (Debian: apt install nodejs npm)" >&2
  exit 1
fi
if [ ! -d node_modules/@bytecodealliance/componentize-js ]; then
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi
# Write aside, then move: a failed build leaves no half file.
node build.mjs {{name}}.wasm.tmp
mv {{name}}.wasm.tmp {{name}}.wasm
echo "{{name}}: built $PWD/{{name}}.wasm ($(wc -c <{{name}}.wasm) bytes)"
