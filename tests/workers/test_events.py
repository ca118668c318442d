"""Event bodies -> StorageEvents, over real bodies (tests/fixtures/events/, copied from
../shared/events/: AWS S3 via SQS incl. the s3:TestEvent, Ceph RGW created/removed) and
the hostile ones of docs/threats.md W1/W2."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from origin.storage_events import MalformedEvent, StorageEvent, from_fields, to_fields
from tests import FIXTURES
from workers.events import Scope, parse_message

EVENTS = FIXTURES / "events"
RGW_KEY = "photos/summer 2024/cät+1.jpg"


def fixture(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def record(
    key: str, *, name: str = "ObjectCreated:Put", source: str = "aws:s3", etag: str = "abc", bucket: str = "originals"
) -> dict[str, Any]:
    return {
        "eventSource": source,
        "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1, "eTag": etag}},
    }


def body(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def test_aws_sqs_bodies_skip_the_test_event_and_decode_keys():
    messages = [json.dumps(message) for message in fixture("aws-s3-via-sqs-object-created.json")]
    assert parse_message(messages[0]) == []  # s3:TestEvent
    events = [event for message in messages[1:] for event in parse_message(message)]
    assert [(e.kind, e.key, e.etag, e.source) for e in events] == [
        ("created", "img/cat.jpg", "d27404a34e040a298b6afd5d5e2e2742", "aws"),
        ("created", "img/dog.png", "bff139fa05ac583f685a523ab3d110a0", "aws"),
        # moto sends two events for one multipart upload: handlers are idempotent.
        ("created", "img/big.tif", "8b0be7847da5564ae08e97af63b60885-2", "aws"),
        ("created", "img/big.tif", "8b0be7847da5564ae08e97af63b60885-2", "aws"),
        ("created", "img/cat_copy.jpg", "d27404a34e040a298b6afd5d5e2e2742", "aws"),
    ]


def test_sns_wrapped_bodies_are_unwrapped():
    inner = fixture("aws-s3-via-sqs-object-created.json")
    wrapped = [json.dumps({"Type": "Notification", "Message": json.dumps(message)}) for message in inner[:2]]
    assert parse_message(wrapped[0]) == []
    assert parse_message(wrapped[1]) == [
        StorageEvent("created", "img/cat.jpg", "d27404a34e040a298b6afd5d5e2e2742", "aws")
    ]


def test_rgw_keys_are_raw():
    created = parse_message((EVENTS / "ceph-rgw-object-created.json").read_bytes())
    removed = parse_message((EVENTS / "ceph-rgw-object-removed.json").read_bytes())
    assert created == [StorageEvent("created", RGW_KEY, "f696e1bd51e165f0b6ef3962dce274d6", "rgw")]
    assert removed == [StorageEvent("removed", RGW_KEY, "f696e1bd51e165f0b6ef3962dce274d6", "rgw")]


def test_w2_plus_is_a_space_for_aws_and_minio():
    assert parse_message(body(record("red+flower.jpg")))[0].key == "red flower.jpg"
    assert parse_message(body(record("red%2Bflower.jpg")))[0].key == "red+flower.jpg"


def test_minio_webhook_body_uses_its_records():
    minio = {
        "EventName": "s3:ObjectCreated:Put",
        "Key": "originals/shop/red+shoe.jpg",
        "Records": [record("shop%2Fred+shoe.jpg", name="s3:ObjectCreated:Put", source="minio:s3", etag='"e1"')],
    }
    assert parse_message(json.dumps(minio)) == [StorageEvent("created", "shop/red shoe.jpg", "e1", "minio")]


def test_removed_of_a_missing_key_has_no_etag():
    events = parse_message(body(record("gone.jpg", name="ObjectRemoved:Delete", etag="")))
    assert events == [StorageEvent("removed", "gone.jpg", None, "aws")]
    expired = parse_message(body(record("old.jpg", name="LifecycleExpiration:Delete")))
    assert expired[0].kind == "removed"


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'"Records"',
        b'{"Records": "x"}',
        b"{}",
        b'{"Records": [42]}',
        b'{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}',
        b'{"Records": [{"eventSource": "aws:s3", "eventName": 7, "s3": {"bucket": {"name": "b"}, "object": {"key": "a"}}}]}',
        b'{"Type": "Notification", "Message": "{broken"}',
    ],
)
def test_w1_malformed_bodies_are_a_typed_error(raw):
    with pytest.raises(MalformedEvent):
        parse_message(raw)


def test_w1_unknown_event_names_are_skipped_and_logged(caplog):
    caplog.set_level(logging.INFO, "workers.events")
    events = parse_message(
        body(record("a.jpg", name="ObjectRestore:Post"), record("b.jpg"), record("c.jpg", source="gcs"))
    )
    assert [event.key for event in events] == ["b.jpg"]
    assert "ObjectRestore:Post" in caplog.text and "gcs" in caplog.text


@pytest.mark.parametrize(
    "key", ["..%2F..%2Fetc%2Fpasswd", "_%2Ftoken", "a%00b.jpg", "%2Fabs.jpg", "a%2F%2Fb.jpg", "%FF.jpg", "x" * 600]
)
def test_invalid_keys_are_skipped_and_logged(key, caplog):
    events = parse_message(body(record(key), record("fine.jpg")))
    assert [event.key for event in events] == ["fine.jpg"]
    assert "skipped" in caplog.text


def test_scope_keeps_our_bucket_and_strips_our_prefix():
    scope = Scope.of("s3://originals/site/a?endpoint_url=http://minio:9000")
    assert scope == Scope("originals", "site/a/")
    events = parse_message(
        body(
            record("site%2Fa%2Fshoe.jpg"),
            record("site%2Fa%2Fshoe.jpg", bucket="other"),
            record("site%2Fb%2Fshoe.jpg"),
            record("site%2Fa%2F_%2Fderived.jpg"),
        ),
        scope,
    )
    assert [event.key for event in events] == ["shoe.jpg"]
    assert Scope.of("file://./data") == Scope()


def test_stream_fields_round_trip():
    for event in (StorageEvent("created", RGW_KEY, "e", "rgw"), StorageEvent("removed", "a.jpg", None, "origin")):
        fields = {name.encode(): value.encode() for name, value in to_fields(event).items()}
        assert from_fields(fields) == event
    for bad in (
        {},
        {b"kind": b"moved", b"key": b"a", b"etag": b"", b"source": b"x"},
        {b"kind": b"created", b"key": b"../a", b"etag": b"", b"source": b"x"},
    ):
        with pytest.raises(MalformedEvent):
            from_fields(bad)
