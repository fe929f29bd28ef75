#!/usr/bin/env bash
# Runs StackPro Messaging locally: moto (DynamoDB, SQS, SESv2, CloudWatch) with the table and
# queues of template.yaml, and the local API Gateway WebSocket emulator in front of the real
# functions, serving the demo web client. Ctrl-C stops everything it started.
#   GATEWAY_PORT (default 3001; a free port when taken)   extra arguments go to stackpro-gateway
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

bash infra/local/venv.sh
# The demo web client (clients/demo on the SDK and its React bindings), which the gateway serves.
(cd clients && npm ci --no-audit --no-fund --silent && npm run build --silent)
cargo build --quiet -p messaging-devstack --bin stackpro-dev -p messaging-gateway --bin stackpro-gateway
DEV="$ROOT/target/debug/stackpro-dev"

# shellcheck source=infra/local/moto.sh
source infra/local/moto.sh
mkdir -p target/local
start_moto "$ROOT/target/local/moto.log"

env_file="$ROOT/target/local/stack.env"
{
  echo "export AWS_ENDPOINT_URL=$MOTO_ENDPOINT"
  echo "export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
  "$DEV" bootstrap --endpoint "$MOTO_ENDPOINT" --prefix stackpro-local | sed 's/^/export /'
  echo "export JWT_ISSUER=https://auth.stackpro.local JWT_AUDIENCE=stackpro-messaging JWT_ALGORITHM=HS256"
  echo "export SMS_ENABLED=true"
  echo "export RUST_LOG=\${RUST_LOG:-info}"
} >"$env_file"
# shellcheck disable=SC1090
source "$env_file"

port="${GATEWAY_PORT:-3001}"
if ! "$ROOT/.venv/bin/python" -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" "$port" 2>/dev/null; then
  port="$(free_port)"
fi
# The management endpoint the functions use is the gateway's own; so are the HTTP API (whose
# /unsubscribe the notification emails link to) and the portal (the demo client).
{
  echo "export WEBSOCKET_MANAGEMENT_ENDPOINT=http://127.0.0.1:$port/local"
  echo "export HTTP_API_URL=http://127.0.0.1:$port PORTAL_URL=http://127.0.0.1:$port/"
} >>"$env_file"
export HTTP_API_URL="http://127.0.0.1:$port" PORTAL_URL="http://127.0.0.1:$port/"
"$ROOT/target/debug/stackpro-gateway" --listen "127.0.0.1:$port" --stream-every 2 "$@" >"$ROOT/target/local/gateway.log" 2>&1 &
GATEWAY_PID=$!
stop_all() {
  if kill -0 "$GATEWAY_PID" 2>/dev/null; then
    kill -INT "$GATEWAY_PID" 2>/dev/null || true # closes every socket, running $disconnect
    wait "$GATEWAY_PID" 2>/dev/null || true
  fi
  stop_moto
}
trap stop_all EXIT
for _ in $(seq 1 100); do
  grep -q "Demo web client" "$ROOT/target/local/gateway.log" 2>/dev/null && break
  kill -0 "$GATEWAY_PID" 2>/dev/null || { cat "$ROOT/target/local/gateway.log" >&2; exit 1; }
  sleep 0.1
done

cat <<EOF2

StackPro Messaging is running locally.
  WebSocket API:    ws://127.0.0.1:$port/local?token=<JWT>
  Demo web client:  http://127.0.0.1:$port/
  @connections:     http://127.0.0.1:$port/local/@connections/{connectionId}
  HTTP API:         http://127.0.0.1:$port/conversations  (Authorization: Bearer <JWT>)
  Server API:       http://127.0.0.1:$port/service/tenants/{clientId}/…  (SigV4: LOCALPORTALBACKEND, docs/server-api.md)
  moto:             $MOTO_ENDPOINT  (pid $MOTO_PID)
  logs:             target/local/gateway.log, target/local/moto.log
  environment:      target/local/stack.env (source it to run stackpro-dev invoke)

Mint a development token:
  target/debug/stackpro-dev token --tenant 123 --user alice --role OWNER
and connect any WebSocket client, e.g.
  websocat "ws://127.0.0.1:$port/local?token=\$(target/debug/stackpro-dev token --tenant 123 --user alice --role OWNER)"

Ctrl-C stops the gateway and moto.
EOF2
wait "$GATEWAY_PID"
