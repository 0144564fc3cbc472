#!/usr/bin/env bash
# Prints the Debian packages that hold the shared libraries the given
# binaries load (ldd, the dynamic loader included), one per line, sorted.
# The Dockerfile's runtime stage installs exactly these, so the image follows
# the binaries as their libraries change. Fails on a library ldd cannot find
# or no package owns.
#   runtime-packages.sh BINARY...
set -euo pipefail

# dpkg knows a file by the path its package ships it at; with Debian's merged
# /usr, ldd may report /lib/... for /usr/lib/... or the other way round.
owner() {
  local path=$1 real candidates=() c
  real=$(readlink -f "$path")
  candidates=("$path" "$real")
  for c in "$path" "$real"; do
    case "$c" in
      /usr/*) candidates+=("${c#/usr}") ;;
      *) candidates+=("/usr$c") ;;
    esac
  done
  for c in "${candidates[@]}"; do
    if dpkg -S "$c" 2>/dev/null | grep -v '^diversion ' | sed -n '1s/^\([^:]*\)\(:[a-z0-9]*\)\{0,1\}: .*/\1/p' |
      grep .; then
      return 0
    fi
  done
  echo "runtime-packages.sh: no Debian package owns $path" >&2
  return 1
}

libraries=$(ldd "$@" | awk '
  /:$/ { next }  # the "BINARY:" line heading each list
  /not found/ { print "MISSING " $1; next }
  $2 == "=>" && $3 ~ /^\// { print $3; next }
  $1 ~ /^\// { print $1 }' | sort -u)
if grep -q '^MISSING' <<<"$libraries"; then
  echo "runtime-packages.sh: ldd cannot find: $(sed -n 's/^MISSING //p' <<<"$libraries" | tr '\n' ' ')" >&2
  exit 1
fi
for lib in $libraries; do owner "$lib"; done | sort -u
