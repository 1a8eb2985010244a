"""The artifact store against a real S3-compatible server (SeaweedFS): streamed writes
named by their content, streamed reads checked against it, deletion by prefix."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator

import obstore
import pytest

from jobkit.artifacts import (
    PARTIAL_PREFIX,
    ArtifactCorrupted,
    ArtifactMissing,
    ArtifactStore,
    ArtifactTooLarge,
    ObjectStoreSettings,
    job_prefix,
    owner_key,
)
from jobkit.errors import ConfigError

OWNER = "ada@example.com"


@pytest.fixture
def store(object_store_env: dict[str, str]) -> ArtifactStore:
    settings = ObjectStoreSettings.from_env(object_store_env)
    assert settings is not None
    return settings.open()


async def pieces(count: int, size: int, seed: bytes = b"x") -> AsyncIterator[bytes]:
    for n in range(count):
        yield (seed * size)[: size - 1] + bytes([n % 256])


async def read_all(store: ArtifactStore, prefix: str, sha256: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(prefix, sha256)])


async def test_a_write_is_named_by_its_content_and_reads_back_whole(store: ArtifactStore) -> None:
    prefix = job_prefix(OWNER, uuid.uuid4())
    expected = b"".join([p async for p in pieces(40, 100_000)])  # 4 MB: a multipart upload
    artifact = await store.write(prefix, "out.jsonl", "application/x-ndjson", pieces(40, 100_000))
    assert artifact.size == len(expected)
    assert artifact.sha256 == hashlib.sha256(expected).hexdigest()
    assert await store.names(prefix) == [prefix + artifact.sha256]
    assert await read_all(store, prefix, artifact.sha256) == expected
    # Nothing is left half-written.
    assert await store.names(PARTIAL_PREFIX) == []


async def test_the_bucket_names_no_owner(store: ArtifactStore) -> None:
    prefix = job_prefix(OWNER, uuid.uuid4())
    await store.write(prefix, "a.txt", "text/plain", pieces(1, 10))
    (name,) = await store.names("owners/")
    assert OWNER not in name
    # Hashes and the job's id only, nothing of the owner's: not even "ada", which random
    # hex may spell, so the whole name's shape is checked instead of that substring.
    assert re.fullmatch(r"owners/[0-9a-f]{32}/jobs/[0-9a-f-]{36}/[0-9a-f]{64}", name), name
    assert name.startswith(f"owners/{owner_key(OWNER)}/jobs/")


async def test_bytes_that_no_longer_match_their_name_fail_the_read(
    store: ArtifactStore, object_store_env: dict[str, str]
) -> None:
    prefix = job_prefix(OWNER, uuid.uuid4())
    artifact = await store.write(prefix, "a.txt", "text/plain", pieces(3, 1000))
    # Someone (a bug, a bit flip, an operator) overwrites the object behind our back.
    settings = ObjectStoreSettings.from_env(object_store_env)
    assert settings is not None
    raw = settings.open()._store
    await obstore.put_async(raw, prefix + artifact.sha256, b"tampered")
    with pytest.raises(ArtifactCorrupted):
        await read_all(store, prefix, artifact.sha256)


async def test_a_missing_artifact_is_told_apart(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactMissing):
        await read_all(store, job_prefix(OWNER, uuid.uuid4()), "0" * 64)


async def test_a_write_past_its_limit_keeps_nothing(store: ArtifactStore) -> None:
    prefix = job_prefix(OWNER, uuid.uuid4())
    with pytest.raises(ArtifactTooLarge):
        await store.write(prefix, "big", "text/plain", pieces(10, 1000), max_bytes=5000)
    assert await store.names(prefix) == []
    assert await store.names(PARTIAL_PREFIX) == []


async def test_deleting_a_prefix_deletes_its_objects_and_only_them(store: ArtifactStore) -> None:
    gone, kept = job_prefix(OWNER, uuid.uuid4()), job_prefix(OWNER, uuid.uuid4())
    for n in range(3):
        await store.write(gone, f"{n}.txt", "text/plain", pieces(1, 100 + n))
    await store.write(kept, "k.txt", "text/plain", pieces(1, 10))
    assert await store.delete_prefix(gone) == 3
    assert await store.names(gone) == []
    assert len(await store.names(kept)) == 1


def test_settings_take_only_an_s3_bucket_url() -> None:
    assert ObjectStoreSettings.from_env({}) is None
    settings = ObjectStoreSettings.from_env({"OBJECT_STORE_URL": "s3://jobs-artifacts"})
    assert settings is not None
    assert settings.bucket == "jobs-artifacts"
    assert settings.region == "us-east-1"
    for wrong in ("jobs-artifacts", "gs://b", "s3://", "s3://b/path"):
        with pytest.raises(ConfigError, match="OBJECT_STORE_URL"):
            ObjectStoreSettings.from_env({"OBJECT_STORE_URL": wrong})
