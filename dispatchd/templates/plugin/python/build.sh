#!/usr/bin/env bash
# Builds {{name}}.wasm in this folder: a WebAssembly component of the
# `{{world}}` world of dispatch:plugin@{{wit_version}}, with componentize-py
# (PyPI, pinned in requirements.txt) in a virtualenv: $VENV, or ./.venv.
set -euo pipefail
cd "$(dirname "$0")"
venv=${VENV:-.venv}
want=$(sed -n 's/^componentize-py==//p' requirements.txt)
if [ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $want" ]; then
  if ! command -v python3 >/dev/null; then
    echo "{{name}}: needs Python 3.10 or later (Debian: apt install python3 python3-venv)" >&2
    exit 1
  fi
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
fi
# Build from a copy: componentize-py runs the module at build time and
# would leave __pycache__ here. It generates the wit_world bindings itself.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp app.py "$work/"
"$venv/bin/componentize-py" --quiet -d wit -w {{world}} componentize -p "$work" app -o {{name}}.wasm.tmp
mv {{name}}.wasm.tmp {{name}}.wasm
echo "{{name}}: built $PWD/{{name}}.wasm ($(wc -c <{{name}}.wasm) bytes)"
