#!/usr/bin/env bash
# Builds the example plugins into plugins/dist/*.wasm: the Rust ones with
# cargo (wasm32-wasip2), the JavaScript one with componentize-js (npm), the
# Python one with componentize-py (PyPI) and the C one with zig's compiler
# (PyPI's ziglang). Idempotent; the tests load the components from
# plugins/dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
dist=plugins/dist
mkdir -p "$dist"

# These machines set RUSTUP_AUTO_INSTALL=0: install the target explicitly.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
echo "== plugins: Rust (cargo, wasm32-wasip2)"
cargo build --quiet --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml
cp plugins/target/wasm32-wasip2/release/{redact_fields,route_by_field,slack_message,hostile}.wasm "$dist/"

for recipe in plugins/*/build.sh; do
  [ -e "$recipe" ] || continue
  echo "== plugins: $(dirname "$recipe")"
  bash "$recipe" "$PWD/$dist"
done
ls -l "$dist"
