"""Bounded memory (docs/architecture.md §4.6): streaming an upload through the vault never holds the file.

Measured with tracemalloc (Python allocations, which is where buffered evidence would live).
"""
import os
import tracemalloc
import uuid

from wbs_plumbing.db import make_engine

from storage_fakes import transaction_factory
from storage import crypto, domain
from storage.models import Base
from storage.objectstore import FileStore, S3Store

MiB = 1024 * 1024
TOTAL = 96 * MiB


class DiscardingMinio:
    """The real minio SDK's put_object loop (part reading, parallel part uploads), with the network
    calls replaced by discarding the parts: what stays in memory is ours and the SDK's buffering."""

    def __new__(cls):
        from minio import Minio
        from minio.datatypes import Part  # noqa: F401

        class _Client(Minio):
            parts = 0

            def _create_multipart_upload(self, bucket_name, object_name, headers):
                return "upload-1"

            def _upload_part(self, bucket_name, object_name, data, headers, upload_id, part_number):
                _Client.parts += 1
                return f"etag-{part_number}"

            def _upload_part_task(self, args):
                return args[5], self._upload_part(*args)

            def _complete_multipart_upload(self, bucket_name, object_name, upload_id, parts, sse=None):
                class Result:
                    bucket_name = object_name = version_id = etag = http_headers = location = None
                return Result()

            def _put_object(self, bucket_name, object_name, data, headers, *args, **kwargs):
                return None

        return _Client("127.0.0.1:9", access_key="a", secret_key="b", secure=False)


def stream_upload(tmp_path, store):
    engine = make_engine(f"sqlite:///{tmp_path / 'storage.db'}")
    Base.metadata.create_all(engine)
    tx = transaction_factory(engine)
    ring = crypto.KeyRing.from_document(crypto.new_key_document())
    uploads = domain.Uploads()
    chunk = os.urandom(MiB)
    upload_id = domain.begin_upload(tx, ring, store, uploads, str(uuid.uuid4()), "f", "x/y")
    tracemalloc.start()
    try:
        for _ in range(TOTAL // MiB):
            domain.append_upload(uploads, upload_id, chunk)
        result = domain.finish_upload(tx, uploads, upload_id)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        engine.dispose()
    assert result["size_bytes"] == TOTAL
    return peak


def test_file_store_upload_memory_is_bounded(tmp_path):
    peak = stream_upload(tmp_path, FileStore(str(tmp_path / "evidence")))
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB for a {TOTAL // MiB} MiB upload"


def test_s3_store_upload_memory_is_bounded(tmp_path):
    client = DiscardingMinio()
    store = S3Store("unused", "a", "b", "bucket", client=client, part_size=8 * MiB,
                    parallel_uploads=2)
    peak = stream_upload(tmp_path, store)
    assert type(client).parts == TOTAL // (8 * MiB) + 1
    # parts in flight (2) + the part being read + the pipe: a few parts, never the file
    assert peak < 48 * MiB, f"peak {peak / MiB:.1f} MiB for a {TOTAL // MiB} MiB upload"
