#!/usr/bin/env bash
# Runs the capacity simulator (crates/messaging-sim) over every scenario of docs/scale.md and
# draws its plots: docs/scale/results.md, one CSV per series, and one PNG per scenario.
# Options go to messaging-sim (--seed N, --chat-seconds S, scenario names).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
cargo run --quiet --release --locked -p messaging-sim -- --out docs/scale "$@"
bash infra/local/venv.sh plot
.venv-plot/bin/python infra/local/plot_scale.py docs/scale
