"""Object stores for ciphertext: a folder (the embedded default) or any S3-compatible service.

Why both stores in one module of some 520 lines: they implement one interface, and keeping them
side by side is how their durability and cleanup guarantees are kept equal.

Both stores speak one small interface, so the domain never knows which one it has:

* ``open_writer(key) -> ObjectWriter`` with ``write(bytes)``, ``close()`` (the object is durable
  and visible once this returns) and ``abort()`` (nothing is left behind);
* ``read_range(key, offset, length) -> bytes`` for chunked reads of big objects;
* ``read_stream(key) -> iterator of bytes`` for whole small objects;
* ``delete(key)`` (idempotent: deleting what is gone is not an error), ``size(key)``.

Only ciphertext ever reaches a store (the vault encrypts before writing), and object keys are
random (``new_object_key``): no report id, case id or file name appears in a path or bucket
listing, so the store's own logs and listings reveal nothing about who reported what. The
mapping from report to object lives only in the storage database.

Memory stays bounded whatever the object size (docs/architecture.md §4.6): the file store writes straight to
disk, and the S3 store feeds ``put_object(length=-1, part_size=8 MiB)`` from a bounded pipe, so at
most a few parts are in memory at once.
"""
from __future__ import annotations

import collections
import logging
import os
import re
import secrets
import threading
from datetime import datetime, timedelta, timezone
from typing import Iterator, Protocol

log = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
S3_PART_SIZE = 8 * 1024 * 1024
PIPE_MAX_BYTES = 2 * 1024 * 1024
_KEY_RE = re.compile(r"^[0-9a-f]{32}$")


class ObjectStoreError(Exception):
    """The store failed; messages name the operation, never content."""


class ObjectNotFound(ObjectStoreError):
    """No object under this key."""


def new_object_key() -> str:
    """128 random bits as hex: unguessable, and says nothing about the report or file."""
    return secrets.token_hex(16)


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ObjectStoreError("invalid object key")
    return key


