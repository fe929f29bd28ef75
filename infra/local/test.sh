#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the Python tools into ./.venv, starts moto
# on a free loopback port, runs format and lint checks, unit tests, property tests, the
# moto-backed integration tests (the client SDK's end-to-end runs among them), both template
# linters and checkov, then stops moto; last, a
# short run of every fuzz target (infra/local/fuzz.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export SAM_CLI_TELEMETRY=0

step() { printf '\n==> %s\n' "$*"; }

step "Python tools (moto, cfn-lint, SAM CLI into .venv; checkov into .venv-checkov)"
bash infra/local/venv.sh

step "Debian packages: chromium (the browser test), make (the Makefile sam build runs, dry-run by tests/integration/template_lint.rs)"
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v make >/dev/null 2>&1 || missing+=(make)
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
step "Browser test dependencies (playwright-core from npm)"
(cd tests/browser && npm ci --no-audit --no-fund --silent)

step "Clients (clients/): npm ci; type-check and build the SDK, its React bindings and the demo the browser test drives; their unit tests (the SDK's end-to-end script runs with the Rust tests below)"
(cd clients && npm ci --no-audit --no-fund --silent && npm run build --silent && npm test --silent)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "moto launcher patches: plain-JSON answers, item sizes and value conversions equal moto's own"
.venv/bin/python infra/local/test_moto_server.py

step "moto server"
# shellcheck source=infra/local/moto.sh
source infra/local/moto.sh
start_moto "$ROOT/target/test-output/moto.log"
echo "moto at $MOTO_ENDPOINT (pid $MOTO_PID)"
# A second moto that enforces IAM: tests/integration/iam.rs runs each function under its
# template policy there.
start_iam_moto "$ROOT/target/test-output/moto-iam.log"
echo "IAM-enforcing moto at $IAM_MOTO_ENDPOINT (pid $IAM_MOTO_PID)"

export STACKPRO_TEST_ENDPOINT="$MOTO_ENDPOINT"
export STACKPRO_IAM_ENDPOINT="$IAM_MOTO_ENDPOINT"
export STACKPRO_VENV="$ROOT/.venv"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export RUST_LOG="${RUST_LOG:-warn}"
# Test threads get 8 MiB of stack (a Linux main thread's): the handlers' futures are
# several times larger in these debug builds than in release, and nest deep (a 2 MiB test
# thread overflowed in files::files_posted_into_a_conversation_are_read_by_its_members_only).
export RUST_MIN_STACK=8388608
# Every frame the local gateway sends to a client during the tests, checked against
# docs/asyncapi.yaml after them.
export STACKPRO_FRAME_LOG_DIR="$ROOT/target/test-output/frames"
rm -rf "$STACKPRO_FRAME_LOG_DIR"
mkdir -p "$STACKPRO_FRAME_LOG_DIR"

step "tests (unit, property, integration against moto, template linters)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "contract: every frame the gateway sent in the tests against docs/asyncapi.yaml"
node clients/contract/validate.mjs "$STACKPRO_FRAME_LOG_DIR"

step "fuzz: every target for ${FUZZ_SECONDS:-5} s from its committed corpus (cargo +nightly fuzz)"
if cargo +nightly --version >/dev/null 2>&1; then
  bash infra/local/fuzz.sh --seconds "${FUZZ_SECONDS:-5}"
else
  echo "No nightly toolchain here (cargo +nightly): the fuzz targets cannot run on this machine."
  echo "Their committed corpora ran above as plain tests (messaging-fuzz: the_committed_corpora_pass_every_target)."
fi
