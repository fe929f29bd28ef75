# Sourced by the run, test and bench commands: starts moto server from the project venv on a
# free loopback port and stops it (by PID) when the calling script exits.
#   start_moto LOG          -> sets MOTO_PID and MOTO_ENDPOINT
#   start_iam_moto LOG      -> a second moto that enforces IAM (see moto_server.py);
#                              sets IAM_MOTO_PID and IAM_MOTO_ENDPOINT
#   start_second_moto LOG   -> another plain moto (the bench's steady phase);
#                              sets SECOND_MOTO_PID and SECOND_MOTO_ENDPOINT
#   stop_moto               -> stops what they started (also run on EXIT)

free_port() {
  "$ROOT/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# launch_moto LOG [VAR=VALUE...]: starts one moto (with those environment variables) and waits
# until it answers; sets LAUNCHED_PID and LAUNCHED_ENDPOINT.
launch_moto() {
  local log="$1" port attempt
  shift
  mkdir -p "$(dirname "$log")"
  for attempt in 1 2 3; do
    port="$(free_port)"
    # moto_server with DynamoDB requests serialised (see moto_server.py).
    env "$@" "$ROOT/.venv/bin/python" "$ROOT/infra/local/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    LAUNCHED_PID=$!
    LAUNCHED_ENDPOINT="http://127.0.0.1:$port"
    if "$ROOT/.venv/bin/python" - "$LAUNCHED_ENDPOINT" <<'PY'
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
      return 0
    fi
    kill "$LAUNCHED_PID" 2>/dev/null || true
    wait "$LAUNCHED_PID" 2>/dev/null || true
    echo "moto did not start on port $port (attempt $attempt); see $log" >&2
  done
  return 1
}

start_moto() {
  launch_moto "${1:-$ROOT/target/moto.log}" || return 1
  MOTO_PID=$LAUNCHED_PID
  MOTO_ENDPOINT=$LAUNCHED_ENDPOINT
  export MOTO_PID MOTO_ENDPOINT
}

# A fresh moto of its own for one phase of the bench (its heap free of the earlier phases').
start_second_moto() {
  launch_moto "${1:-$ROOT/target/moto-second.log}" || return 1
  SECOND_MOTO_PID=$LAUNCHED_PID
  SECOND_MOTO_ENDPOINT=$LAUNCHED_ENDPOINT
  export SECOND_MOTO_PID SECOND_MOTO_ENDPOINT
}

start_iam_moto() {
  launch_moto "${1:-$ROOT/target/moto-iam.log}" STACKPRO_ENFORCE_IAM=1 || return 1
  IAM_MOTO_PID=$LAUNCHED_PID
  IAM_MOTO_ENDPOINT=$LAUNCHED_ENDPOINT
  export IAM_MOTO_PID IAM_MOTO_ENDPOINT
}

stop_moto() {
  local pid
  for pid in "${MOTO_PID:-}" "${IAM_MOTO_PID:-}" "${SECOND_MOTO_PID:-}"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  MOTO_PID=
  IAM_MOTO_PID=
  SECOND_MOTO_PID=
}
