#!/usr/bin/env bash
# The container image as shipped, run with podman (docker/build.sh builds it):
#
#   A. as deployed, in a network namespace of its own: the image's defaults
#      (0.0.0.0:50051), its HEALTHCHECK, health, ListLosses and the seed
#      walk-through over the container's loopback, a non-root user, and a
#      clean exit (status 0) within the grace on SIGTERM;
#   B. on the host's network with arguments after the image name and
#      LOSS_SERVER_* variables: the arguments reach loss_server (port 0 on
#      127.0.0.1, a 1 MiB limit from the environment), a client in another
#      container calls it over the host's loopback, and `podman stop` (the
#      image's STOPSIGNAL) ends it with status 0 within the grace.
#
#   docker/container_test.sh        (IMAGE, default localhost/lossservice:latest)
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/lossservice:latest}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/docker/containers.conf}
GRACE_S=10  # the default of loss_server's drain (--shutdown_grace_s)
# Every contract loss, in EvaluateRequest field order (field 10 onwards).
LOSSES="mse l1 rmse huber smooth_l1 cross_entropy nll bce bce_with_logits kl_div poisson_nll
gaussian_nll soft_margin multilabel_soft_margin multi_margin multilabel_margin hinge_embedding
margin_ranking cosine_embedding triplet_margin ctc"

a=lossservice-test-$$-a b=lossservice-test-$$-b
out=$(mktemp) err=$(mktemp) big=$(mktemp)
cleanup() {
  podman rm -f -t 0 "$a" "$b" >/dev/null 2>&1 || true
  rm -f "$out" "$err" "$big"
}
trap cleanup EXIT
passed=0  # groups of checks: the image's configuration, then each run and each stop
fail() {
  echo "FAIL: $*" >&2
  echo "container_test: $passed passed, 1 failed"
  for c in "$a" "$b"; do
    podman logs "$c" >"$out" 2>&1 && { echo "--- podman logs $c" >&2; cat "$out" >&2; }
  done
  exit 1
}
# podman without systemd warns that it cannot schedule health checks (the
# test runs them itself with `podman healthcheck run`): keep that off the log.
quiet() { "$@" 2>"$err" || { cat "$err" >&2; return 1; }; }
inspect() { podman image inspect --format "$1" "$IMAGE"; }

podman image exists "$IMAGE" || fail "no image $IMAGE (docker/build.sh builds it)"
echo "image $IMAGE: $(inspect '{{.Size}}' | numfmt --to=iec)"

# The image's configuration.
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["loss_server"]' ] || fail "entrypoint"
[ "$(inspect '{{.Config.User}}')" = 10001:10001 ] || fail "user $(inspect '{{.Config.User}}')"
[ "$(inspect '{{.Config.StopSignal}}')" = SIGTERM ] || fail "stop signal"
ports=$(inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}')
[ "$ports" = "50051/tcp 9464/tcp " ] || fail "exposed ports: $ports"
health=$(inspect '{{json .Config.Healthcheck.Test}}')
[ "$health" = '["CMD","loss_client","--address=127.0.0.1:50051","--timeout_ms=2000","health"]' ] ||
  fail "healthcheck: $health"
passed=$((passed + 1))

wait_listening() {  # container, address pattern -> prints the port
  local port
  for _ in $(seq 100); do
    port=$(podman logs "$1" 2>&1 | sed -n "s/.*listening on $2:\([0-9]*\).*/\1/p")
    [ -n "$port" ] && { echo "$port"; return 0; }
    [ "$(podman inspect --format '{{.State.Running}}' "$1")" = true ] || return 1
    sleep 0.1
  done
  return 1
}