class ObjectWriter(Protocol):
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class ObjectStore(Protocol):
    def open_writer(self, key: str) -> ObjectWriter: ...
    def read_range(self, key: str, offset: int, length: int) -> bytes: ...
    def read_stream(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...
    def size(self, key: str) -> int: ...


# ---------------------------------------------------------------------------------------------
# Filesystem
# ---------------------------------------------------------------------------------------------

class _FileWriter:
    def __init__(self, store: "FileStore", key: str):
        self._final = store._path(key)
        self._tmp = os.path.join(store.incoming, f"{key}.{secrets.token_hex(4)}.part")
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._fh = os.fdopen(fd, "wb")
        self._done = False

    def write(self, data: bytes) -> None:
        if self._done:
            raise ObjectStoreError("writer is closed")
        self._fh.write(data)

    def close(self) -> None:
        """Flush, fsync, then rename into place: a reader never sees a half-written object."""
        if self._done:
            raise ObjectStoreError("writer is closed")
        self._done = True
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            directory = os.path.dirname(self._final)
            os.makedirs(directory, mode=0o700, exist_ok=True)
            os.rename(self._tmp, self._final)
            _fsync_dir(directory)
        except OSError as exc:
            self._discard()
            raise ObjectStoreError(f"file store: could not store object ({exc.strerror})") from None

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._discard()

    def _discard(self):
        try:
            self._fh.close()
        except OSError:
            pass
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    """Objects as files under ``root`` (``<WBS_DATA_DIR>/evidence``), fanned out by key prefix.

    Writes go to ``root/.incoming`` and are renamed into place after fsync, so a crash leaves
    either the whole object or a stray temp file (ciphertext) that ``sweep_incoming`` removes.
    """

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.incoming = os.path.join(self.root, ".incoming")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.makedirs(self.incoming, mode=0o700, exist_ok=True)

    def __repr__(self):
        return f"FileStore({self.root!r})"

    def _path(self, key: str) -> str:
        key = _check_key(key)
        return os.path.join(self.root, key[:2], key)

    def open_writer(self, key: str) -> _FileWriter:
        return _FileWriter(self, _check_key(key))

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except FileNotFoundError:
            raise ObjectNotFound("no such object") from None

    def read_stream(self, key: str, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        try:
            fh = open(self._path(key), "rb")
        except FileNotFoundError:
            raise ObjectNotFound("no such object") from None
        return _iter_file(fh, chunk_size)

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def size(self, key: str) -> int:
        try:
            return os.stat(self._path(key)).st_size
        except FileNotFoundError:
            raise ObjectNotFound("no such object") from None

    def exists(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def sweep_incoming(self, older_than: float = 0.0) -> int:
        """Remove temp files of writes that never finished (a process crashed mid-upload).

        Only files untouched for ``older_than`` seconds go, so another storage process sharing
        the folder keeps its uploads in progress.
        """
        import time

        removed, now = 0, time.time()
        for name in os.listdir(self.incoming):
            path = os.path.join(self.incoming, name)
            try:
                if name.endswith(".part") and now - os.stat(path).st_mtime >= older_than:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                pass
        if removed:
            log.info("file store: removed %d abandoned partial object(s)", removed)
        return removed


def _iter_file(fh, chunk_size):
    with fh:
        while True:
            data = fh.read(chunk_size)
            if not data:
                return
            yield data


# ---------------------------------------------------------------------------------------------
# S3 (MinIO, Ceph RGW, SeaweedFS, Garage, cloud S3) through the minio SDK
# ---------------------------------------------------------------------------------------------

class PipeAborted(Exception):
    """The writing side gave up; the reading side must not complete the upload."""


class BoundedPipe:
    """A byte pipe between a producer (RPC chunks) and ``put_object`` reading on another thread.

    ``write`` blocks while more than ``max_bytes`` are waiting, so a fast producer cannot make the
    process buffer a whole file while the store is slow (back-pressure reaches the uploader's
    RPC calls). Uses ``threading`` primitives, which are green under eventlet's monkey patching.
    """

    def __init__(self, max_bytes: int = PIPE_MAX_BYTES):
        self._max = max_bytes
        self._cond = threading.Condition()
        self._chunks: collections.deque = collections.deque()
        self._size = 0
        self._eof = False
        self._aborted = False
        self._failed: BaseException | None = None

    # producer side
    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._cond:
            while self._size >= self._max and self._failed is None and not self._aborted:
                self._cond.wait()
            if self._failed is not None:
                raise ObjectStoreError("s3 store: upload failed") from None
            if self._eof or self._aborted:
                raise ObjectStoreError("writer is closed")
            self._chunks.append(bytes(data))
            self._size += len(data)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._chunks.clear()
            self._size = 0
            self._cond.notify_all()

    # consumer side
    def fail(self, exc: BaseException) -> None:
        with self._cond:
            self._failed = exc
            self._chunks.clear()
            self._size = 0
            self._cond.notify_all()

    def read(self, size: int = -1) -> bytes:
        with self._cond:
            while not self._chunks and not self._eof and not self._aborted:
                self._cond.wait()
            if self._aborted:
                raise PipeAborted("upload aborted")
            if not self._chunks:
                return b""
            if size is None or size < 0:
                size = self._size
            parts, taken = [], 0
            while self._chunks and taken < size:
                chunk = self._chunks.popleft()
                room = size - taken
                if len(chunk) > room:
                    self._chunks.appendleft(chunk[room:])
                    chunk = chunk[:room]
                parts.append(chunk)
                taken += len(chunk)
            self._size -= taken
            self._cond.notify_all()
            return b"".join(parts)


class _S3Writer:
    def __init__(self, store: "S3Store", key: str):
        self._store = store
        self._key = key
        self._pipe = BoundedPipe(store.pipe_bytes)
        self._error: BaseException | None = None
        self._done = False
        self._thread = threading.Thread(target=self._upload, name="s3-put", daemon=True)
        self._thread.start()

    def _upload(self):
        try:
            self._store.client.put_object(
                self._store.bucket, self._key, self._pipe, length=-1,
                part_size=self._store.part_size,
                num_parallel_uploads=self._store.parallel_uploads,
                retention=self._store.retention_for_new_object())
        except BaseException as exc:  # noqa: BLE001 -- handed to the producer side
            self._error = exc
            self._pipe.fail(exc)

    def write(self, data: bytes) -> None:
        if self._done:
            raise ObjectStoreError("writer is closed")
        self._pipe.write(data)

    def close(self) -> None:
        if self._done:
            raise ObjectStoreError("writer is closed")
        self._done = True
        self._pipe.close()
        self._thread.join()
        if self._error is not None:
            log.warning("s3 store: put of an object failed (%s)", type(self._error).__name__)
            raise ObjectStoreError("s3 store: could not store object") from None

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._pipe.abort()
        self._thread.join(timeout=60)
        try:  # a single-part put cannot have completed, but make sure nothing is left behind
            self._store.delete(self._key)
        except ObjectStoreError:
            pass


def _minio_client(endpoint, **kwargs):
    """The minio SDK's client, able to send Content-MD5 on every request with a body.

    S3 (and MinIO) refuse uploads with object-lock retention unless they carry Content-MD5 (or a
    checksum header). The SDK adds Content-MD5 only over HTTPS; inside a private network the
    store may be plain HTTP (compose), so with object lock the store asks for it always.
    Pinned SDK (minio==7.2.x): ``_build_headers`` is where every request's headers are made.
    """
    from minio import Minio
    from minio.helpers import md5sum_hash

    class _Client(Minio):
        always_md5 = False

        def _build_headers(self, host, headers=None, body=None, creds=None):
            headers = headers or {}
            if self.always_md5 and body and "Content-MD5" not in headers:
                headers["Content-MD5"] = md5sum_hash(body)
            return super()._build_headers(host, headers, body, creds)

    return _Client(endpoint, **kwargs)


class S3Store:
    """Objects in one bucket of an S3-compatible store, through the ``minio`` SDK.

    The bucket is created at start if it does not exist. Ranged GETs serve chunked reads, so a
    1 GiB file is never read whole.
    """

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str,
                 secure: bool = True, region: str | None = None,
                 part_size: int = S3_PART_SIZE, parallel_uploads: int = 2,
                 pipe_bytes: int = PIPE_MAX_BYTES, client=None, object_lock_days: float = 90.0):
        self.bucket = bucket
        self.part_size = part_size
        self.parallel_uploads = parallel_uploads
        self.pipe_bytes = pipe_bytes
        self.client = client or _minio_client(endpoint, access_key=access_key,
                                              secret_key=secret_key, secure=secure,
                                              region=region)
        self._endpoint = endpoint
        self.object_lock_days = object_lock_days
        self.object_lock = False  # found out by ensure_bucket()

    def __repr__(self):
        return f"S3Store({self._endpoint!r}, bucket={self.bucket!r})"

    def ensure_bucket(self) -> None:
        """Create the bucket if missing, and find out whether it has object lock enabled.

        Object lock is a property the bucket is created with (an operator's choice; with it
        on, versioning is on too). When the bucket has it, every object is written with
        governance-mode retention (``retention_for_new_object``), so neither a stolen
        credential without ``s3:BypassGovernanceRetention`` nor an accident can delete
        evidence early; shredding deletes every version with the governance bypass.
        """
        from minio.error import S3Error

        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise ObjectStoreError(f"s3 store: cannot use bucket ({exc.code})") from None
        try:
            config = self.client.get_object_lock_config(self.bucket)
            self.object_lock = config is not None
        except S3Error:
            self.object_lock = False  # ObjectLockConfigurationNotFoundError: no object lock
        except ValueError:
            self.object_lock = True  # enabled, without a default retention rule
        if self.object_lock:
            self.client.always_md5 = True

    def retention_for_new_object(self):
        """Governance-mode retention for a new object when the bucket has object lock, else None.

        The report's shred date is not known when evidence arrives (its case is still open), so
        objects are locked for ``S3_OBJECT_LOCK_DAYS`` (default: the shortest retention period,
        so the lock never outlives the earliest possible shredding by much); shredding bypasses
        governance mode in any case.
        """
        if not self.object_lock or self.object_lock_days <= 0:
            return None
        from minio.commonconfig import GOVERNANCE
        from minio.retention import Retention

        until = datetime.now(timezone.utc) + timedelta(days=self.object_lock_days)
        return Retention(GOVERNANCE, until.replace(microsecond=0))

    def open_writer(self, key: str) -> _S3Writer:
        return _S3Writer(self, _check_key(key))

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        response = self._get(key, offset=offset, length=length)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def read_stream(self, key: str, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        response = self._get(key)
        return _iter_response(response, chunk_size)

    def _get(self, key: str, **kwargs):
        from minio.error import S3Error

        try:
            return self.client.get_object(self.bucket, _check_key(key), **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectNotFound("no such object") from None
            raise ObjectStoreError(f"s3 store: read failed ({exc.code})") from None

    def delete(self, key: str) -> None:
        """Delete every version of the object, bypassing governance-mode object lock.

        A plain DELETE on a versioned bucket only adds a delete marker and keeps the data:
        shredding must leave nothing, so each version is removed by id.
        """
        from minio.deleteobjects import DeleteObject
        from minio.error import S3Error

        key = _check_key(key)
        try:
            versions = [DeleteObject(obj.object_name, obj.version_id)
                        for obj in self.client.list_objects(self.bucket, prefix=key,
                                                            include_version=True)
                        if obj.object_name == key]
            if not versions:
                return
            errors = list(self.client.remove_objects(self.bucket, versions,
                                                     bypass_governance_mode=self.object_lock))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return
            raise ObjectStoreError(f"s3 store: delete failed ({exc.code})") from None
        errors = [e for e in errors if e.code not in ("NoSuchKey", "NoSuchVersion")]
        if errors:
            raise ObjectStoreError(f"s3 store: delete failed ({errors[0].code})")

    def versions(self, key: str) -> int:
        """How many versions (delete markers included) the store keeps under ``key``."""
        return sum(1 for obj in self.client.list_objects(self.bucket, prefix=_check_key(key),
                                                         include_version=True)
                   if obj.object_name == key)

    def size(self, key: str) -> int:
        from minio.error import S3Error

        try:
            return self.client.stat_object(self.bucket, _check_key(key)).size
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                raise ObjectNotFound("no such object") from None
            raise ObjectStoreError(f"s3 store: stat failed ({exc.code})") from None

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except ObjectNotFound:
            return False


def _iter_response(response, chunk_size):
    try:
        for data in response.stream(chunk_size):
            yield data
    finally:
        response.close()
        response.release_conn()
