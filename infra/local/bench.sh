#!/usr/bin/env bash
# The benchmarks, on the local stack: builds the function binaries and the bench in release,
# starts moto on a free loopback port, runs stackpro-bench, stops moto. Results go to
# bench/results/latest.json and bench/results/latest.md. Arguments go to stackpro-bench
# (--sizes 2,10,100,1000,5000 --steady-clients 1000 --steady-rate 10 --steady-seconds 60
#  --concurrency 64 --cold-runs 20). `--soak` runs the soak alone instead (--soak-clients 1000
#  --soak-rate 50 --soak-seconds 300): bench/results/soak.{json,md}, soak-rss.csv and .png.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
bash infra/local/venv.sh
# Two builds: one invocation would unify the bench's dependency features into the functions.
cargo build --release --locked -p connect -p disconnect -p route -p file-share -p http-api -p broadcast -p search-indexer
cargo build --release --locked -p messaging-bench
# shellcheck source=infra/local/moto.sh
source infra/local/moto.sh
mkdir -p target/bench
start_moto "$ROOT/target/bench/moto.log"
# The steady phase gets a moto of its own: moto's per-request time grows with the items the
# fan-out rows leave in its heap, which would measure moto, not the design.
start_second_moto "$ROOT/target/bench/moto-steady.log"
RUST_LOG="${RUST_LOG:-error}" "$ROOT/target/release/stackpro-bench" --endpoint "$MOTO_ENDPOINT" --steady-endpoint "$SECOND_MOTO_ENDPOINT" --out bench/results --bin-dir target/release --moto-pid "$MOTO_PID" "$@"
if [[ " $* " == *" --soak "* ]]; then
  bash infra/local/venv.sh plot
  "$ROOT/.venv-plot/bin/python" infra/local/plot_soak.py bench/results
fi
