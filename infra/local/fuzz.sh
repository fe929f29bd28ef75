#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for a while, on nightly Rust.
#
#   ./infra/local/fuzz.sh                 # 10 s each (the test command runs 5 s each)
#   ./infra/local/fuzz.sh --seconds 600   # the long runs recorded in docs/fuzzing.md
#   ./infra/local/fuzz.sh --seconds 600 --keep ws_frame   # and keep what they found
#
# Needs nightly Rust (libFuzzer's instrumentation); exits 3 without it.
# A short run explores from the committed corpus (fuzz/corpus/<target>/) into a scratch
# directory, so the checkout stays clean; --keep merges the new inputs into the committed
# corpus (minimised by libFuzzer's -merge). Any crash, panic, leak or 10 s hang fails the run
# and leaves its input in fuzz/artifacts/<target>/. A summary line per target (executions,
# seconds, corpus size, crashes) goes to target/test-output/fuzz-summary.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=10
keep=0
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain (cargo +nightly); the targets cannot run here." >&2
  echo "fuzz: their committed corpora still run as plain tests (messaging-fuzz)." >&2
  exit 3
fi

cd "$ROOT/fuzz"
if [[ ${#targets[@]} -eq 0 ]]; then
  for file in fuzz_targets/*.rs; do
    targets+=("$(basename "$file" .rs)")
  done
fi
# Build once, run many: the targets with libFuzzer's coverage instrumentation, as
# `cargo fuzz build --sanitizer none` does (the flags are cargo-fuzz 0.13's), without needing
# cargo-fuzz installed. No AddressSanitizer: the code under test is safe Rust, and leaving it
# out keeps the build to minutes. `cargo +nightly fuzz run <target>` works on the same crate.
host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# Short runs (the test command's) use the quicker-to-build fuzz-ci profile; long ones release.
profile=fuzz-ci
[[ $seconds -ge 60 ]] && profile=release
cargo +nightly build --profile "$profile" --locked --quiet --target "$host" --target-dir target/ci --bins
bin="$ROOT/fuzz/target/ci/$host/$profile"

out="$ROOT/target/test-output"
mkdir -p "$out"
summary="$out/fuzz-summary.txt"
: > "$summary"
failed=0
for target in "${targets[@]}"; do
  # Frames may be 32 KB; other inputs stay small.
  case "$target" in
    ws_frame|file_frame) max_len=34000 ;;
    template) max_len=16384 ;;
    *) max_len=4096 ;;
  esac
  scratch="$(mktemp -d)"
  log="$out/fuzz-$target.log"
  status=0
  mkdir -p "artifacts/$target"
  "$bin/$target" "$scratch" "corpus/$target" -max_total_time="$seconds" -timeout=10 \
    -max_len="$max_len" -print_final_stats=1 -artifact_prefix="artifacts/$target/" \
    >"$log" 2>&1 || status=$?
  runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)"
  found="$(find "$scratch" -type f | wc -l)"
  crashes="$(find "artifacts/$target" -type f 2>/dev/null | wc -l)"
  if [[ $status -ne 0 ]]; then
    failed=1
    echo "fuzz: $target FAILED (exit $status); the log: $log"
    grep -E 'panicked|ERROR: |SUMMARY|Test unit written' "$log" | head -20 || true
  fi
  if [[ $keep -eq 1 && $status -eq 0 ]]; then
    # Into the committed corpus: only the inputs that add coverage to it.
    "$bin/$target" -merge=1 -max_len="$max_len" \
      "corpus/$target" "$scratch" >>"$log" 2>&1
  fi
  line="$(printf '%-13s %10s executions in %5s s, %5s new inputs, corpus %4s, crashes %s' \
    "$target" "${runs:-?}" "$seconds" "$found" "$(find "corpus/$target" -type f | wc -l)" "$crashes")"
  echo "$line" | tee -a "$summary"
  rm -rf "$scratch"
done
exit "$failed"
