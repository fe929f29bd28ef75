"""moto server, with DynamoDB made linearizable like the real service.

moto's server answers requests on several threads, and its DynamoDB backend checks conditions
and writes without a lock: two TransactWriteItems (or conditional PutItems) racing each other
can both succeed, which DynamoDB never allows. Tests that race writes on purpose (idempotent
send, sequence numbers) need the real guarantee, so every DynamoDB request runs under one lock
here. Other services (SQS long polls, S3) stay concurrent.

It also answers `GET /stackpro/ses/messages` with the emails SES accepted (subject, body,
destinations), which the tests read: moto's own `/moto-api/data.json` dumps every backend, every
table of every test included, and takes seconds late in a run while holding up every other
request.

Usage: the same arguments as `moto_server` (infra/local/moto.sh starts it).
"""

import json
import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import DomainDispatcherApplication

_dynamodb = threading.Lock()
_call_action = DynamoHandler.call_action


def _linearized(self):  # type: ignore[no-untyped-def]
    with _dynamodb:
        return _call_action(self)


DynamoHandler.call_action = _linearized

SENT_EMAILS_PATH = "/stackpro/ses/messages"
_dispatch = DomainDispatcherApplication.__call__


def _sent_emails() -> bytes:
    from moto.ses.models import ses_backends

    messages = []
    for regions in ses_backends.values():
        for backend in regions.values():
            for m in backend.sent_messages:
                messages.append(
                    {
                        "subject": getattr(m, "subject", None),
                        "body": getattr(m, "body", None),
                        "destinations": getattr(m, "destinations", {}),
                    }
                )
    return json.dumps({"messages": messages}).encode()


def _with_sent_emails(self, environ, start_response):  # type: ignore[no-untyped-def]
    if environ.get("PATH_INFO") == SENT_EMAILS_PATH and environ.get("REQUEST_METHOD") == "GET":
        body = _sent_emails()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _with_sent_emails

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
