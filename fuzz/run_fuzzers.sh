#!/usr/bin/env bash
# fuzz/run_fuzzers.sh BUILD_DIR SECONDS: runs fuzz_evaluate, fuzz_activate and
# fuzz_stream side by side, each for SECONDS, from BUILD_DIR/fuzz/seeds (the
# corpus fuzz_seed_corpus made from the tests) and its dictionary, into
# BUILD_DIR/fuzz/corpus/<target> (kept between runs). Fails if any of them
# stops on a crash, a leak, a sanitizer report or a failed check, and prints
# the input as a C string for fuzz/regressions.cc.
set -euo pipefail
build=$1
seconds=$2
dir=$build/fuzz
targets=(evaluate activate stream)
pids=()
for t in "${targets[@]}"; do
  mkdir -p "$dir/corpus/$t" "$dir/findings"
  rm -f "$dir/findings/$t-"*
  # -max_len: the largest seed; -timeout: a single input taking 30 s is a
  # hang; -rss_limit_mb: the harness keeps a 128 MiB buffer pool.
  "$dir/fuzz_$t" -max_total_time="$seconds" -dict="$dir/seeds/$t.dict" -max_len=65536 \
    -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 -detect_leaks=1 \
    -artifact_prefix="$dir/findings/$t-" "$dir/corpus/$t" "$dir/seeds/$t" \
    >"$dir/fuzz_$t.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!targets[@]}"; do
  t=${targets[$i]}
  if wait "${pids[$i]}"; then
    stats=$(grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "$dir/fuzz_$t.log" |
      sed 's/^stat:://' | tr -s ' \n' ' ')
    echo "fuzz_$t: clean for ${seconds} s; ${stats}corpus $(ls "$dir/corpus/$t" | wc -l) inputs"
  else
    failed=1
    echo "fuzz_$t: FAILED; the end of $dir/fuzz_$t.log:" >&2
    tail -n 60 "$dir/fuzz_$t.log" >&2
    for f in "$dir/findings/$t-"*; do
      [ -f "$f" ] || continue
      echo "input $f as a C string (for fuzz/regressions.cc):" >&2
      od -An -v -tx1 "$f" | tr -d ' \n' | sed 's/\(..\)/\\x\1/g' >&2
      echo >&2
    done
  fi
done
exit $failed
