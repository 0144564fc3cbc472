#!/usr/bin/env bash
# loss_client examples as shipped: every loss the server lists agrees with
# PyTorch (exit 0); a changed expected value is reported and exits 1; an
# unreadable or malformed examples file or an unreadable TLS file exits 2.
# Usage: loss_client_test.sh LOSS_SERVER LOSS_CLIENT EXAMPLES_JSON
set -euo pipefail
server=$1 client=$2 examples=$3
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$server" --address 127.0.0.1:0 >"$tmp/log" 2>&1 &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/log")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "server exited at start: $(cat "$tmp/log")"
  sleep 0.1
done
[ -n "$port" ] || fail "no 'listening on' line"
c() { "$client" --address "127.0.0.1:$port" "$@"; }

c examples >"$tmp/out" || fail "examples exited $?: $(grep DIFFERS "$tmp/out" | head -3)"
expected=$(( $(grep -c '"kind":"loss"' "$examples") * 2 + $(grep -c '"kind":"activation"' "$examples") ))
grep -qx "examples: $expected values agree, 0 differ, 0 listed losses without an example" "$tmp/out" ||
  fail "summary: $(tail -1 "$tmp/out") (want $expected values)"
[ "$(tail -n +3 "$tmp/out" | grep -c ' ok$')" -eq "$expected" ] || fail "ok rows"
huber=$(awk '$1 == "huber" && $2 == "loss" { print $4 }' "$tmp/out")

# One expected value changed: that row differs, and the exit status says so.
sed '/"name":"huber","required"/s/"expected_loss":{"dtype":"float64","shape":\[\],"values":\[[^]]*\]/"expected_loss":{"dtype":"float64","shape":[],"values":[2.5]/' \
  "$examples" >"$tmp/changed.json"
! cmp -s "$examples" "$tmp/changed.json" || fail "the huber example was not changed"
status=0
c --examples_file "$tmp/changed.json" examples >"$tmp/out" || status=$?
[ "$status" -eq 1 ] || fail "a changed value exited $status, want 1"
grep -Eq "^huber +loss +2\\.5 +$huber .*DIFFERS\$" "$tmp/out" || fail "no DIFFERS row: $(grep huber "$tmp/out")"
grep -qx "examples: $((expected - 1)) values agree, 1 differ, 0 listed losses without an example" \
  "$tmp/out" || fail "summary after the change: $(tail -1 "$tmp/out")"

status=0
c --examples_file "$tmp/missing.json" examples 2>"$tmp/err" || status=$?
[ "$status" -eq 2 ] || fail "a missing examples file exited $status, want 2"
echo '{"cases": [{}]}' >"$tmp/malformed.json"
status=0
c --examples_file "$tmp/malformed.json" examples 2>"$tmp/err" || status=$?
[ "$status" -eq 2 ] || fail "a malformed examples file exited $status, want 2"
grep -q "^examples: " "$tmp/err" || fail "message: $(cat "$tmp/err")"
status=0
c --tls --root_certificates "$tmp/missing.pem" list 2>"$tmp/err" || status=$?
[ "$status" -eq 2 ] || fail "a missing --root_certificates exited $status, want 2"
grep -q "root_certificates: cannot read" "$tmp/err" || fail "message: $(cat "$tmp/err")"
echo "loss_client_test: examples ($expected values), a changed value, unreadable files ok"
