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

Two patches take moto's DynamoDB off its O(table) paths, so the local stack holds real load
(each kept to DynamoDB's semantics by `tests/integration/moto_semantics.rs`):
- **Query reads one partition, not the table.** moto's `Table.query` walks every item of the
  table (`all_items()`), sorts the matches and then applies the key condition. Here each
  partition keeps its sort keys in a sorted list (kept up to date by every put and delete), a
  table Query hands moto only the items of its partition inside the key condition's range
  (bisected, after the ExclusiveStartKey, at most Limit + 4 of them), and a GSI Query only the
  items carrying that index's hash key (items grouped by that attribute once, then moved
  between groups item by item as writes land: a connect storm's GSI Query per connection no
  longer regroups the table, 110 → 8 ms a connect at 1,000 members). moto's
  own code still applies the condition, the order, the paging and the projection to them; it
  no longer deep-copies the items it answers with (nothing changes them afterwards: a
  projection builds new items): the 5,000-recipient fan-out's Query pages 0.40 s → 0.33 s.
- **A transaction saves the items it touches, not every table.** moto deep-copies each table a
  TransactWriteItems names before applying it, to roll back on a cancelled one: the cost of a
  send grew with the table. Here the items the transaction names are saved (and the stream's
  length), moto's whole-table copy is skipped, and a cancelled or refused transaction puts
  exactly those items back: all or nothing, as before.

