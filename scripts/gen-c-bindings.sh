#!/usr/bin/env bash
# Regenerates the C bindings of plugin-sdk/wit (plugin-sdk/c/<world>/) with
# wit-bindgen's C generator, and records the WIT's hash beside them (a test
# fails when the WIT changes and the bindings do not). Run it after
# changing the WIT. It needs wit-bindgen-cli 0.63.0, which takes minutes to
# build, so the output is checked in:
#   cargo install wit-bindgen-cli@0.63.0 --locked --no-default-features --features c
set -euo pipefail
cd "$(dirname "$0")/.."
want=0.63.0
bindgen=${WIT_BINDGEN:-wit-bindgen}
if [ "$("$bindgen" --version 2>/dev/null)" != "wit-bindgen-cli $want" ]; then
  echo "gen-c-bindings: needs wit-bindgen-cli $want; install it with" >&2
  echo "  cargo install wit-bindgen-cli@$want --locked --no-default-features --features c" >&2
  exit 1
fi
for world in transformer router; do
  rm -rf "plugin-sdk/c/$world"
  "$bindgen" c plugin-sdk/wit --world "$world" --out-dir "plugin-sdk/c/$world" >/dev/null
done
sha256sum plugin-sdk/wit/plugin.wit | cut -d' ' -f1 >plugin-sdk/c/WIT.sha256
echo "gen-c-bindings: plugin-sdk/c/{transformer,router} from $(cat plugin-sdk/c/WIT.sha256)"
