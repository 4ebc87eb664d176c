#!/usr/bin/env bash
# Runs every test of both workspaces (the daemon's, and plugins/ with the
# SDK). Installs what the tests need when it is missing: the wasm32-wasip2
# target (plugins build for it; rustup will not install it on its own where
# RUSTUP_AUTO_INSTALL=0) and a Python venv with the published `standardwebhooks` library, which verifies our signatures.
#
# PostgreSQL tests use TEST_PG_URL (default
# postgres://postgres@127.0.0.1:5432/postgres); without a server they are
# reported as skipped (every such test has `postgres` in its path, and
# nextest is told to leave those out), unless TEST_REQUIRE_POSTGRES=1.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "== installing the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi

if ! .venv/bin/python -c 'import standardwebhooks' 2>/dev/null; then
  echo "== creating .venv with standardwebhooks (PyPI)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'standardwebhooks==1.1.0'
fi
export TEST_PYTHON="$PWD/.venv/bin/python"

pg_url="${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
filter=()
if command -v psql >/dev/null && psql "$pg_url" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "== PostgreSQL reachable at $pg_url: running the PostgreSQL tests too"
  # Databases left behind by tests that failed in an earlier run.
  psql "$pg_url" -qAtc "select 'drop database if exists ' || datname || ' with (force);' from pg_database where datname like 'dispatch_t_%'" \
    | psql "$pg_url" -q >/dev/null 2>&1 || true
else
  if [ "${TEST_REQUIRE_POSTGRES:-}" = 1 ]; then
    echo "PostgreSQL is required (TEST_REQUIRE_POSTGRES=1) but does not answer at $pg_url" >&2
    exit 1
  fi
  echo "== notice: PostgreSQL not reachable at $pg_url; its tests are reported as skipped"
  filter=(-E 'not test(/postgres/)')
fi

# The plugin tests load the example components from plugins/dist/.
./scripts/build-plugins.sh
# The plugin SDK's and the example plugins' own tests (their workspace,
# on the host).
echo "== plugin SDK and example plugins: their own tests"
cargo test --quiet --manifest-path plugins/Cargo.toml

# The process tests run the real dispatchd executable.
cargo build --workspace --bins
if command -v cargo-nextest >/dev/null; then
  # nextest does not run doc tests: run them first, so the summary that
  # closes the output is the whole suite's.
  cargo test --workspace --doc
  cargo nextest run --workspace --no-fail-fast "${filter[@]}" "$@"
else
  # Without nextest the PostgreSQL tests print a notice and return.
  cargo test --workspace "$@"
fi
