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

SQS refuses a `MessageGroupId` or `MessageDeduplicationId` longer than 128 characters, as AWS
does (moto takes any length).

SNS platform endpoints keep the `CustomUserData` they were created with and return it from
`GetEndpointAttributes`, as AWS does (moto drops it); SET_PREFERENCES checks a push endpoint's
owner there (`tests/integration/notifications.rs`,
`a_push_endpoint_must_be_the_users_own_and_addresses_cannot_be_set`).

With `STACKPRO_ENFORCE_IAM=1` it checks every request against the caller's IAM policies (moto's
own `INITIAL_NO_AUTH_ACTION_COUNT` mechanism, on from the first request), except requests signed
with the access key `stackpro-admin`, which set the stack up. Two patches make its verdicts
those of AWS (each exercised by `tests/integration/iam.rs`):
- CloudWatch signs as `monitoring`, but its IAM actions are `cloudwatch:*`;
- an SQS batch (`SendMessageBatch`, `DeleteMessageBatch`, …) is authorized by its single action
  (`sqs:SendMessage`, …): AWS has no batch actions in IAM;
- a DynamoDB transaction is authorized action by action (`dynamodb:PutItem`, `UpdateItem`,
  `DeleteItem`, `ConditionCheckItem`; `GetItem` for `TransactGetItems`): AWS has no
  `TransactWriteItems` IAM action;
- a form-encoded (Query protocol) request is verified over its body as the SDKs encode it
  (`%20`, not `+`): moto rebuilds the body from the parsed form with Python's quote_plus, so
  any signed request whose parameters hold a space (an SNS message) failed its signature.
moto checks actions, not resources: the IAM test loads each function's statements with
`Resource: "*"` and checks resource scoping separately.

Usage: the same arguments as `moto_server` (infra/local/moto.sh starts it).
"""

import json
import os
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

def _keep_custom_user_data() -> None:
    from moto.sns.models import PlatformEndpoint

    init = PlatformEndpoint.__init__

    def _with_custom_user_data(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        if self.custom_user_data and "CustomUserData" not in self.attributes:
            self.attributes["CustomUserData"] = self.custom_user_data

    PlatformEndpoint.__init__ = _with_custom_user_data


_keep_custom_user_data()


def _sqs_fifo_id_limits() -> None:
    """SQS refuses a MessageGroupId or MessageDeduplicationId over 128 characters; moto takes
    any length, so a group built from two long ids would pass here and fail in AWS."""
    from moto.sqs.exceptions import InvalidParameterValue
    from moto.sqs.models import SQSBackend

    send = SQSBackend.send_message

    def _checked(self, queue_name, message_body, *args, **kwargs):  # type: ignore[no-untyped-def]
        names = ["message_attributes", "delay_seconds", "deduplication_id", "group_id"]
        given = dict(zip(names, args))
        given.update(kwargs)
        for parameter, value in (
            ("MessageGroupId", given.get("group_id")),
            ("MessageDeduplicationId", given.get("deduplication_id")),
        ):
            if value is not None and not 1 <= len(value) <= 128:
                raise InvalidParameterValue(
                    f"Value {value} for parameter {parameter} is invalid. Reason: "
                    f"{parameter} can only include alphanumeric and punctuation characters. "
                    "1 to 128 in length."
                )
        return send(self, queue_name, message_body, *args, **kwargs)

    SQSBackend.send_message = _checked


_sqs_fifo_id_limits()

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

ADMIN_ACCESS_KEY = "stackpro-admin"
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _enforce_iam() -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequestBase

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    authenticate = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def _unless_admin(self, iam_request_cls, resource="*"):  # type: ignore[no-untyped-def]
        if f"Credential={ADMIN_ACCESS_KEY}/" in self.headers.get("Authorization", ""):
            return None
        return authenticate(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = _unless_admin

    init = IAMRequestBase.__init__
    check = IAMRequestBase.check_action_permitted

    def _aws_action_names(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        if self._action.startswith("monitoring:"):
            self._action = "cloudwatch:" + self._action.split(":", 1)[1]
        # SQS authorizes a batch by its single action (there is no sqs:SendMessageBatch).
        if self._action.startswith("sqs:") and self._action.endswith("Batch"):
            self._action = self._action[: -len("Batch")]

    def _per_transaction_action(self, resource):  # type: ignore[no-untyped-def]
        if self._action not in ("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"):
            return check(self, resource)
        items = json.loads(self._body or b"{}").get("TransactItems", [])
        actions = {TRANSACT_ACTIONS[kind] for item in items for kind in item}
        whole = self._action
        try:
            for action in sorted(actions):
                self._action = f"dynamodb:{action}"
                check(self, resource)
        finally:
            self._action = whole
        return None

    create_request = IAMRequestBase._create_aws_request

    def _form_as_sent(self):  # type: ignore[no-untyped-def]
        from botocore.utils import percent_encode_sequence

        form = (self._headers.get("Content-Type") or "").startswith(
            "application/x-www-form-urlencoded"
        )
        if form and not self._body and self._data:
            self._body = percent_encode_sequence(self._data).encode()
        return create_request(self)

    IAMRequestBase.__init__ = _aws_action_names
    IAMRequestBase.check_action_permitted = _per_transaction_action
    IAMRequestBase._create_aws_request = _form_as_sent


if os.environ.get("STACKPRO_ENFORCE_IAM") == "1":
    _enforce_iam()

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
