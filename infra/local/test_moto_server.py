"""The moto launcher's plain-JSON answers are the serializer's, byte for byte in meaning.

Runs moto in-process with `moto_server.py`'s patches, sends every DynamoDB data-plane
operation the project uses (and a few it does not) with every attribute type, and for each
answer compares what the plain-JSON path writes with what moto's own serializer writes for the
same result: same status, same content type, same JSON. Run by `infra/local/test.sh` with the
project venv: `.venv/bin/python infra/local/test_moto_server.py`.
"""

import base64
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_launcher():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("moto_server", os.path.join(HERE, "moto_server.py"))
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def main() -> int:
    os.environ.pop("STACKPRO_MOTO_SLOW", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    launcher = load_launcher()
    # Every item size and typed-value conversion below is computed both ways, the launcher's
    # and moto's, and must agree; moto's answer is the one used.
    import moto.dynamodb.responses as dynamo_responses
    from moto.dynamodb.models.dynamo_type import Item

    quick_to_dict, quick_size = dynamo_responses.dynamo_to_dict, Item.size
    assert quick_to_dict is not launcher.MOTO_DYNAMO_TO_DICT, "no lean conversion installed"
    assert quick_size is not launcher.MOTO_ITEM_SIZE, "no lean item size installed"
    checked = {"conversions": 0, "sizes": 0}

    def checked_to_dict(obj):  # type: ignore[no-untyped-def]
        slow = launcher.MOTO_DYNAMO_TO_DICT(obj)
        quick = quick_to_dict(obj)
        assert quick == slow and repr(quick) == repr(slow), f"conversion:\n lean {quick!r}\n moto {slow!r}"
        checked["conversions"] += 1
        return slow

    def checked_size(self):  # type: ignore[no-untyped-def]
        slow = launcher.MOTO_ITEM_SIZE(self)
        quick = quick_size(self)
        assert quick == slow, f"size of {self.attrs!r}: lean {quick}, moto {slow}"
        checked["sizes"] += 1
        return slow

    dynamo_responses.dynamo_to_dict = checked_to_dict
    Item.size = checked_size
    from moto.core.responses import BaseResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    fast = {handler: handler.serialized for handler in (DynamoHandler, DynamoDBStreamsHandler)}
    for handler, path in fast.items():
        assert path is not BaseResponse.serialized, f"no plain-JSON path for {handler.__name__}"
    compared: dict[str, int] = {}
    plain: dict[str, int] = {}

    def both(self, action_result):  # type: ignore[no-untyped-def]
        slow = BaseResponse.serialized(self, action_result)
        quick = fast[type(self)](self, action_result)
        action = self._get_action()
        compared[action] = compared.get(action, 0) + 1
        if quick is not slow:
            plain[action] = plain.get(action, 0) + (quick[2] != slow[2])
        assert quick[0] == slow[0], f"{action}: status {quick[0]} != {slow[0]}"
        assert (
            quick[1].get("Content-Type") == slow[1].get("Content-Type")
        ), f"{action}: {quick[1]} != {slow[1]}"
        assert json.loads(quick[2] or "{}") == json.loads(slow[2] or "{}"), (
            f"{action}:\n plain      {quick[2]}\n serializer {slow[2]}"
        )
        return slow

    DynamoHandler.serialized = both
    DynamoDBStreamsHandler.serialized = both
    client = Client(DomainDispatcherApplication(create_backend_app))

    def call(target: str, body: dict, service: str = "DynamoDB_20120810") -> dict:
        response = client.post(
            "/",
            data=json.dumps(body),
            headers={
                "X-Amz-Target": f"{service}.{target}",
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261202/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x",
            },
        )
        return json.loads(response.get_data(as_text=True) or "{}")

    key_schema = [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    call(
        "CreateTable",
        {
            "TableName": "t",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "G")
            ],
            "KeySchema": key_schema,
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "GSI1",
                    "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
    )
    every_type = {
        "PK": {"S": "p"},
        "SK": {"S": "a"},
        "G": {"S": "g"},
        "s": {"S": "text é ✓ \"quoted\" \\ / \n"},
        "n": {"N": "12.50"},
        "big": {"N": "123456789012345678901234567890"},
        "b": {"B": base64.b64encode(b"\x00\x01binary").decode()},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [base64.b64encode(b"one").decode()]},
        "t": {"BOOL": True},
        "f": {"BOOL": False},
        "nul": {"NULL": True},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"k": {"S": "v"}}}, {"L": []}]},
        "m": {"M": {"inner": {"M": {"deep": {"SS": ["z"]}}}, "empty": {"M": {}}}},
        "ключ ✓": {"S": ""},
        "neg": {"N": "-0.000123E+5"},
    }
    for i, sk in enumerate(["a", "b", "c", "d"]):
        item = dict(every_type, SK={"S": sk}, n={"N": str(i)})
        call("PutItem", {"TableName": "t", "Item": item, "ReturnConsumedCapacity": "TOTAL"})
    call("PutItem", {"TableName": "t", "Item": every_type, "ReturnValues": "ALL_OLD"})
    call("GetItem", {"TableName": "t", "Key": {"PK": {"S": "p"}, "SK": {"S": "a"}}})
    call("GetItem", {"TableName": "t", "Key": {"PK": {"S": "p"}, "SK": {"S": "missing"}}})
    call(
        "GetItem",
        {
            "TableName": "t",
            "Key": {"PK": {"S": "p"}, "SK": {"S": "b"}},
            "ProjectionExpression": "m.inner, l[2]",
            "ReturnConsumedCapacity": "INDEXES",
        },
    )
    page = call(
        "Query",
        {
            "TableName": "t",
            "KeyConditionExpression": "PK = :p AND SK BETWEEN :a AND :z",
            "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"S": "a"}, ":z": {"S": "z"}},
            "Limit": 2,
            "ScanIndexForward": False,
        },
    )
    assert page.get("LastEvaluatedKey"), page
    call(
        "Query",
        {
            "TableName": "t",
            "KeyConditionExpression": "PK = :p",
            "ExpressionAttributeValues": {":p": {"S": "p"}},
            "ExclusiveStartKey": page["LastEvaluatedKey"],
            "Select": "COUNT",
        },
    )
    call(
        "Query",
        {
            "TableName": "t",
            "IndexName": "GSI1",
            "KeyConditionExpression": "G = :g",
            "ExpressionAttributeValues": {":g": {"S": "g"}},
            "FilterExpression": "n > :one",
            "ExpressionAttributeValues": {":g": {"S": "g"}, ":one": {"N": "1"}},
        },
    )
    call("Scan", {"TableName": "t", "Limit": 3})
    call(
        "UpdateItem",
        {
            "TableName": "t",
            "Key": {"PK": {"S": "p"}, "SK": {"S": "c"}},
            "UpdateExpression": "ADD n :one SET #new = :v REMOVE ss",
            "ExpressionAttributeNames": {"#new": "new"},
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":v": {"L": [{"NULL": True}]}},
            "ReturnValues": "ALL_NEW",
        },
    )
    call(
        "UpdateItem",
        {
            "TableName": "t",
            "Key": {"PK": {"S": "p"}, "SK": {"S": "c"}},
            "UpdateExpression": "SET n = n + :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValues": "UPDATED_NEW",
        },
    )
    # A failed condition: an error, which both paths leave to the serializer.
    call(
        "PutItem",
        {
            "TableName": "t",
            "Item": every_type,
            "ConditionExpression": "attribute_not_exists(PK)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    )
    call(
        "BatchGetItem",
        {
            "RequestItems": {
                "t": {
                    "Keys": [
                        {"PK": {"S": "p"}, "SK": {"S": "a"}},
                        {"PK": {"S": "p"}, "SK": {"S": "nope"}},
                    ]
                }
            }
        },
    )
    call(
        "BatchWriteItem",
        {
            "RequestItems": {
                "t": [
                    {"PutRequest": {"Item": dict(every_type, SK={"S": "e"})}},
                    {"DeleteRequest": {"Key": {"PK": {"S": "p"}, "SK": {"S": "d"}}}},
                ]
            },
            "ReturnConsumedCapacity": "TOTAL",
        },
    )
    call(
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": dict(every_type, SK={"S": "f"})}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"PK": {"S": "p"}, "SK": {"S": "a"}},
                        "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "7"}},
                    }
                },
            ]
        },
    )
    call(
        "TransactWriteItems",
        {
            "TransactItems": [
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": {"PK": {"S": "p"}, "SK": {"S": "a"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            ]
        },
    )
    call(
        "TransactGetItems",
        {"TransactItems": [{"Get": {"TableName": "t", "Key": {"PK": {"S": "p"}, "SK": {"S": "f"}}}}]},
    )
    call(
        "DeleteItem",
        {
            "TableName": "t",
            "Key": {"PK": {"S": "p"}, "SK": {"S": "b"}},
            "ReturnValues": "ALL_OLD",
        },
    )
    # The stream of every write above: records with both images and their timestamps.
    streams = "DynamoDBStreams_20120810"
    arn = call("DescribeTable", {"TableName": "t"})["Table"]["LatestStreamArn"]
    shard = call("DescribeStream", {"StreamArn": arn}, streams)["StreamDescription"]["Shards"][0]
    iterator = call(
        "GetShardIterator",
        {"StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"},
        streams,
    )["ShardIterator"]
    records = call("GetRecords", {"ShardIterator": iterator, "Limit": 5}, streams)
    assert len(records["Records"]) == 5, records
    assert isinstance(records["Records"][0]["dynamodb"]["ApproximateCreationDateTime"], (int, float))
    rest = call("GetRecords", {"ShardIterator": records["NextShardIterator"]}, streams)
    assert any("OldImage" in r["dynamodb"] for r in rest["Records"]), rest
    wanted = {
        "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
        "BatchWriteItem", "TransactWriteItems", "TransactGetItems", "GetRecords",
        "GetShardIterator",
    }
    missing = wanted - set(compared)
    assert not missing, f"not exercised: {missing}"
    assert checked["conversions"] and checked["sizes"], checked
    print(f"plain JSON == serializer for {sum(compared.values())} answers of {len(compared)} operations")
    print(f"lean == moto for {checked['conversions']} answer conversions and {checked['sizes']} item sizes")
    check_sqs_counts(launcher)
    check_keep_alive()
    return 0


def check_sqs_counts(launcher) -> None:  # type: ignore[no-untyped-def]
    """A send counts no messages (the launcher's patch), and GetQueueAttributes still counts
    each kind right: visible, in flight, delayed, with FIFO deduplication intact."""
    import boto3
    from moto import mock_aws
    from moto.sqs.models import Queue

    counted = {"during sends": 0}
    sending = {"now": False}
    for name in launcher.SQS_MESSAGE_COUNTS:
        patched = getattr(Queue, name)

        def _watched(self, patched=patched):  # type: ignore[no-untyped-def]
            value = patched.fget(self)
            if sending["now"] and value:
                counted["during sends"] += 1
            return value

        setattr(Queue, name, property(_watched))
    try:
        with mock_aws():
            sqs = boto3.client("sqs", region_name="us-east-1")
            fifo = sqs.create_queue(
                QueueName="jobs.fifo",
                Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"},
            )["QueueUrl"]
            plain = sqs.create_queue(QueueName="plain")["QueueUrl"]
            sending["now"] = True
            for n in range(5):
                sqs.send_message(
                    QueueUrl=fifo, MessageBody=f"m{n}", MessageGroupId=f"g{n % 2}",
                    MessageDeduplicationId=f"d{n}",
                )
            # The same deduplication id again: dropped, as SQS does within five minutes.
            sqs.send_message(QueueUrl=fifo, MessageBody="again", MessageGroupId="g0", MessageDeduplicationId="d0")
            sqs.send_message_batch(
                QueueUrl=plain,
                Entries=[{"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b", "DelaySeconds": 60}],
            )
            sending["now"] = False
            assert counted["during sends"] == 0, f"a send counted messages: {counted}"
            taken = sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=1)["Messages"]
            assert len(taken) == 1, taken

            def counts(url: str) -> tuple[str, str, str]:
                a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                return (
                    a["ApproximateNumberOfMessages"],
                    a["ApproximateNumberOfMessagesNotVisible"],
                    a["ApproximateNumberOfMessagesDelayed"],
                )

            assert counts(fifo) == ("4", "1", "0"), counts(fifo)
            assert counts(plain) == ("1", "0", "1"), counts(plain)
    finally:
        for name in launcher.SQS_MESSAGE_COUNTS:
            setattr(Queue, name, getattr(Queue, name).fget.__defaults__[0])
    print("SQS: sends count no messages; GetQueueAttributes counts visible, in flight and delayed")


