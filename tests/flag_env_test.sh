#!/usr/bin/env bash
# loss_server's flags from the environment (LOSS_SERVER_<FLAG>): a variable
# sets its flag, the command line wins, a bad value stops the server with a
# message naming the variable, an unknown LOSS_SERVER_ variable is a warning.
# (docker/container_test.sh serves with a variable set.)
# Usage: flag_env_test.sh LOSS_SERVER
set -euo pipefail
server=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$out" >&2; exit 1; }
# --help wraps its lines: look for TEXT in the output read as one line.
has() { tr -s ' \n' ' ' <"$out" | grep -qF -- "$1"; }
for v in $(env | sed -n 's/^\(LOSS_SERVER_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done

# --help shows a flag's current value beside its default.
LOSS_SERVER_MAX_MESSAGE_MB=3 "$server" --help >"$out" 2>&1 || true
has "default: 64; currently: 3;" || fail "LOSS_SERVER_MAX_MESSAGE_MB=3 not applied"
has "environment variable LOSS_SERVER_<FLAG>" || fail "--help does not document it"
LOSS_SERVER_MAX_MESSAGE_MB=3 "$server" --max_message_mb=5 --help >"$out" 2>&1 || true
has "default: 64; currently: 5;" || fail "the command line does not win"

# A bad value: exit status 1 before serving, one line naming the variable.
status=0
LOSS_SERVER_MAX_INFLIGHT=lots "$server" --address 127.0.0.1:0 >"$out" 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "bad value: exit status $status, want 1"
want="loss_server: environment variable LOSS_SERVER_MAX_INFLIGHT: Illegal value 'lots' specified for flag 'max_inflight'"
[ "$(cat "$out")" = "$want" ] || fail "bad value message: $(cat "$out")"

# The environment alone configures the server: --help shows what it would
# serve with.
LOSS_SERVER_ADDRESS=127.0.0.1:0 LOSS_SERVER_LOG_LEVEL=debug "$server" --help >"$out" 2>&1 || true
has 'default: "0.0.0.0:50051"; currently: "127.0.0.1:0";' || fail "LOSS_SERVER_ADDRESS"
has 'default: "info"; currently: "debug";' || fail "LOSS_SERVER_LOG_LEVEL"

# An unknown variable is a warning in the server's log (in its format: here
# JSON, from LOSS_SERVER_LOG_FORMAT), and the server serves.
LOSS_SERVER_ADDRESS=127.0.0.1:0 LOSS_SERVER_LOG_FORMAT=json LOSS_SERVER_NO_SUCH_FLAG=1 \
  "$server" >"$out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$out" && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid" || fail "exit status $? after SIGTERM"
grep -q '"level":"warning","msg":"ignoring LOSS_SERVER_NO_SUCH_FLAG: no such flag"}$' "$out" ||
  fail "no warning about LOSS_SERVER_NO_SUCH_FLAG"
echo "flag_env_test.sh: environment, command line, bad value and unknown variable ok"
