#!/usr/bin/env bash
# The independent run of BENCHMARKS.md ("deliveries leased at ingest"): wrk
# (2 threads, 64 connections, 10 s, unique ~84-byte events) against a
# `dispatchd --dev` on a fresh PostgreSQL database, delivering to one
# subscription served by nginx (one worker, `return 204`) on 127.0.0.1.
# Delivered is counted from nginx's access log. Needs wrk and nginx
# (Debian: apt-get install wrk nginx-light).
#
#   dispatch-bench/wrk/run.sh target/release/dispatchd [ENV=VALUE ...]
set -euo pipefail
bin=$(realpath "$1"); shift
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
pg=${PG_URL:-postgres://postgres@127.0.0.1:5432}
sed "s#@DIR@#$dir#g" "$here/nginx.conf.in" > "$dir/nginx.conf"
nginx -c "$dir/nginx.conf"
trap 'kill $(cat "$dir/nginx.pid") 2>/dev/null || true; kill "${pid:-}" 2>/dev/null || true' EXIT
psql -q "$pg/postgres" -c "drop database if exists dispatch_wrk with (force)" -c "create database dispatch_wrk" >/dev/null
env "$@" DATABASE_URL="$pg/dispatch_wrk" ADDR=127.0.0.1:18081 RUST_LOG=warn "$bin" --dev > "$dir/dispatchd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18081/health >/dev/null && break; sleep 0.1; done
curl -sf -X POST http://127.0.0.1:18081/subscriptions -H 'Content-Type: application/json' \
  -d '{"id":"nginx","url":"http://127.0.0.1:18080/hook","event_types":["order.*"]}' >/dev/null
t0=$(date +%s.%N)
wrk -t2 -c64 -d10s -s "$here/post.lua" http://127.0.0.1:18081 > "$dir/wrk.out"
req=$(grep -oP '^\s+\K\d+(?= requests in)' "$dir/wrk.out")
non2xx=$(grep -oP 'Non-2xx or 3xx responses: \K\d+' "$dir/wrk.out" || echo 0)
accepted=$((req - non2xx))
for _ in $(seq 600); do
  [ "$(wc -l < "$dir/access.log" 2>/dev/null || echo 0)" -ge "$accepted" ] && break
  sleep 0.1
done
sleep 1.2 # nginx flushes its log buffer every second
python3 - "$t0" "$(tail -1 "$dir/access.log")" "$(wc -l < "$dir/access.log")" "$accepted" <<'PY'
import sys
t0, last, n, acc = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"accepted {acc} ({acc / 10:.0f}/s over wrk's 10 s); delivered {n} in {last - t0:.2f} s = {n / (last - t0):.0f}/s")
PY
grep -E "Requests/sec|Latency|Non-2xx|Socket errors" "$dir/wrk.out"
psql -q "$pg/postgres" -c "drop database if exists dispatch_wrk with (force)" >/dev/null 2>&1 || true
