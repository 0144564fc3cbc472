#!/usr/bin/env bash
# Server reflection as a user's tool sees it: `buf curl`, with no .proto
# file, lists every method of the server and calls grpc.health.v1.Health/Check,
# lossservice.v1.LossService/ListLosses and Evaluate, over each reflection
# protocol (grpc.reflection.v1 and v1alpha); and with a bearer token, the
# same tool gets UNAUTHENTICATED for reflection without it.
# Usage: reflection_buf_test.sh LOSS_SERVER BUF
set -euo pipefail
server=$1 buf=$2
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$dir/log" >&2; exit 1; }
pid=

start() {  # FLAGS...: starts loss_server on 127.0.0.1:0, sets $url
  "$server" --address 127.0.0.1:0 --compute_threads 1 "$@" >"$dir/log" 2>&1 &
  pid=$!
  local port=
  for _ in $(seq 100); do
    port=$(sed -n 's/.*lossservice listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/log")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "server exited at start"
    sleep 0.1
  done
  [ -n "$port" ] || fail "no 'listening on' line"
  url=http://127.0.0.1:$port
}
stop() {
  kill -TERM "$pid"
  wait "$pid" || fail "exit status $? after SIGTERM"
}
curl() { "$buf" curl --protocol grpc --http2-prior-knowledge "$@"; }

# What the proto says the server has: every method of lossservice.v1.LossService,
# Health's, and reflection's (the same method in both versions).
want=$(
  {
    sed -n 's/^ *rpc \([A-Za-z]*\).*/lossservice.v1.LossService\/\1/p' \
      "$(dirname "$0")/../proto/lossservice/v1/loss_service.proto"
    printf '%s\n' grpc.health.v1.Health/Check grpc.health.v1.Health/Watch \
      grpc.reflection.v1.ServerReflection/ServerReflectionInfo \
      grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo
  } | sort
)
[ "$(echo "$want" | wc -l)" -eq 8 ] || fail "expected 8 methods, the proto gives: $want"
losses=$(sed -n '/oneof loss {/,/}/s/^ *[A-Za-z0-9]* \([a-z0-9_]*\) = [0-9]*;.*/\1/p' \
  "$(dirname "$0")/../proto/lossservice/v1/loss_service.proto" | sort)
[ "$(echo "$losses" | wc -l)" -eq 21 ] || fail "expected 21 losses in the proto: $losses"

start
for protocol in grpc-v1 grpc-v1alpha; do
  got=$(curl --reflect-protocol "$protocol" --list-methods "$url" | sort) ||
    fail "$protocol: --list-methods failed"
  [ "$got" = "$want" ] || fail "$protocol: --list-methods gave
$got
instead of
$want"

  out=$(curl --reflect-protocol "$protocol" -d '{"service": "lossservice.v1.LossService"}' \
    "$url/grpc.health.v1.Health/Check") || fail "$protocol: Health/Check: $out"
  [ "$(echo "$out" | tr -d ' \n')" = '{"status":"SERVING"}' ] ||
    fail "$protocol: Health/Check gave $out"

  out=$(curl --reflect-protocol "$protocol" "$url/lossservice.v1.LossService/ListLosses") ||
    fail "$protocol: ListLosses: $out"
  got=$(echo "$out" | python3 -c '
import json, sys
print("\n".join(sorted(l["name"] for l in json.load(sys.stdin)["losses"])))')
  [ "$got" = "$losses" ] || fail "$protocol: ListLosses gave $got"

  out=$(curl --reflect-protocol "$protocol" -d '{"requestId": "buf-1", "mse": {},
      "input": {"shape": [2], "floatValues": [3, 5]}, "target": {"shape": [2], "floatValues": [1, 1]}}' \
    "$url/lossservice.v1.LossService/Evaluate") || fail "$protocol: Evaluate: $out"
  got=$(echo "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["requestId"], r["loss"]["floatValues"])')
  # MSE of (3 - 1, 5 - 1): (4 + 16) / 2.
  [ "$got" = "buf-1 [10]" ] || fail "$protocol: Evaluate gave $out"
done
stop

# With a token: reflection without it is refused, as every RPC but health.
echo "  reflection-t0ken " >"$dir/token"
start --auth_token_file "$dir/token"
if out=$(curl --list-methods "$url" 2>&1); then fail "listed methods without the token: $out"; fi
# buf renders UNAUTHENTICATED as "you are not authenticated" (with advice
# about its own registry); the server's log says it refused the call.
echo "$out" | grep -q "not authenticated" || fail "not UNAUTHENTICATED without the token: $out"
auth="authorization: Bearer reflection-t0ken"
got=$(curl --reflect-header "$auth" --list-methods "$url" | sort) ||
  fail "--list-methods with the token failed"
[ "$got" = "$want" ] || fail "with the token, --list-methods gave $got"
evaluate='{"requestId": "buf-2", "mse": {}, "input": {"shape": [1], "floatValues": [4]},
  "target": {"shape": [1], "floatValues": [1]}}'
# The token for reflection, not for the call itself: UNAUTHENTICATED.
if out=$(curl --reflect-header "$auth" -d "$evaluate" "$url/lossservice.v1.LossService/Evaluate" 2>&1); then
  fail "Evaluate without the token: $out"
fi
[ "$(echo "$out" | tr -d '\n' | sed 's/  */ /g')" = '{ "code": "unauthenticated", "message": "this server requires a bearer token: send the metadata \"authorization: Bearer \u003ctoken\u003e\""}' ] ||
  fail "Evaluate without the token: $out"
out=$(curl --reflect-header "$auth" -H "$auth" -d "$evaluate" \
  "$url/lossservice.v1.LossService/Evaluate") || fail "Evaluate with the token: $out"
[ "$(echo "$out" | tr -d ' \n')" = '{"loss":{"dtype":"DATA_TYPE_FLOAT32","floatValues":[9]},"requestId":"buf-2"}' ] ||
  fail "Evaluate with the token gave $(echo "$out" | tr -d ' \n')"
stop
echo "reflection_buf_test: buf curl lists 8 methods and calls Health/Check, ListLosses and Evaluate over grpc-v1 and grpc-v1alpha"
