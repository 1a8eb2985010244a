"""Artifacts: large results and uploads in an S3-compatible object store, never in a
Postgres row or a NATS message. A job's result lists its artifacts (``Artifact``: name,
content type, size, sha256); the bytes are here.

Layout, one prefix per owner and job (``job_prefix``), so that deleting a job, or every
job of an owner, is deleting a prefix::

    owners/<owner key>/jobs/<job id>/<sha256>         a job's artifact, named by its content
    owners/<owner key>/uploads/<upload id>/<sha256>   an upload
    partial/owners/<owner key>/.../<random>           a write in progress

The owner key is a hash of the owner (``owner_key``): a bucket listing shows no user ids,
which may be e-mail addresses. A write streams to a ``partial/`` name while it hashes, then
is copied to its content address and the partial deleted: a name under ``owners/`` only
ever holds the whole of the bytes it is named after, and a write that dies leaves only a
``partial/`` object, which the bucket's lifecycle rule expires (``deploy/README.md``).
Reads stream and are checked against the name's hash as they go; nothing is ever buffered
whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import obstore
from obstore.store import S3Store

from jobkit.config import env_str
from jobkit.errors import ConfigError

if TYPE_CHECKING:
    from obstore.store import ClientConfig

#: Objects whose write is in progress (or died): the lifecycle rule's prefix.
PARTIAL_PREFIX = "partial/"
#: A multipart write's part size (S3's smallest) and how many are uploaded at once: what a
#: write holds in memory is about their product, whatever the artifact's size.
PART_BYTES = 5 * 1024 * 1024
PARTS_IN_FLIGHT = 2
#: The most bytes a read hands over at a time (what the store sends is gathered to about
#: this size and cut to at most it), so that a reader can size its messages by it.
READ_CHUNK = 256 * 1024
#: Objects deleted per request (S3's DeleteObjects takes at most 1,000).
DELETE_BATCH = 1000


class ArtifactError(Exception):
    """The object store refused or failed an operation."""


class ArtifactMissing(ArtifactError):
    """No object under that name."""


class ArtifactCorrupted(ArtifactError):
    """The bytes read do not hash to the name they were stored under."""


class ArtifactTooLarge(ArtifactError):
    """A write went past its size limit; nothing was kept."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """One artifact as a job's result lists it."""

    name: str
    content_type: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Artifact:
        return cls(
            str(value["name"]),
            str(value["content_type"]),
            int(value["size"]),
            str(value["sha256"]),
        )


def artifact_named(result: Mapping[str, Any] | None, name: str) -> Artifact | None:
    """The artifact a job's result lists under ``name``, if any (a malformed entry is
    none: a result is a step's output, written by a handler)."""
    entries = (result or {}).get("artifacts")
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            try:
                return Artifact.from_dict(entry)
            except (KeyError, TypeError, ValueError):
                return None
    return None


def owner_key(owner: str) -> str:
    """The owner's folder in the bucket: a hash, so a listing names nobody."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


def job_prefix(owner: str, job_id: uuid.UUID | str) -> str:
    """Where a job's artifacts live; deleting the job deletes everything under it."""
    return f"owners/{owner_key(owner)}/jobs/{job_id}/"


def upload_prefix(owner: str, upload_id: uuid.UUID | str) -> str:
    return f"owners/{owner_key(owner)}/uploads/{upload_id}/"


def upload_prefix_beside(prefix_of_job: str, upload_id: str) -> str:
    """The prefix of upload ``upload_id`` of the owner of the job whose prefix is
    ``prefix_of_job``: what a step (which knows its job's prefix, not its owner) may read.
    Raises ``ValueError`` unless ``upload_id`` is a UUID, so it names nothing else."""
    owner_root, found, _ = prefix_of_job.partition("/jobs/")
    if not found:
        raise ValueError("not a job's prefix")
    return f"{owner_root}/uploads/{uuid.UUID(upload_id)}/"


@dataclass(frozen=True, slots=True)
class ObjectStoreSettings:
    """``OBJECT_STORE_URL=s3://BUCKET`` and the standard AWS variables."""

    bucket: str
    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ObjectStoreSettings | None:
        """The settings, or ``None`` when ``OBJECT_STORE_URL`` is unset (no artifacts)."""
        url = env_str(env, "OBJECT_STORE_URL", "")
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigError(f"OBJECT_STORE_URL must be s3://BUCKET, got {url!r}")
        return cls(
            bucket=parts.netloc,
            endpoint=env_str(env, "AWS_ENDPOINT_URL", ""),
            access_key_id=env_str(env, "AWS_ACCESS_KEY_ID", ""),
            secret_access_key=env_str(env, "AWS_SECRET_ACCESS_KEY", ""),
            region=env_str(env, "AWS_REGION", "us-east-1"),
        )

    def open(self) -> ArtifactStore:
        options: dict[str, Any] = {"region": self.region}
        if self.endpoint:
            options["endpoint"] = self.endpoint
        if self.access_key_id:
            options["access_key_id"] = self.access_key_id
            options["secret_access_key"] = self.secret_access_key
        # Plain HTTP only where the endpoint says so (a store beside the services).
        client: ClientConfig = {"allow_http": self.endpoint.startswith("http://")}
        return ArtifactStore(S3Store(self.bucket, client_options=client, **options))


