#!/usr/bin/env bash
# Runs the local stack: moto (DynamoDB, SQS, SESv2, CloudWatch) on a free loopback port, with
# the table and queues of template.yaml, and writes the functions' environment to
# target/local/stack.env. Ctrl-C stops everything it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

bash infra/local/venv.sh
cargo build --quiet -p messaging-devstack --bin stackpro-dev
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
  # Until the local gateway serves @connections, posts go to moto's stub, which discards them.
  echo "export WEBSOCKET_MANAGEMENT_ENDPOINT=$MOTO_ENDPOINT"
  echo "export JWT_ISSUER=https://auth.stackpro.local JWT_AUDIENCE=stackpro-messaging JWT_ALGORITHM=HS256"
  echo "export JWT_VERIFICATION_KEY=stackpro-local-development-secret-not-for-production"
  echo "export RUST_LOG=\${RUST_LOG:-info}"
} >"$env_file"

cat <<EOF2

StackPro Messaging local stack is up.
  moto (DynamoDB, SQS, SESv2, CloudWatch): $MOTO_ENDPOINT   (pid $MOTO_PID, log target/local/moto.log)
  environment of the functions:            $env_file

In another terminal:
  source target/local/stack.env
  target/debug/stackpro-dev token --tenant 123 --user alice --role OWNER       # a development token
  target/debug/stackpro-dev invoke connect events/connect-good-token.json      # run a function on an event
  target/debug/stackpro-dev invoke route   events/route-create-conversation.json
  target/debug/stackpro-dev invoke route   events/route-chat-message.json

Ctrl-C stops moto.
EOF2
wait "$MOTO_PID"