def check_keep_alive() -> None:
    """keep-alive: the launcher's server keeps a connection open after an answer, even when
    the application left the request's body unread (drained, so the next request parses);
    a client's `Connection: close` and a chunked request body still close it."""
    import http.client
    import threading

    from werkzeug.serving import make_server

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        if environ["REQUEST_METHOD"] != "POST":  # e.g. an undrained body read as the method
            body = f"not a POST: {environ['REQUEST_METHOD'][:40]}".encode()
        elif environ["PATH_INFO"] == "/echo":
            body = environ["wsgi.input"].read()
        else:  # /ignore: the body is left unread
            body = b"ignored"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)

        def post(path: str, body: bytes, **headers: str) -> tuple[bytes, str | None]:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            return response.read(), response.getheader("Connection")

        assert post("/ignore", b"x" * 5000) == (b"ignored", None)
        socket = connection.sock
        assert socket is not None, "closed after an answer"
        assert post("/echo", b"hello") == (b"hello", None), "the unread body was not drained"
        assert connection.sock is socket, "a new connection for the second request"
        assert post("/echo", b"bye", Connection="close") == (b"bye", "close")
        assert connection.sock is None, "still open after the client asked to close"
        connection.request("POST", "/echo", body=iter([b"chunk", b"ed"]), encode_chunked=True)
        response = connection.getresponse()
        assert (response.read(), response.getheader("Connection")) == (b"chunked", "close")
        connection.close()
    finally:
        server.shutdown()
    print("keep-alive: kept after an answer (an unread body drained), closed on request and for chunked bodies")


if __name__ == "__main__":
    sys.exit(main())
