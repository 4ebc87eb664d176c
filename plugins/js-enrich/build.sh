#!/usr/bin/env bash
# Builds plugin.js into DIST/js_enrich.wasm, a WebAssembly component of the
# `transformer` world of dispatch:plugin@0.1.0, with componentize-js (npm,
# pinned in package.json / package-lock.json).
#   bash plugins/js-enrich/build.sh /abs/path/to/dist
# Skips the build when the output is newer than every input.
set -euo pipefail
dist=${1:?usage: build.sh DIST_DIR}
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
cd "$(dirname "$0")"
out="$dist/js_enrich.wasm"
wit=../../plugin-sdk/wit

inputs=(plugin.js build.mjs package.json package-lock.json build.sh "$wit")
if [ -f "$out" ] && [ -z "$(find "${inputs[@]}" -newer "$out" -print -quit)" ]; then
  echo "js-enrich: $out is up to date"
  exit 0
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "js-enrich: needs Node.js (20 or later) and npm" >&2
  exit 1
fi
# The toolchain: node_modules as package-lock.json pins it.
if [ ! -d node_modules/@bytecodealliance/componentize-js ] \
  || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "js-enrich: npm ci (componentize-js)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

start=$SECONDS
# Write next to the output, then move: a failed build leaves no half file.
node build.mjs "$out.tmp"
mv "$out.tmp" "$out"
echo "js-enrich: built $out ($(wc -c <"$out") bytes, $((SECONDS - start)) s)"
