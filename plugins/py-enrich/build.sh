#!/usr/bin/env bash
# Builds app.py into DIST/py_enrich.wasm, a WebAssembly component of the
# `transformer` world of dispatch:plugin@0.1.0, with componentize-py
# (PyPI, pinned in requirements.txt, installed into the repository's .venv).
#   bash plugins/py-enrich/build.sh /abs/path/to/dist
# Skips the build when the output is newer than every input.
set -euo pipefail
dist=${1:?usage: build.sh DIST_DIR}
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
out="$dist/py_enrich.wasm"
wit="$root/plugin-sdk/wit"
venv="$root/.venv"

inputs=(app.py requirements.txt build.sh "$wit")
if [ -f "$out" ] && [ -z "$(find "${inputs[@]}" -newer "$out" -print -quit)" ]; then
  echo "py-enrich: $out is up to date"
  exit 0
fi

# The toolchain: componentize-py as requirements.txt pins it.
want=$(sed -n 's/^componentize-py==//p' requirements.txt)
if [ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $want" ]; then
  echo "py-enrich: pip install componentize-py==$want into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
fi

start=$SECONDS
# Build from a copy: componentize-py runs the module at build time and
# would leave __pycache__ here. It generates the wit_world bindings itself.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp app.py "$work/"
"$venv/bin/componentize-py" --quiet -d "$wit" -w transformer \
  componentize -p "$work" app -o "$out.tmp"
mv "$out.tmp" "$out"
echo "py-enrich: built $out ($(wc -c <"$out") bytes, $((SECONDS - start)) s)"
