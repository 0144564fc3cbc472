#!/usr/bin/env bash
# The installed C++ client as another project uses it: installs the build
# tree into a temporary prefix, builds examples/cpp (find_package(lossservice))
# and the README's C++ example against it, runs both against LOSS_SERVER and
# compares the numbers with PyTorch.
# Usage: client_package_test.sh BUILD_DIR SOURCE_DIR LOSS_SERVER
set -euo pipefail
build=$(realpath "$1") src=$(realpath "$2") server=$3
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
[ -f "$tmp/prefix/lib/cmake/lossservice/lossserviceConfig.cmake" ] || fail "no package config"

# A project of its own: examples/cpp as it is, plus the README's C++ block in
# a main() (its address replaced by the command line's).
mkdir -p "$tmp/project"
awk '/^```cpp$/ {on = 1; next} /^```$/ {on = 0} on' "$src/README.md" \
  | sed 's/"localhost:50051"/argv[1]/' >"$tmp/project/readme_block.inc"
[ -s "$tmp/project/readme_block.inc" ] || fail "no \`\`\`cpp block in README.md"
cat >"$tmp/project/readme.cc" <<'CC'
#include <cstdint>
#include <iostream>
#include <vector>

#include "client/client.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
#include "readme_block.inc"
  return 0;
}
CC
cat >"$tmp/project/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(lossservice_consumer LANGUAGES CXX)
add_subdirectory("$src/examples/cpp" example)
find_package(lossservice CONFIG REQUIRED)
add_executable(readme readme.cc)
target_include_directories(readme PRIVATE "\${CMAKE_CURRENT_SOURCE_DIR}")
target_link_libraries(readme PRIVATE lossservice::client)
CMAKE
cmake -S "$tmp/project" -B "$tmp/project/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "configure"; }
cmake --build "$tmp/project/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build"; }

log=$tmp/server.log
"$server" --address 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; fail "server exited at start"; }
  sleep 0.1
done
[ -n "$port" ] || fail "no 'listening on' line"

want=$(/usr/bin/python3 - <<'PY'
import torch, torch.nn.functional as F
x = torch.tensor([[0.1, 2.0, -1.0], [0.5, 0.5, 0.0]], requires_grad=True)
loss = F.cross_entropy(x, torch.tensor([1, 0]))
loss.backward()
print("loss %.5f" % loss.item())
print("grad " + " ".join("%.5f" % g for g in x.grad.reshape(-1).tolist()))
PY
)
# Numbers to 5 decimals, words as they are.
round() {
  awk '{ for (i = 1; i <= NF; i++) {
           sep = i > 1 ? " " : ""
           if ($i ~ /^-?[0-9][0-9.e+-]*$/) printf "%s%.5f", sep, $i; else printf "%s%s", sep, $i
         }
         printf "\n" }'
}
got=$("$tmp/project/build/example/cross_entropy" "127.0.0.1:$port" | round)
[ "$got" = "$want" ] || fail "examples/cpp printed
$got
PyTorch:
$want"
got=$("$tmp/project/build/readme" "127.0.0.1:$port" | round)
want_loss=$(echo "$want" | sed -n 's/^loss //p')
[ "$got" = "$want_loss" ] || fail "the README's C++ example printed '$got'; PyTorch: $want_loss"
echo "client_package_test: find_package(lossservice), examples/cpp and the README's C++ example ok"
