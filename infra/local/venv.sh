#!/usr/bin/env bash
# Creates (or refreshes) the project-local Python venvs: ./.venv with
# infra/local/requirements.txt (moto, cfn-lint, SAM CLI) and ./.venv-checkov with
# infra/local/requirements-checkov.txt (checkov pins boto versions of its own) and
# ./.venv-schemathesis with infra/local/requirements-schemathesis.txt.
# Idempotent: does nothing for a venv that already matches its requirements file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

ensure_venv() {
  local venv="$1" req="$2"
  local stamp="$venv/.requirements.sha256"
  local want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
}

# `venv.sh plot`: only the bench's plotting venv (./.venv-plot), which nothing else needs.
if [[ "${1:-}" == "plot" ]]; then
  ensure_venv "$root/.venv-plot" "$root/infra/local/requirements-plot.txt"
  exit 0
fi
ensure_venv "$root/.venv" "$root/infra/local/requirements.txt"
ensure_venv "$root/.venv-checkov" "$root/infra/local/requirements-checkov.txt"
ensure_venv "$root/.venv-schemathesis" "$root/infra/local/requirements-schemathesis.txt"
