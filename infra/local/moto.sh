# Sourced by the run and test commands: starts moto server from the project venv on a free
# loopback port and stops it (by PID) when the calling script exits.
#   start_moto            -> sets MOTO_PID and MOTO_ENDPOINT
#   stop_moto             -> stops what start_moto started (also run on EXIT)

free_port() {
  "$ROOT/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_moto() {
  local log="${1:-$ROOT/target/moto.log}" port attempt
  mkdir -p "$(dirname "$log")"
  for attempt in 1 2 3; do
    port="$(free_port)"
    # moto_server with DynamoDB requests serialised (see moto_server.py).
    "$ROOT/.venv/bin/python" "$ROOT/infra/local/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    MOTO_PID=$!
    MOTO_ENDPOINT="http://127.0.0.1:$port"
    if "$ROOT/.venv/bin/python" - "$MOTO_ENDPOINT" <<'PY'
import sys, time, urllib.request
url = sys.argv[1] + "/moto-api/"
for _ in range(100):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY
    then
      trap stop_moto EXIT
      # Ctrl-C / kill become a normal exit, so the EXIT trap stops moto.
      trap 'exit 130' INT TERM
      export MOTO_PID MOTO_ENDPOINT
      return 0
    fi
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    echo "moto did not start on port $port (attempt $attempt); see $log" >&2
  done
  return 1
}

stop_moto() {
  if [[ -n "${MOTO_PID:-}" ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  MOTO_PID=
}
