#!/usr/bin/env bash
# Builds {{name}}.wasm in this folder: a WebAssembly component of the
# `{{world}}` world of dispatch:plugin@{{wit_version}}.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
  echo "{{name}}: needs Rust: install rustup from https://rustup.rs, then run this again" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
cargo build --quiet --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{crate}}.wasm" {{name}}.wasm
echo "{{name}}: built $PWD/{{name}}.wasm ($(wc -c <{{name}}.wasm) bytes)"