- **Less work per request.** moto lists its own package directory to find the backend of
  every request (`list_of_moto_modules`) and inspects the handler class for its methods
  (`method_names_from_class`); both answers never change while it runs, so they are computed
  once. A DynamoDB data-plane answer (GetItem, PutItem, UpdateItem, DeleteItem, Query, Scan,
  the batch and transaction calls) and a DynamoDB Streams read (GetRecords, GetShardIterator)
  is written as the JSON it already is instead of through moto's generic shape-walking
  serializer (a third of a request's time; a tenth of moto's time under the soak went to
  the stream's records); anything else, or a
  result holding a value JSON cannot carry as is, goes through the serializer as before
  (`infra/local/test_moto_server.py` compares the two for every operation and attribute type).
  Only server errors (5xx) are logged, not one line per request. A DynamoDB (and Streams)
  request is handed to moto's handler directly, not through the Flask app moto builds around
  it (the same call Flask's view makes).

- **A Query's answer is built in one cheap pass.** Two generic helpers were half of a
  1,000-item Query's time (py-spy): the size of each item (for the 1 MB page), computed per
  attribute through type checks and twice per item, and `dynamo_to_dict`, which turns the
  answer's typed values into JSON shapes by asking each value what it is (`hasattr`,
  `isinstance`) all the way down. Both keep their code for what is rare (sets, binary,
  nested values) and answer the common case (strings, numbers, booleans, null, maps and lists
  of them) directly, and the plain-JSON writer above looks at exact types first: a
  1,000-item Query 192 → 129 ms as a client sees it (`boto3`, its parsing included).
  `infra/local/test_moto_server.py` computes every size and conversion of its operations
  both ways and requires them equal, for every attribute type.

- **Long-lived objects leave the collector's generations.** moto keeps every item, and every
  record of a table's stream, as Python objects for as long as it runs; the interpreter's
  full collections walked all of them, pausing every request for hundreds of milliseconds
  once the heap held a bench's 5,000 connections and their stream records (steady load after
  the fan-out phase: p99 903 ms; with collections off, 221 ms). Every few seconds the young
  generations are collected and what survived is frozen (`gc.freeze()`): later collections
  walk only what is new. Objects freed by reference counting are still freed; only cycles
  among frozen objects are kept (moto's data holds none). No effect on what any request
  answers.

Two more keep the soak (1,000 clients x 50 msg/s for 5 minutes) from collapsing once moto falls
behind, each checked by `infra/local/test_moto_server.py`:
- **Connections are kept alive** between requests (`_keep_alive`): werkzeug's server closed
  every one, so each SDK request opened a connection and a thread, and under load the accept
  loop fell behind until the SDK's connects timed out.
- **A send no longer counts the queue's messages** (`_sqs_sends_skip_message_counts`): moto's
  SendMessage computed every queue attribute, three passes over the queue's messages among
  them, up to four times a send, so a backlog made every send slower.

Usage: the same arguments as `moto_server` (infra/local/moto.sh starts it).
"""

import calendar
import datetime
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

# The three counts a send skips, each a property of moto's Queue.
SQS_MESSAGE_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)


def _sqs_sends_skip_message_counts() -> None:
    """A send no longer counts the queue's messages. moto's SendMessage (and each entry of a
    SendMessageBatch) reads the queue's `attributes` up to four times for one setting,
    ContentBasedDeduplication, and `attributes` computes every attribute each time, the three
    approximate message counts included: three passes over every message in the queue, each
    asking the clock per message. So the longer a queue's backlog, the slower each send, and the
    faster the backlog grew: the soak (1,000 clients x 50 msg/s) collapsed once the route's
    continuations queued up (py-spy: 87 % of moto's GIL time in `unix_time` under
    `Queue.attributes`). While a send runs, the three counts answer 0 (nothing on the send path
    reads them); GetQueueAttributes still counts every message (`test_moto_server.py` checks
    both)."""
    import threading

    from moto.sqs.models import Queue, SQSBackend

    sending = threading.local()
    for name in SQS_MESSAGE_COUNTS:
        counted = getattr(Queue, name)

        def _count(self, counted=counted):  # type: ignore[no-untyped-def]
            return 0 if getattr(sending, "depth", 0) else counted.fget(self)

        setattr(Queue, name, property(_count))
    send = SQSBackend.send_message

    def _send(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        sending.depth = getattr(sending, "depth", 0) + 1
        try:
            return send(self, *args, **kwargs)
        finally:
            sending.depth -= 1

    SQSBackend.send_message = _send


_sqs_sends_skip_message_counts()

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


def _fast_dynamodb() -> None:
    """The two DynamoDB patches described above. Every DynamoDB request runs under `_dynamodb`,
    so the caches below never see a concurrent change."""
    import bisect
    import copy
    import types

    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    # Kept on each table (a table deleted and another created can never share them):
    # _sp_keys: {hash key: [sort values, sorted]}, built per partition on first Query;
    # _sp_writes: writes so far; _sp_gsi_by: {GSI hash attribute: {value: {item key: item}}},
    # _sp_gsi_of: {attribute: {item key: value}}, _sp_gsi_dirty: item keys written since the
    # last GSI Query, _sp_gsi_stale: items changed that no key names (rebuild them all).

    def sortable(key: DynamoType):  # type: ignore[no-untyped-def]
        return key.cast_value if key.type in ("S", "N") else None

    def touched(table: Table, key=None) -> None:  # type: ignore[no-untyped-def]
        """A write to `table`: of the item with `key` ((hash, range) DynamoTypes), or of
        items unknown (`None`: the GSI groups are rebuilt at the next GSI Query)."""
        table._sp_writes = getattr(table, "_sp_writes", 0) + 1
        if key is None:
            table._sp_gsi_stale = True
        else:
            dirty = getattr(table, "_sp_gsi_dirty", None)
            if dirty is None:
                table._sp_gsi_dirty = dirty = set()
            dirty.add(key)

    def forget(table: Table) -> None:
        table._sp_keys = {}
        touched(table)

    def item_key(table: Table, key: dict):  # type: ignore[no-untyped-def]
        """The (hash, range) DynamoTypes of a request's key, or None when it is not one."""
        try:
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        except Exception:  # moto refuses the request itself
            return None
        return (hash_key, range_key)

    def stored(table: Table, key):  # type: ignore[no-untyped-def]
        hash_key, range_key = key
        if range_key is None:
            return table.items.get(hash_key)
        return (table.items.get(hash_key) or {}).get(range_key)

    def gsi_groups(table: Table, name: str):  # type: ignore[no-untyped-def]
        """{value of attribute `name`: {item key: item}} for every item carrying `name`, kept
        up to date write by write: the items written since the last GSI Query are moved to
        their groups, not the whole table regrouped (the connect storm's GSI Query per
        connection made that O(table) each)."""
        if getattr(table, "_sp_gsi_stale", True) or not hasattr(table, "_sp_gsi_by"):
            table._sp_gsi_by = {}
            table._sp_gsi_of = {}
            table._sp_gsi_dirty = set()
            table._sp_gsi_stale = False
        by, of = table._sp_gsi_by, table._sp_gsi_of
        dirty = getattr(table, "_sp_gsi_dirty", set())
        if dirty:
            for key in dirty:
                item = stored(table, key)
                for attr, groups in by.items():
                    old = of[attr].pop(key, None)
                    if old is not None:
                        group = groups.get(old)
                        if group is not None:
                            group.pop(key, None)
                    value = item.attrs.get(attr) if item is not None else None
                    if value is not None:
                        groups.setdefault(value, {})[key] = item
                        of[attr][key] = value
            dirty.clear()
        if name not in by:
            groups: dict = {}
            values: dict = {}
            for item in table.all_items():
                value = item.attrs.get(name)
                if value is not None:
                    key = (item.hash_key, item.range_key)
                    groups.setdefault(value, {})[key] = item
                    values[key] = value
            by[name] = groups
            of[name] = values
        return by[name]

    def cached_keys(table: Table, hash_key):  # type: ignore[no-untyped-def]
        return getattr(table, "_sp_keys", {}).get(hash_key)

    def partition_keys(table: Table, hash_key):  # type: ignore[no-untyped-def]
        if not hasattr(table, "_sp_keys"):
            table._sp_keys = {}
        parts = table._sp_keys
        keys = parts.get(hash_key)
        if keys is None:
            part = table.items.get(hash_key) or {}
            keys = sorted(sortable(k) for k in part)
            parts[hash_key] = keys
        return keys

    put_item = Table.put_item
    delete_item = Table.delete_item

    def _put_item(self, item_attrs, *args, **kwargs):  # type: ignore[no-untyped-def]
        item = put_item(self, item_attrs, *args, **kwargs)
        touched(self, (item.hash_key, item.range_key))
        if self.range_key_attr is not None:
            keys = cached_keys(self, item.hash_key)
            if keys is not None:
                value = sortable(item.range_key)
                at = bisect.bisect_left(keys, value)
                if at == len(keys) or keys[at] != value:
                    keys.insert(at, value)
        return item

    def _delete_item(self, hash_key, range_key):  # type: ignore[no-untyped-def]
        item = delete_item(self, hash_key, range_key)
        touched(self, (hash_key, range_key))
        if item is not None and range_key is not None:
            keys = cached_keys(self, hash_key)
            if keys is not None:
                value = sortable(range_key)
                at = bisect.bisect_left(keys, value)
                if at < len(keys) and keys[at] == value:
                    del keys[at]
        return item

    Table.put_item = _put_item
    Table.delete_item = _delete_item

    update_item = models.DynamoDBBackend.update_item

    def _update_item(self, table_name, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return update_item(self, table_name, *args, **kwargs)
        finally:
            # An update can change the attributes a GSI is keyed on.
            table = self.tables.get(table_name)
            if table is not None:
                key = kwargs.get("key", args[0] if args else None)
                touched(table, item_key(table, key) if isinstance(key, dict) else None)

    models.DynamoDBBackend.update_item = _update_item

    def range_slice(keys, comparison, values, start, forward, limit):  # type: ignore[no-untyped-def]
        """The sort values a Query with this key condition can return, in its order: a
        superset of the matches (moto still applies the condition) that ends Limit + 4 past
        the start (one more than the page, the start key itself, and up to two values equal
        to an exclusive bound)."""
        lo, hi = 0, len(keys)
        cast = [v.cast_value for v in values]
        if comparison in ("EQ", "="):
            lo, hi = bisect.bisect_left(keys, cast[0]), bisect.bisect_right(keys, cast[0])
        elif comparison in ("LT", "<", "LE", "<="):
            hi = bisect.bisect_right(keys, cast[0])
        elif comparison in ("GT", ">", "GE", ">="):
            lo = bisect.bisect_left(keys, cast[0])
        elif comparison == "BETWEEN":
            lo, hi = bisect.bisect_left(keys, cast[0]), bisect.bisect_right(keys, cast[1])
        elif comparison == "BEGINS_WITH":
            prefix = cast[0]
            lo = bisect.bisect_left(keys, prefix)
            hi = lo
            while hi < len(keys) and isinstance(keys[hi], str) and keys[hi].startswith(prefix):
                hi += 1
        elif comparison is not None:
            return None
        if start is not None:
            if forward:
                lo = max(lo, bisect.bisect_left(keys, start))
            else:
                hi = min(hi, bisect.bisect_right(keys, start))
        window = (limit or len(keys)) + 4
        if forward:
            return keys[lo : min(hi, lo + window)]
        return keys[max(lo, hi - window) : hi][::-1]

    query = Table.query

    def _query(  # type: ignore[no-untyped-def]
        self,
        hash_key,
        range_comparison,
        range_objs,
        limit,
        exclusive_start_key,
        scan_index_forward,
        projection_expressions,
        index_name=None,
        *args,
        **kwargs,
    ):
        candidates = None
        if index_name is None and self.range_key_attr is not None and hash_key is not None:
            part = self.items.get(hash_key)
            if not part:
                candidates = []
            elif self.range_key_type in ("S", "N"):
                keys = partition_keys(self, hash_key)
                start = None
                if exclusive_start_key:
                    start = DynamoType(exclusive_start_key[self.range_key_attr]).cast_value
                chosen = range_slice(
                    keys, range_comparison, range_objs, start, scan_index_forward is not False, limit
                )
                if chosen is not None:
                    # DynamoType hashes by (type, cast value): rebuilt keys find the items.
                    kind = self.range_key_type
                    candidates = [
                        part[DynamoType({kind: str(v) if kind == "N" else v})] for v in chosen
                    ]
                    if scan_index_forward is False:
                        # moto sorts ascending and then reverses: hand them over ascending.
                        candidates.reverse()
        elif index_name is not None:
            conditions = kwargs.get("hash_key_conditions")
            index = {i.name: i for i in self.all_indexes()}.get(index_name)
            if conditions and len(conditions) == 1 and index is not None:
                name, value = conditions[0]
                candidates = list(gsi_groups(self, name).get(value, {}).values())
        # moto deep-copies a Query's results before projecting and answering them; nothing
        # downstream changes them (a projection builds new items), so only the list is copied.
        table_module.copy = results_not_copied
        try:
            if candidates is None:
                return query(
                    self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                    scan_index_forward, projection_expressions, index_name, *args, **kwargs,
                )
            self.all_items = lambda: candidates  # only for this call: moto filters, sorts, pages
            try:
                return query(
                    self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                    scan_index_forward, projection_expressions, index_name, *args, **kwargs,
                )
            finally:
                del self.all_items
        finally:
            table_module.copy = copy

    import moto.dynamodb.models.table as table_module

    results_not_copied = types.SimpleNamespace(
        deepcopy=lambda x, memo=None: list(x) if isinstance(x, list) else copy.deepcopy(x, memo),
        copy=copy.copy,
    )
    Table.query = _query

    # ---- transactions: save the touched items, not the tables
    transact = models.DynamoDBBackend.transact_write_items
    no_table_copy = types.SimpleNamespace(
        deepcopy=lambda x, memo=None: x if isinstance(x, Table) else copy.deepcopy(x, memo),
        copy=copy.copy,
    )

    def _transact_write_items(self, transact_items):  # type: ignore[no-untyped-def]
        saved = []
        streams = {}
        for entry in transact_items[:100]:
            try:
                op_type, op = next(iter(entry.items()))
                table = self.tables[op["TableName"]]
                key = op["Item"] if op_type == "Put" else op["Key"]
                hash_key = DynamoType(key[table.hash_key_attr])
                range_key = (
                    DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                )
                current = table.get_item(hash_key, range_key)
            except Exception:  # moto refuses the request itself; nothing to save
                continue
            saved.append((table, hash_key, range_key, copy.deepcopy(current)))
            if table.stream_shard is not None:
                streams[id(table)] = (table.stream_shard, len(table.stream_shard.items))
        models.copy = no_table_copy
        try:
            return transact(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, item in reversed(saved):
                if range_key is None:
                    if item is None:
                        table.items.pop(hash_key, None)
                    else:
                        table.items[hash_key] = item
                else:
                    part = table.items[hash_key]
                    if item is None:
                        part.pop(range_key, None)
                    else:
                        part[range_key] = item
                forget(table)
            for shard, length in streams.values():
                del shard.items[length:]
            raise
        finally:
            models.copy = copy

    models.DynamoDBBackend.transact_write_items = _transact_write_items


# DynamoDB operations whose answer is plain JSON of AttributeValues, counts and keys.
DATA_PLANE = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
    "BatchWriteItem", "TransactWriteItems", "TransactGetItems",
}
# DynamoDB Streams' reads: records of AttributeValues and a timestamp each.
STREAM_READS = {"GetRecords", "GetShardIterator"}


class _NotPlain(Exception):
    pass


def _plain(value):  # type: ignore[no-untyped-def]
    """`value` as JSON can carry it, absent members dropped as the serializer drops them; a
    timestamp as the JSON protocols write it (epoch seconds, to the millisecond)."""
    kind = type(value)
    # The common shapes first, by exact type (a Query's answer is mostly these).
    if kind is str or kind is bool or kind is int:
        return value
    if kind is dict:
        return {
            k if type(k) is str else str(k): _plain(v) for k, v in value.items() if v is not None
        }
    if kind is list:
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, datetime.datetime):
        seconds = calendar.timegm(value.timetuple())
        return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
    raise _NotPlain(type(value).__name__)


def _lean_requests() -> None:
    import functools

    import moto.backends as backends
    import moto.core.responses as core_responses
    from moto.core.responses import ActionResult, BaseResponse
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    core_responses.method_names_from_class = functools.lru_cache(maxsize=None)(
        core_responses.method_names_from_class
    )

    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    serialized = BaseResponse.serialized

    def _plain_json(actions):  # type: ignore[no-untyped-def]
        def plain_json(self, action_result):  # type: ignore[no-untyped-def]
            result = action_result.result
            if (
                # Not a PaginatedResult, which pages as it serializes.
                type(action_result) in (ActionResult, DynamoResult)
                and isinstance(result, dict)
                and os.environ.get("STACKPRO_MOTO_SERIALIZER") != "1"
                and self._get_action() in actions
            ):
                try:
                    body = json.dumps(_plain(result), separators=(",", ":"))
                except _NotPlain:
                    return serialized(self, action_result)
                headers = {"Content-Type": "application/x-amz-json-1.0"}
                headers.update(self.response_headers)
                return 200, headers, body
            return serialized(self, action_result)

        return plain_json

    DynamoHandler.serialized = _plain_json(DATA_PLANE)
    DynamoDBStreamsHandler.serialized = _plain_json(STREAM_READS)

    # A DynamoDB or DynamoDB Streams request goes straight to its handler, as moto's Flask
    # view would hand it over (the same request object, URL and headers; a ClientError is a
    # 400 as there), without finding the service again and passing through Flask.
    from botocore.exceptions import ClientError
    from moto.moto_server.werkzeug_app import BackendRequest, DomainDispatcherApplication
    from werkzeug.wrappers import Response

    direct = {"DynamoDB_20120810": DynamoHandler, "DynamoDBStreams_20120810": DynamoDBStreamsHandler}
    through_flask = DomainDispatcherApplication.__call__

    def _straight_to_handler(self, environ, start_response):  # type: ignore[no-untyped-def]
        handler = direct.get(environ.get("HTTP_X_AMZ_TARGET", "").partition(".")[0])
        if handler is None or environ.get("REQUEST_METHOD") != "POST":
            return through_flask(self, environ, start_response)
        request = BackendRequest(environ)
        try:
            status, headers, body = handler.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as exc:
            status, headers, body = 400, {}, exc.response["Error"]["Message"]
        return Response(response=body, status=status, headers=headers)(environ, start_response)

    DomainDispatcherApplication.__call__ = _straight_to_handler

    # One log line per request, written under the logging module's lock: a tenth of moto's
    # time under load. Server errors are still logged.
    from werkzeug.serving import WSGIRequestHandler

    log_request = WSGIRequestHandler.log_request

    def _log_server_errors(self, code="-", size="-"):  # type: ignore[no-untyped-def]
        if str(code).startswith("5"):
            log_request(self, code, size)

    WSGIRequestHandler.log_request = _log_server_errors


# moto's own versions, kept for `infra/local/test_moto_server.py` to compare with.
MOTO_ITEM_SIZE = None
MOTO_DYNAMO_TO_DICT = None


def _lean_answers() -> None:
    """Item sizes and typed-value conversion without per-value type inspection (above)."""
    global MOTO_ITEM_SIZE, MOTO_DYNAMO_TO_DICT
    import moto.dynamodb.responses as responses
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    MOTO_ITEM_SIZE = Item.size
    MOTO_DYNAMO_TO_DICT = responses.dynamo_to_dict
    generic = responses.dynamo_to_dict
    scalars = (str, int, float, bool)
    dicts = (dict, LimitedSizeDict)

    def _item_size(self) -> int:  # type: ignore[no-untyped-def]
        total = 0
        for key, value in self.attrs.items():
            kind, raw = value.type, value.value
            if kind == "S" and type(raw) is str:
                size = len(raw) if raw.isascii() else len(raw.encode("utf-8"))
            elif kind == "N":
                size = len(str(raw))
            elif kind == "BOOL" and type(raw) is bool:
                size = 1
            else:
                size = value.size()
            total += (len(key) if key.isascii() else bytesize(key)) + size
        return total

    def _to_dict(obj):  # type: ignore[no-untyped-def]
        kind = type(obj)
        if kind is DynamoType:
            t, raw = obj.type, obj.value
            if t in ("S", "N", "BOOL", "NULL") and type(raw) in scalars:
                return {t: raw}
            if t in ("SS", "NS") and type(raw) is list:
                return {t: [_to_dict(v) for v in raw]}
            if t == "M" and type(raw) is dict:
                return {"M": {k: _to_dict(v) for k, v in raw.items()}}
            if t == "L" and type(raw) is list:
                return {"L": [_to_dict(v) for v in raw]}
            return generic(obj)
        if kind in dicts:
            return {k: _to_dict(v) for k, v in obj.items()}
        if kind is list:
            return [_to_dict(v) for v in obj]
        if kind in scalars or obj is None:
            return obj
        return generic(obj)

    Item.size = _item_size
    responses.dynamo_to_dict = _to_dict


FREEZE_EVERY_SECONDS = 5.0


def _freeze_long_lived() -> None:
    import gc
    import time

    def freezer() -> None:
        while True:
            time.sleep(FREEZE_EVERY_SECONDS)
            gc.collect(1)
            gc.freeze()

    threading.Thread(target=freezer, name="stackpro-gc-freeze", daemon=True).start()


def _keep_alive() -> None:
    """Connections are kept alive between requests. Werkzeug's server, which moto runs, ends
    every answer with `Connection: close` (http.server cannot drain a body the application did
    not read before the next request line), so every SDK request opened a TCP connection and
    moto started a thread for it. Under load the accept loop, waiting for the GIL with every
    request thread, fell behind: the soak (1,000 clients x 50 msg/s) had 130 connections
    waiting to be accepted and 120 more in SYN-RECV, and the SDK's connects timed out after
    5 s. Here a request with a Content-Length reads its body through a stream limited to it,
    which is drained after the answer, and the connection stays open for the client's next
    request (unless the client asked to close it); a chunked request body still closes it
    (`test_moto_server.py`, "keep-alive", checks all three). Werkzeug's own drain, which reads
    whatever the socket holds after an answer (its next request, once kept alive), is skipped
    for such a request: its selector (the only one werkzeug's server makes) finds nothing.
    """
    import selectors
    import threading
    import types

    import werkzeug.serving
    from werkzeug.serving import WSGIRequestHandler
    from werkzeug.wsgi import LimitedStream

    kept = threading.local()

    class _NothingToDrain:
        def register(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

        def select(self, timeout=None):  # type: ignore[no-untyped-def]
            return []

        def close(self) -> None:
            return None

    def _selector():  # type: ignore[no-untyped-def]
        return _NothingToDrain() if getattr(kept, "body", None) is not None else selectors.DefaultSelector()

    werkzeug.serving.selectors = types.SimpleNamespace(
        DefaultSelector=_selector, EVENT_READ=selectors.EVENT_READ
    )

    make_environ = WSGIRequestHandler.make_environ
    run_wsgi = WSGIRequestHandler.run_wsgi
    send_header = WSGIRequestHandler.send_header

    def _make_environ(self):  # type: ignore[no-untyped-def]
        environ = make_environ(self)
        kept.body = None
        if not environ.get("wsgi.input_terminated"):  # not chunked
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return environ
            if length >= 0:
                body = LimitedStream(environ["wsgi.input"], length)
                environ["wsgi.input"] = body
                environ["wsgi.input_terminated"] = True
                kept.body = body
        return environ

    def _send_header(self, keyword, value):  # type: ignore[no-untyped-def]
        if (
            keyword.lower() == "connection"
            and value.lower() == "close"
            and getattr(kept, "body", None) is not None
            and not self.close_connection
        ):
            return
        send_header(self, keyword, value)

    def _run_wsgi(self):  # type: ignore[no-untyped-def]
        kept.body = None
        try:
            run_wsgi(self)
        finally:
            body, kept.body = kept.body, None
            if body is None:
                self.close_connection = True
            else:
                body.exhaust()

    WSGIRequestHandler.make_environ = _make_environ
    WSGIRequestHandler.send_header = _send_header
    WSGIRequestHandler.run_wsgi = _run_wsgi


if os.environ.get("STACKPRO_MOTO_SLOW") != "1":
    _fast_dynamodb()
    _keep_alive()
    _lean_requests()
    _lean_answers()
    _freeze_long_lived()


if os.environ.get("STACKPRO_ENFORCE_IAM") == "1":
    _enforce_iam()

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
