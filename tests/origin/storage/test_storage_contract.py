"""One contract for every storage backend: the local folder and S3 over a real HTTP API (moto).

The S3 cases assert only what AWS S3, MinIO and Ceph RGW all do, never a moto quirk.
A few cases are about one backend alone (key/folder conflicts and temp files on the
local folder; prefixes, batching and network failures on S3) and say so in their name.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from origin.errors import (
    AlreadyExists,
    InvalidCursor,
    InvalidKey,
    KeyConflict,
    NotFound,
    PreconditionFailed,
    RangeNotSatisfiable,
    StorageError,
    StorageTimeout,
)
from origin.storage import ObjectInfo, Storage, open_storage
from origin.storage.cursor import encode_cursor
from tests.images import png
from tests.s3 import PREFIX

IMAGE = png(4, 3)


@dataclass
class Backend:
    name: str
    storage: Storage
    plant: Callable[[str, bytes], None]
    """Store bytes at a raw name, behind the backend's back (an out-of-band upload)."""


@pytest.fixture(params=["local", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "local":
        root = tmp_path / "data"
        storage = await open_storage(f"file://{root}", 5)

        def plant(name: str, data: bytes) -> None:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)

        backend = Backend("local", storage, plant)
    else:
        client, bucket = request.getfixturevalue("s3_raw")
        storage = await open_storage(request.getfixturevalue("s3_url"), 5)

        def plant(name: str, data: bytes) -> None:
            client.put_object(Bucket=bucket, Key=f"{PREFIX}/{name}", Body=data)

        backend = Backend("s3", storage, plant)
    try:
        yield backend
    finally:
        await storage.close()


def image(tag: str) -> bytes:
    """A distinct image per tag (trailing bytes after the PNG; sniffing reads only the head)."""
    return IMAGE + tag.encode()


async def put(storage: Storage, key: str, data: bytes, **conditions: Any) -> ObjectInfo:
    return await storage.put(key, data, content_type="image/png", **conditions)


async def list_all(storage: Storage, prefix: str = "", limit: int = 100) -> tuple[list[str], int]:
    """Every key under `prefix`, page by page; and the number of pages."""
    keys: list[str] = []
    cursor, pages = None, 0
    while True:
        page = await storage.list(prefix, cursor, limit)
        assert len(page.items) <= limit
        keys += [item.key for item in page.items]
        pages += 1
        if page.cursor is None:
            return keys, pages
        cursor = page.cursor


# --------------------------------------------------------------------------- writes


async def test_create_only(backend: Backend) -> None:
    first = await put(backend.storage, "p/a.png", image("1"), if_none_match=True)
    with pytest.raises(AlreadyExists):
        await put(backend.storage, "p/a.png", image("2"), if_none_match=True)
    data, info = await backend.storage.get("p/a.png")
    assert data == image("1")
    assert info.etag == first.etag == (await backend.storage.head("p/a.png")).etag
    assert info.size == first.size == len(image("1"))


async def test_replace_if_match(backend: Backend) -> None:
    old = await put(backend.storage, "a.png", image("old"), if_none_match=True)
    new = await put(backend.storage, "a.png", image("new"), if_match=old.etag)
    assert new.etag != old.etag
    assert (await backend.storage.get("a.png"))[0] == image("new")
    assert (await backend.storage.head("a.png")).etag == new.etag

    with pytest.raises(PreconditionFailed):  # stale version
        await put(backend.storage, "a.png", image("stale"), if_match=old.etag)
    with pytest.raises(PreconditionFailed):  # not even a version
        await put(backend.storage, "a.png", image("junk"), if_match="é\n")
    assert (await backend.storage.get("a.png"))[0] == image("new")

    quoted = await put(backend.storage, "a.png", image("quoted"), if_match=f'"{new.etag}"')
    assert (await backend.storage.head("a.png")).etag == quoted.etag


async def test_replace_if_match_of_a_missing_key(backend: Backend) -> None:
    with pytest.raises(PreconditionFailed):
        await put(backend.storage, "missing.png", image("x"), if_match="0123456789abcdef0123456789abcdef")
    with pytest.raises(NotFound):
        await backend.storage.head("missing.png")


async def test_unconditional_put_creates_and_replaces(backend: Backend) -> None:
    first = await put(backend.storage, "u.png", image("1"))
    second = await put(backend.storage, "u.png", image("2"))
    assert first.etag != second.etag
    data, info = await backend.storage.get("u.png")
    assert (data, info.etag) == (image("2"), second.etag)


async def test_concurrent_creates_of_one_key(backend: Backend) -> None:
    tags = [str(i) for i in range(5)]
    results = await asyncio.gather(
        *(put(backend.storage, "race.png", image(tag), if_none_match=True) for tag in tags), return_exceptions=True
    )
    winners = [(tag, r) for tag, r in zip(tags, results, strict=True) if isinstance(r, ObjectInfo)]
    assert len(winners) == 1, results
    assert all(isinstance(r, AlreadyExists) for r in results if not isinstance(r, ObjectInfo)), results
    data, info = await backend.storage.get("race.png")
    assert data == image(winners[0][0])
    assert info.etag == winners[0][1].etag


async def test_invalid_keys_are_refused(backend: Backend) -> None:
    for key in ("", "/a.png", "a/../b.png", "_/token", "a//b.png"):
        with pytest.raises(InvalidKey):
            await put(backend.storage, key, image("x"))
        with pytest.raises(InvalidKey):
            await backend.storage.delete([key])


# --------------------------------------------------------------------------- reads and deletes


async def test_missing_keys(backend: Backend) -> None:
    await put(backend.storage, "dir/x.png", image("x"))
    for key in ("nope.png", "dir", "dir/x.png/y", "dir/y.png"):
        with pytest.raises(NotFound):
            await backend.storage.head(key)
        with pytest.raises(NotFound):
            await backend.storage.get(key)


async def test_delete_several_keys_ignoring_absent_ones(backend: Backend) -> None:
    for key in ("d/a.png", "d/b.png", "d/c.png"):
        await put(backend.storage, key, image(key))
    await backend.storage.delete(["d/a.png", "d/b.png", "d/missing.png"])
    await backend.storage.delete([])
    for key in ("d/a.png", "d/b.png"):
        with pytest.raises(NotFound):
            await backend.storage.head(key)
    assert (await backend.storage.get("d/c.png"))[0] == image("d/c.png")
    assert (await list_all(backend.storage))[0] == ["d/c.png"]


async def test_metadata_round_trip(backend: Backend) -> None:
    key = "café/naïve 中文 😀.png"
    put_info = await backend.storage.put(key, IMAGE, content_type="image/png")
    head = await backend.storage.head(key)
    data, got = await backend.storage.get(key)
    assert data == IMAGE
    for info in (put_info, head, got):
        assert (info.key, info.content_type, info.size) == (key, "image/png", len(IMAGE))
        assert abs(info.last_modified - time.time()) < 60
    listed = (await backend.storage.list("café/", None, 10)).items
    assert [(i.key, i.etag, i.size) for i in listed] == [(key, head.etag, len(IMAGE))]


# --------------------------------------------------------------------------- listing


async def test_stream_reads_only_the_span(backend: Backend) -> None:
    data = IMAGE + os.urandom(300_000)
    backend.plant("big.png", data)
    version = await backend.storage.head("big.png")

    async def everything(start: int = 0, end: int | None = None) -> tuple[bytes, ObjectInfo]:
        reader = await backend.storage.stream("big.png", start, end)
        chunks = []
        try:
            while chunk := await reader.read(65536):
                chunks.append(chunk)
        finally:
            await reader.close()
            await reader.close()  # closing twice is harmless
        return b"".join(chunks), reader.info

    # The reader stops where the span does: S3 sent the range only (a ranged GET), the file was seeked.
    body, info = await everything(1000, 1999)
    assert body == data[1000:2000] and (info.etag, info.size) == (version.etag, len(data))
    assert (await everything(0, 0))[0] == data[:1]
    assert (await everything(len(data) - 10))[0] == data[-10:]
    assert (await everything(5, 10**9))[0] == data[5:]
    assert (await everything())[0] == data
    with pytest.raises(RangeNotSatisfiable):
        await backend.storage.stream("big.png", len(data))
    with pytest.raises(NotFound):
        await backend.storage.stream("absent.png")


async def test_list_pages_through_250_keys(backend: Backend) -> None:
    keys = [f"k/{i:03d}.png" for i in range(250)]
    gate = asyncio.Semaphore(16)

    async def store(key: str) -> None:
        async with gate:
            await put(backend.storage, key, image(key))

    await asyncio.gather(*(store(key) for key in [*keys, "j.png", "l/x.png", "k.png"]))
    listed, pages = await list_all(backend.storage, "k/", 100)
    assert listed == keys and pages == 3  # stable order, no duplicates, no gaps
    page = await backend.storage.list("k/", None, 100)
    again = await backend.storage.list("k/", None, 100)
    assert page == again
    assert (await backend.storage.list("k/1", None, 1000)).items[0].key == "k/100.png"
    assert (await list_all(backend.storage, "", 100))[0] == ["j.png", "k.png", *keys, "l/x.png"]
    assert (await backend.storage.list("nothing/", None, 10)) == type(page)([], None)


async def test_list_in_utf8_byte_order(backend: Backend) -> None:
    keys = [
        "a/b.png",
        "a-c.png",
        "a.png",
        "ab.png",
        "a0.png",
        "é.png",
        "z.png",
        "中.png",
        "😀.png",
        "Z.png",
        "a/b/c.png",
    ]
    for key in keys:
        await put(backend.storage, key, image(key))
    expected = sorted(keys, key=lambda k: k.encode())
    assert (await list_all(backend.storage, "", 100))[0] == expected
    assert (await list_all(backend.storage, "", 1))[0] == expected
    assert (await list_all(backend.storage, "a", 2))[0] == [k for k in expected if k.startswith("a")]


async def test_reserved_prefix_is_never_listed(backend: Backend) -> None:
    for name in ("_/x.png", "_/tmp/y.png", "_/z/w.png"):
        backend.plant(name, IMAGE)
    for key in ("Z.png", "_a.png", "a.png"):
        await put(backend.storage, key, image(key))
    for limit in (1, 2, 100):
        assert (await list_all(backend.storage, "", limit))[0] == ["Z.png", "_a.png", "a.png"]
    assert (await list_all(backend.storage, "_", 100))[0] == ["_a.png"]
    assert (await backend.storage.list("_/", None, 100)).items == []


async def test_forged_cursors_are_refused(backend: Backend) -> None:
    for key in ("k/a.png", "k/b.png", "m/c.png"):
        await put(backend.storage, key, image(key))
    page = await backend.storage.list("k/", None, 1)
    assert page.cursor is not None
    forged = [
        "!!!",
        "",
        "é",
        page.cursor + "=",  # not our spelling
        base64.b64encode(b"k/a.png").decode(),  # padded: not our spelling
        encode_cursor("k/../x.png"),  # not a key
        encode_cursor("_/x.png"),
        base64.urlsafe_b64encode(b"k/\xff").decode().rstrip("="),  # not UTF-8
        encode_cursor("m/c.png"),  # another prefix's
    ]
    for cursor in forged:
        with pytest.raises(InvalidCursor):
            await backend.storage.list("k/", cursor, 10)
    with pytest.raises(InvalidCursor):
        await backend.storage.list("m/", page.cursor, 10)
    rest = await backend.storage.list("k/", page.cursor, 10)
    assert [i.key for i in rest.items] == ["k/b.png"] and rest.cursor is None
    assert (await backend.storage.list("k/", encode_cursor("k/zzz"), 10)).items == []


# --------------------------------------------------------------------------- local folder only


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[Storage, Path]]:
    from origin.storage import LocalStorage

    root = tmp_path / "data"
    yield LocalStorage(root), root