def open_store(settings: ObjectStoreSettings | None) -> ArtifactStore | None:
    """The store a service's settings name, if any."""
    return settings.open() if settings is not None else None


class ArtifactStore:
    """Writes, reads and deletes artifacts; one per process (its client pools connections)."""

    def __init__(self, store: S3Store) -> None:
        self._store = store

    async def write(
        self,
        prefix: str,
        name: str,
        content_type: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
    ) -> Artifact:
        """Stream ``chunks`` under ``prefix``, named by their sha256; returns the artifact.
        Past ``max_bytes`` the write stops with ``ArtifactTooLarge`` and keeps nothing."""
        hasher = hashlib.sha256()
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ArtifactTooLarge(f"more than {max_bytes} bytes")
                hasher.update(chunk)
                yield chunk

        partial = f"{PARTIAL_PREFIX}{prefix}{uuid.uuid4().hex}"
        try:
            await obstore.put_async(
                self._store,
                partial,
                counted(),
                attributes={"Content-Type": content_type},
                chunk_size=PART_BYTES,
                max_concurrency=PARTS_IN_FLIGHT,
            )
        except ArtifactTooLarge:
            await self._forget(partial)
            raise
        except Exception as exc:
            await self._forget(partial)
            raise ArtifactError(type(exc).__name__) from exc
        digest = hasher.hexdigest()
        try:
            await obstore.copy_async(self._store, partial, prefix + digest)
        except Exception as exc:
            raise ArtifactError(type(exc).__name__) from exc
        finally:
            await self._forget(partial)
        return Artifact(name, content_type, size, digest)

    async def read(self, prefix: str, sha256: str) -> AsyncIterator[bytes]:
        """The artifact's bytes, streamed; raises ``ArtifactCorrupted`` after the last
        piece if they do not hash to ``sha256`` (a reader must then discard what it has),
        ``ArtifactMissing`` before the first if there is no such object."""
        try:
            result = await obstore.get_async(self._store, prefix + sha256)
        except FileNotFoundError as exc:
            raise ArtifactMissing(sha256) from exc
        except Exception as exc:
            raise ArtifactError(type(exc).__name__) from exc
        hasher = hashlib.sha256()
        async for piece in result.stream(min_chunk_size=READ_CHUNK):
            view = memoryview(piece)
            for start in range(0, len(view), READ_CHUNK):
                chunk = bytes(view[start : start + READ_CHUNK])
                hasher.update(chunk)
                yield chunk
        if hasher.hexdigest() != sha256:
            raise ArtifactCorrupted(sha256)

    async def read_only(self, prefix: str) -> AsyncIterator[bytes]:
        """The bytes of the one object under ``prefix`` (an upload), as ``read`` streams
        them; ``ArtifactMissing`` if there is none."""
        names = await self.names(prefix)
        if len(names) != 1:
            raise ArtifactMissing(prefix)
        async for chunk in self.read(prefix, names[0].rsplit("/", 1)[-1]):
            yield chunk

    async def names(self, prefix: str) -> list[str]:
        """Every object name under ``prefix`` (for deletion and the tests' listings)."""
        found: list[str] = []
        try:
            async for batch in obstore.list(self._store, prefix=prefix, chunk_size=DELETE_BATCH):
                found += [meta["path"] for meta in batch]
        except Exception as exc:
            raise ArtifactError(type(exc).__name__) from exc
        return found

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``, and its partial writes; returns how many."""
        deleted = 0
        for under in (prefix, PARTIAL_PREFIX + prefix):
            paths = await self.names(under)
            for start in range(0, len(paths), DELETE_BATCH):
                batch = paths[start : start + DELETE_BATCH]
                try:
                    await obstore.delete_async(self._store, batch)
                except Exception as exc:
                    raise ArtifactError(type(exc).__name__) from exc
                deleted += len(batch)
        return deleted

    async def _forget(self, path: str) -> None:
        """Best effort: a partial left behind is the lifecycle rule's."""
        with contextlib.suppress(Exception):
            await obstore.delete_async(self._store, path)
