#!/usr/bin/env bash
# loss_server's flags from the environment (LOSS_SERVER_<FLAG>): a variable
# sets its flag, the command line wins, a bad value stops the server with a
# message naming the variable, an unknown LOSS_SERVER_ variable is a warning.
# Usage: flag_env_test.sh LOSS_SERVER LOSS_CLIENT
set -euo pipefail
server=$1 client=$2
log=$(mktemp) out=$(mktemp)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -f "$log" "$out"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$out" "$log" >&2; exit 1; }
for v in $(env | sed -n 's/^\(LOSS_SERVER_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done

# --help shows a flag's current value beside its default.
LOSS_SERVER_MAX_MESSAGE_MB=3 "$server" --help >"$out" 2>&1 || true
grep -q "default: 64; currently: 3;" "$out" || fail "LOSS_SERVER_MAX_MESSAGE_MB=3 not applied"
grep -q "environment variable LOSS_SERVER_<FLAG>" "$out" || fail "--help does not document it"
LOSS_SERVER_MAX_MESSAGE_MB=3 "$server" --max_message_mb=5 --help >"$out" 2>&1 || true
grep -q "default: 64; currently: 5;" "$out" || fail "the command line does not win"

# A bad value: exit status 1 before serving, one line naming the variable.
status=0
LOSS_SERVER_MAX_INFLIGHT=lots "$server" --address 127.0.0.1:0 >"$out" 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "bad value: exit status $status, want 1"
want="loss_server: environment variable LOSS_SERVER_MAX_INFLIGHT: Illegal value 'lots' specified for flag 'max_inflight'"
[ "$(cat "$out")" = "$want" ] || fail "bad value message: $(cat "$out")"

# A server configured by the environment alone; an unknown variable warns.
LOSS_SERVER_ADDRESS=127.0.0.1:0 LOSS_SERVER_LOG_LEVEL=info LOSS_SERVER_NO_SUCH_FLAG=1 \
  "$server" >"$log" 2>&1 &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "server exited at start"
  sleep 0.1
done
[ -n "$port" ] || fail "LOSS_SERVER_ADDRESS=127.0.0.1:0: no 'listening on 127.0.0.1:' line"
grep -qx "loss_server: warning: ignoring LOSS_SERVER_NO_SUCH_FLAG: no such flag" "$log" ||
  fail "no warning about LOSS_SERVER_NO_SUCH_FLAG"
[ "$("$client" --address "127.0.0.1:$port" health)" = SERVING ] || fail "health"
kill -TERM "$pid"
wait "$pid" || fail "exit status $? after SIGTERM"
pid=
echo "flag_env_test: environment, command line, bad value and unknown variable ok"