@pytest.mark.parametrize("create_only", [True, False])
async def test_local_key_and_folder_conflict(local: tuple[Storage, Path], create_only: bool) -> None:
    storage, _ = local
    await put(storage, "a", image("a"), if_none_match=create_only)
    with pytest.raises(KeyConflict):
        await put(storage, "a/b", image("b"), if_none_match=create_only)
    await put(storage, "c/d", image("d"), if_none_match=create_only)
    with pytest.raises(KeyConflict):
        await put(storage, "c", image("c"), if_none_match=create_only)
    assert (await list_all(storage))[0] == ["a", "c/d"]
    await storage.delete(["c/d"])  # the empty folder goes too, so "c" can be a key again
    await put(storage, "c", image("c"), if_none_match=create_only)
    assert (await list_all(storage))[0] == ["a", "c"]


async def test_local_failed_write_leaves_nothing(local: tuple[Storage, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    storage, root = local
    await put(storage, "kept.png", image("old"))

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    for key, conditions in (("new.png", {"if_none_match": True}), ("kept.png", {}), ("deep/er/new.png", {})):
        with pytest.raises(StorageError):
            await put(storage, key, image("new"), **conditions)
    monkeypatch.undo()
    assert (await list_all(storage))[0] == ["kept.png"]
    assert (await storage.get("kept.png"))[0] == image("old")
    with pytest.raises(NotFound):
        await storage.head("new.png")
    assert list((root / "_" / "tmp").iterdir()) == []


async def test_local_symlinked_key_is_replaced_not_followed(local: tuple[Storage, Path], tmp_path: Path) -> None:
    storage, root = local
    outside = tmp_path / "outside.png"
    outside.write_bytes(IMAGE)
    os.symlink(outside, root / "link.png")
    await put(storage, "link.png", image("new"))
    assert outside.read_bytes() == IMAGE
    assert (await storage.get("link.png"))[0] == image("new")
    os.symlink(tmp_path, root / "linkdir")
    with pytest.raises(KeyConflict):
        await put(storage, "linkdir/x.png", image("x"))
    await storage.delete(["linkdir/outside.png"])
    assert outside.exists()


# --------------------------------------------------------------------------- S3 only


async def test_s3_prefix_is_prepended_and_stripped(s3_raw: tuple[Any, str], s3_url: str) -> None:
    client, bucket = s3_raw
    client.put_object(Bucket=bucket, Key="elsewhere.png", Body=IMAGE)
    client.put_object(Bucket=bucket, Key=f"{PREFIX}x.png", Body=IMAGE)  # shares the prefix's letters only
    storage = await open_storage(s3_url, 5)
    try:
        await put(storage, "k.png", image("k"))
        raw = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
        assert f"{PREFIX}/k.png" in raw
        assert (await list_all(storage))[0] == ["k.png"]
        meta = client.head_object(Bucket=bucket, Key=f"{PREFIX}/k.png")
        assert meta["ContentType"] == "image/png"
    finally:
        await storage.close()


async def test_s3_delete_in_batches(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import origin.storage.s3

    monkeypatch.setattr(origin.storage.s3, "_DELETE_BATCH", 2)
    storage = await open_storage(s3_url, 5)
    try:
        keys = [f"b/{i}.png" for i in range(5)]
        for key in keys:
            await put(storage, key, image(key))
        await storage.delete([*keys[:4], "b/missing.png"])
        assert (await list_all(storage))[0] == ["b/4.png"]
    finally:
        await storage.close()


async def test_s3_unanswered_request_is_a_storage_timeout(s3_endpoint: str) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        storage = await open_storage(f"s3://bucket-name?endpoint_url=http://127.0.0.1:{port}&region=us-east-1", 0.3)
        try:
            started = time.monotonic()
            with pytest.raises(StorageTimeout):
                await storage.head("a.png")
            assert time.monotonic() - started < 2
        finally:
            await storage.close()


async def test_s3_refused_connection_is_a_storage_error(s3_endpoint: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        storage = await open_storage(f"s3://bucket-name?endpoint_url=http://127.0.0.1:{port}&region=us-east-1", 5)
        try:
            calls = (
                storage.head("a.png"),
                storage.list("", None, 10),
                put(storage, "a.png", IMAGE),
                storage.delete(["a"]),
            )
            results = await asyncio.gather(*calls, return_exceptions=True)  # together: one retry's backoff each
            assert all(type(r) is StorageError for r in results), results
        finally:
            await storage.close()


@pytest.mark.parametrize(
    "url", ["s3://bucket-name?endpoint=http://127.0.0.1:1", "s3://bucket-name?addressing_style=dns", "ftp://x/y"]
)
async def test_storage_url_typos_stop_the_start(url: str) -> None:
    with pytest.raises(ValueError):
        await open_storage(url, 5)