# Sends SIGTERM (podman stop: the image's STOPSIGNAL; or podman kill) and
# checks exit status 0 within the grace and the server's drain lines (no
# client calls by then: nothing refused).
check_stop() {
  local c=$1 how=$2 start elapsed status
  start=$(date +%s%N)
  case "$how" in
    kill) podman kill --signal TERM "$c" >/dev/null ;;
    stop) quiet podman stop -t $((GRACE_S + 5)) "$c" >/dev/null ;;
  esac
  status=$(timeout $((GRACE_S + 10)) podman wait "$c") || fail "$c: podman wait"
  elapsed=$((($(date +%s%N) - start) / 1000000))
  [ "$status" = 0 ] || fail "$c: exit status $status after SIGTERM"
  [ "$elapsed" -le $((GRACE_S * 1000)) ] || fail "$c: exit after $elapsed ms, over the ${GRACE_S} s grace"
  podman logs "$c" >"$out" 2>&1
  grep -q "received SIGTERM, shutting down" "$out" || fail "$c: no SIGTERM line"
  grep -q "draining: health NOT_SERVING, new calls refused (UNAVAILABLE)" "$out" ||
    fail "$c: no drain line"
  grep -Eq "drained in [0-9.]+ ms: every accepted call finished; 0 refused while draining" "$out" ||
    fail "$c: the drain did not end with every call finished: $(grep -i drain "$out")"
  echo "$c: SIGTERM ($how) -> exit status 0 after $elapsed ms"
  passed=$((passed + 1))
}

# --- A: the image as deployed -------------------------------------------
quiet podman run -d --name "$a" --network=none "$IMAGE" >/dev/null || fail "podman run $a"
wait_listening "$a" '0\.0\.0\.0' >/dev/null || fail "$a: no 'listening on 0.0.0.0:' line"
client_a() { podman exec "$a" loss_client --address=127.0.0.1:50051 "$@"; }
quiet podman healthcheck run "$a" >"$out" || fail "$a: HEALTHCHECK: $(cat "$out")"
[ "$(podman exec "$a" id)" = "uid=10001(loss) gid=10001(loss) groups=10001(loss)" ] ||
  fail "$a: $(podman exec "$a" id), want the user loss (10001)"
[ "$(client_a health)" = SERVING ] || fail "$a: health"
[ "$(client_a health lossservice.v1.LossService)" = SERVING ] || fail "$a: service health"
client_a list >"$out" || fail "$a: list"
listed=$(awk '/^[a-z]/ { printf "%s%s", sep, $1; sep = " " }' "$out")
[ "$listed" = "$(echo $LOSSES)" ] || fail "$a: ListLosses names: $listed"
client_a seed >"$out" || fail "$a: seed: $(tail -1 "$out")"
grep -Eq "^seed: [0-9]+ values agree, 0 differ$" "$out" || fail "$a: seed: $(tail -1 "$out")"
echo "$a: HEALTHCHECK healthy; health SERVING; $(echo $LOSSES | wc -w) losses listed; $(tail -1 "$out")"
passed=$((passed + 1))
check_stop "$a" kill

# --- B: arguments and environment, on the host's loopback ---------------
quiet podman run -d --name "$b" --network=host -e LOSS_SERVER_MAX_MESSAGE_MB=1 \
  "$IMAGE" --address=127.0.0.1:0 --log_level=debug >/dev/null || fail "podman run $b"
port=$(wait_listening "$b" '127\.0\.0\.1') || fail "$b: --address=127.0.0.1:0 not applied"
client_b() {
  podman run --rm -i --network=host --entrypoint loss_client "$IMAGE" \
    --address="127.0.0.1:$port" "$@" 2>"$err"
}
[ "$(client_b health)" = SERVING ] || fail "$b: health from another container"
# 2 x 300k floats: 2.4 MB on the wire, over LOSS_SERVER_MAX_MESSAGE_MB=1.
values() { awk 'BEGIN { printf "0.5"; for (i = 1; i < 300000; i++) printf ",0.5" }'; }
{
  printf '{"mse": {}, "input": {"shape": [300000], "float_values": [%s]}, ' "$(values)"
  printf '"target": {"shape": [300000], "float_values": [%s]}}\n' "$(values)"
} >"$big"
if client_b evaluate - <"$big" >"$out" 2>&1; then fail "$b: a 2.4 MB request passed a 1 MiB limit"; fi
grep -q RESOURCE_EXHAUSTED "$out" "$err" || fail "$b: over the limit: $(cat "$out" "$err")"
echo "$b: port $port from --address=127.0.0.1:0; LOSS_SERVER_MAX_MESSAGE_MB=1 -> RESOURCE_EXHAUSTED"
passed=$((passed + 1))
check_stop "$b" stop

# The image's configuration, two runs, two stops.
echo "container_test: $passed passed, 0 failed"
