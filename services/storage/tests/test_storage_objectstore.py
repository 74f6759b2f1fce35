"""The two object stores behave alike: the file store for real on tmp_path, the S3 store against
moto's S3 server on loopback through the real minio SDK (no MinIO server can run here)."""
import os
import stat
import threading
import time

import pytest

from storage.objectstore import (
    BoundedPipe, FileStore, ObjectNotFound, ObjectStoreError, PipeAborted, S3Store,
    new_object_key,
)


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return FileStore(str(tmp_path / "evidence"))
    s3 = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    # Small parts so the multipart path is exercised with a few MiB.
    st = S3Store(s3["endpoint"], s3["access_key"], s3["secret_key"], bucket,
                 secure=s3["secure"], part_size=5 * 1024 * 1024)
    st.ensure_bucket()
    return st


def put(store, key, data, piece=1 << 20):
    w = store.open_writer(key)
    for i in range(0, len(data), piece):
        w.write(data[i:i + piece])
    w.close()


@pytest.mark.parametrize("size", [0, 1, 1 << 20, 11 * 1024 * 1024 + 7])
def test_roundtrip_stream_and_ranges(store, size):
    data = os.urandom(size)
    key = new_object_key()
    put(store, key, data, piece=300_000)
    assert store.size(key) == size
    assert b"".join(store.read_stream(key)) == data
    if size:
        assert store.read_range(key, 0, 10) == data[:10]
        assert store.read_range(key, size // 2, 1000) == data[size // 2:size // 2 + 1000]
        assert store.read_range(key, max(0, size - 3), 3) == data[-3:]


def test_abort_leaves_nothing(store):
    key = new_object_key()
    w = store.open_writer(key)
    w.write(os.urandom(6 * 1024 * 1024))
    w.abort()
    with pytest.raises(ObjectNotFound):
        store.size(key)
    with pytest.raises(ObjectNotFound):
        store.read_range(key, 0, 1)


def test_not_visible_before_close(store):
    key = new_object_key()
    w = store.open_writer(key)
    w.write(b"abc")
    assert not store.exists(key)
    w.close()
    assert store.exists(key)


def test_delete_is_idempotent(store):
    key = new_object_key()
    put(store, key, b"x" * 10)
    store.delete(key)
    store.delete(key)
    assert not store.exists(key)


def test_write_after_close_refused(store):
    key = new_object_key()
    w = store.open_writer(key)
    w.write(b"x")
    w.close()
    with pytest.raises(ObjectStoreError):
        w.write(b"y")


def test_keys_are_checked(store):
    for bad in ["../etc/passwd", "REPORT-1", "", "a" * 31]:
        with pytest.raises(ObjectStoreError):
            store.open_writer(bad)


def test_new_object_keys_are_random():
    keys = {new_object_key() for _ in range(1000)}
    assert len(keys) == 1000 and all(len(k) == 32 for k in keys)


def test_file_store_layout_and_modes(tmp_path):
    fs = FileStore(str(tmp_path / "evidence"))
    key = new_object_key()
    put(fs, key, b"ciphertext")
    path = tmp_path / "evidence" / key[:2] / key
    assert path.read_bytes() == b"ciphertext"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(fs.incoming) == []


def test_file_store_sweeps_abandoned_temp_files(tmp_path):
    fs = FileStore(str(tmp_path / "evidence"))
    w = fs.open_writer(new_object_key())
    w.write(b"partial")
    # simulate a crash: the writer is never closed nor aborted
    assert fs.sweep_incoming(older_than=3600) == 0  # could be another process's live upload
    assert fs.sweep_incoming() == 1
    assert os.listdir(fs.incoming) == []


def test_s3_store_creates_missing_bucket(s3_server):
    import uuid
    bucket = f"wbs-new-{uuid.uuid4().hex[:10]}"
    st = S3Store(s3_server["endpoint"], s3_server["access_key"], s3_server["secret_key"],
                 bucket, secure=False)
    st.ensure_bucket()
    assert st.client.bucket_exists(bucket)
    st.ensure_bucket()  # idempotent


def test_s3_store_failure_surfaces_on_close(s3_server):
    st = S3Store(s3_server["endpoint"], s3_server["access_key"], s3_server["secret_key"],
                 "wbs-bucket-that-does-not-exist", secure=False)
    w = st.open_writer(new_object_key())
    with pytest.raises(ObjectStoreError):
        w.write(b"x" * 100)
        w.close()


def test_bounded_pipe_applies_back_pressure():
    pipe = BoundedPipe(max_bytes=100)
    pipe.write(b"a" * 100)
    blocked = threading.Event()
    done = threading.Event()

    def producer():
        blocked.set()
        pipe.write(b"b" * 10)
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    blocked.wait()
    time.sleep(0.05)
    assert not done.is_set()          # full: the producer waits
    assert pipe.read(60) == b"a" * 60
    t.join(5)
    assert done.is_set()
    pipe.close()
    assert pipe.read(1000) == b"a" * 40 + b"b" * 10
    assert pipe.read(10) == b""


def test_bounded_pipe_abort_and_fail():
    pipe = BoundedPipe(max_bytes=10)
    pipe.write(b"x")
    pipe.abort()
    with pytest.raises(PipeAborted):
        pipe.read(1)
    pipe2 = BoundedPipe(max_bytes=10)
    pipe2.fail(RuntimeError("store down"))
    with pytest.raises(ObjectStoreError):
        pipe2.write(b"x")
