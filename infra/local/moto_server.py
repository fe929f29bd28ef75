"""moto server, with DynamoDB made linearizable like the real service.

moto's server answers requests on several threads, and its DynamoDB backend checks conditions
and writes without a lock: two TransactWriteItems (or conditional PutItems) racing each other
can both succeed, which DynamoDB never allows. Tests that race writes on purpose (idempotent
send, sequence numbers) need the real guarantee, so every DynamoDB request runs under one lock
here. Other services (SQS long polls, S3) stay concurrent.

Usage: the same arguments as `moto_server` (infra/local/moto.sh starts it).
"""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler

_dynamodb = threading.Lock()
_call_action = DynamoHandler.call_action


def _linearized(self):  # type: ignore[no-untyped-def]
    with _dynamodb:
        return _call_action(self)


DynamoHandler.call_action = _linearized

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
