#!/usr/bin/env bash
# The shipped binaries end to end: loss_server picks a free port and says so,
# answers health and the seed walk-through through loss_client, refuses a
# request over --max_message_mb, and exits 0 on SIGTERM after draining;
# --version.
# Usage: binaries_test.sh LOSS_SERVER LOSS_CLIENT
set -euo pipefail
server=$1 client=$2 pid=
log=$(mktemp) out=$(mktemp) big=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log" "$out" "$big"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$log" >&2; exit 1; }

# --version: the version of CMakeLists.txt, the git revision, the compiler
# and the libraries; exit 0.
version=$(sed -n 's/^project(lossservice VERSION \([0-9.]*\).*/\1/p' "$(dirname "$0")/../CMakeLists.txt")
"$server" --version >"$out" || fail "--version: exit status $?"
[ "$(head -1 "$out")" = "loss_server $version" ] || fail "--version said: $(cat "$out")"
for field in revision compiler grpc protobuf highway; do
  grep -q "^  $field: ." "$out" || fail "--version has no $field: $(cat "$out")"
done

"$server" --address 127.0.0.1:0 --max_message_mb 1 --log_level info >"$log" 2>&1 &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "server exited at start"
  sleep 0.1
done
[ -n "$port" ] || fail "no 'listening on' line"
addr=127.0.0.1:$port

[ "$("$client" --address "$addr" health)" = SERVING ] || fail "health"
[ "$("$client" --address "$addr" health lossservice.v1.LossService)" = SERVING ] ||
  fail "health of lossservice.v1.LossService"
"$client" --address "$addr" seed >"$out" || fail "seed: $(tail -1 "$out")"
grep -q "^seed: 87 values agree, 0 differ$" "$out" || fail "seed summary: $(tail -1 "$out")"

# 2 x 300k floats: 2.4 MB on the wire, over the 1 MiB limit.
values() { awk 'BEGIN { printf "0.5"; for (i = 1; i < 300000; i++) printf ",0.5" }'; }
{
  printf '{"mse": {}, "input": {"shape": [300000], "float_values": [%s]}, ' "$(values)"
  printf '"target": {"shape": [300000], "float_values": [%s]}}\n' "$(values)"
} >"$big"
if "$client" --address "$addr" evaluate "$big" >"$out" 2>&1; then fail "over-limit request succeeded"; fi
grep -q "RESOURCE_EXHAUSTED.*over the limit of 1 MiB (--max_message_mb=1)" "$out" ||
  fail "over-limit request: $(cat "$out")"
[ "$("$client" --address "$addr" health)" = SERVING ] || fail "health after the refusal"

kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "still running 10 s after SIGTERM"
wait "$pid" || fail "exit status $? after SIGTERM"
grep -q "received SIGTERM, shutting down" "$log" || fail "no shutdown line"
echo "binaries_test: server, client, limits and SIGTERM ok"
