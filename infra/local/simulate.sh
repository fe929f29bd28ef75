#!/usr/bin/env bash
# Runs the capacity simulator (crates/messaging-sim) over every scenario of docs/scale.md and
# draws its plots: docs/scale/results.md, one CSV per series, and one PNG per scenario.
# Options go to messaging-sim (--seed N, --chat-seconds S, scenario names).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# Every scenario (no names given): what an earlier run wrote goes first, so no stale variant
# is plotted.
names=0
for a in "$@"; do [[ "$a" == -* ]] || names=$((names + 1)); done
if [[ $names -eq 0 ]]; then
  rm -f docs/scale/*.csv docs/scale/*.png docs/scale/results.md
fi
cargo run --quiet --release --locked -p messaging-sim -- --out docs/scale "$@"
bash infra/local/venv.sh plot
.venv-plot/bin/python infra/local/plot_scale.py docs/scale
