"""Streaming multipart parsing: evidence never touches intake's disk and never sits whole in memory.

Why not werkzeug's form parser: `request.files` / `request.form` use `MultiPartParser`, whose
default stream factory spools any file above 500 KB to a *plaintext temporary file*
(docs/architecture.md §5.2, §9), and `request.get_data()` holds the whole body in memory. Instead the
caller reads `request.stream` in small chunks and feeds them to werkzeug's sans-io
`MultipartDecoder`, which turns bytes into events and writes nothing anywhere. The generator
below adds what the decoder does not: limits checked *as bytes arrive* (request size, file
count, bytes per file, size of non-file fields), so an oversize upload is refused with 413
after at most one read beyond the limit, never after reading it all.

Memory: at most one read (64 KiB) plus the decoder's look-behind for a split boundary plus one
field value (bounded by `max_field_bytes`) is held at a time; the consumer re-chunks file data
into <= 1 MiB pieces for the vault.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterator

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import (
    LINE_BREAK_RE,
    NEED_DATA,
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
)

READ_SIZE = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_FILENAME_BYTES = 200
DEFAULT_FILENAME = "evidence"
DEFAULT_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class UploadLimits:
    max_request_bytes: int
    max_files: int
    max_file_bytes: int
    max_field_bytes: int = 256 * 1024
    max_parts: int = 64
    #: all file bytes of the report together (a follow-up gets what its report has left)
    max_report_bytes: int | None = None


class UploadTooLarge(Exception):
    """A limit was crossed; `.what` is one of request, files, file, report, field, parts."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class MalformedUpload(Exception):
    """The body is not well-formed multipart/form-data (or ended early)."""


# Events yielded to the consumer.
@dataclass(frozen=True)
class FieldPart:
    name: str
    value: bytes


@dataclass(frozen=True)
class FileStart:
    name: str
    filename: str  # already sanitised
    media_type: str  # already sanitised


@dataclass(frozen=True)
class FileChunk:
    data: bytes


@dataclass(frozen=True)
class FileEnd:
    size: int


def boundary_from_content_type(content_type: str | None) -> bytes:
    """The multipart boundary, or MalformedUpload."""
    mimetype, options = parse_options_header(content_type or "")
    if mimetype != "multipart/form-data":
        raise MalformedUpload("not multipart/form-data")
    boundary = options.get("boundary", "")
    # RFC 2046: 1-70 characters from a restricted set.
    if not boundary or len(boundary) > 70 or not re.fullmatch(r"[0-9A-Za-z'()+_,\-./:=? ]+", boundary):
        raise MalformedUpload("bad boundary")
    return boundary.encode("ascii")


class _Decoder(MultipartDecoder):
    """werkzeug's decoder with one correction: a read that ends inside a boundary's suffix.

    werkzeug 3.1.9 releases data up to the last CR/LF that could start a *partial* boundary,
    but when the buffer holds a *complete* ``CRLF--boundary`` whose suffix (``--`` or the line
    break after it) has not arrived yet, e.g. a read ending in ``\r\n--boundary-``, its
    look-behind is one byte short and it emits the ``\r`` of the boundary's line break as file
    data: the stored evidence would gain a stray byte. Found by the chunking property test.
    Here, while the buffer ends in such an incomplete boundary, nothing from its line break on
    is released.
    """

    def __init__(self, boundary: bytes, *args, **kwargs):
        super().__init__(boundary, *args, **kwargs)
        self._incomplete_re = re.compile(
            rb"(?:\r\n|\n|\r)--%s(?:-|[ \t]*)\Z" % re.escape(boundary)
        )
        self._tail = len(boundary) + 16

    def _parse_data(self, data, *, start):
        out, del_index, more_data = super()._parse_data(data, start=start)
        if more_data:
            m = self._incomplete_re.search(data, max(0, len(data) - self._tail - 64))
            if m is not None:
                data_start = LINE_BREAK_RE.match(data).end() if start else 0
                end = max(m.start(), data_start)
                if end < del_index:
                    out, del_index = bytes(data[data_start:end]), end
        return out, del_index, more_data


def iter_multipart(
    read: Callable[[int], bytes],
    boundary: bytes,
    limits: UploadLimits,
    read_size: int = READ_SIZE,
) -> Iterator[FieldPart | FileStart | FileChunk | FileEnd]:
    """Parse a multipart body from `read` (e.g. `request.stream.read`), yielding events.

    Non-file parts are collected (bounded) and yielded whole as `FieldPart`; file parts are
    yielded as `FileStart`, `FileChunk`* (each <= read_size + boundary look-behind), `FileEnd`.
    Raises `UploadTooLarge` or `MalformedUpload`.
    """
    decoder = _Decoder(
        boundary,
        max_form_memory_size=read_size + MAX_HEADER_BYTES,
        max_parts=limits.max_parts,
    )
    total = 0
    files = 0
    kind: str | None = None  # "field" or "file" while inside a part
    field_name = ""
    field_buf = bytearray()
    file_size = 0
    file_total = 0
    done = False
    while not done:
        try:
            chunk = read(read_size)
        except (OSError, ValueError) as exc:  # client went away mid-body
            raise MalformedUpload("body ended early") from exc
        except Exception as exc:  # werkzeug ClientDisconnected is an HTTPException
            if exc.__class__.__name__ == "ClientDisconnected":
                raise MalformedUpload("body ended early") from exc
            raise
        if chunk:
            total += len(chunk)
            if total > limits.max_request_bytes:
                raise UploadTooLarge("request")
        try:
            decoder.receive_data(chunk if chunk else None)
        except RequestEntityTooLarge:
            raise UploadTooLarge("field") from None
        while True:
            try:
                event = decoder.next_event()
            except RequestEntityTooLarge:
                raise UploadTooLarge("parts") from None
            except (ValueError, UnicodeDecodeError, AttributeError) as exc:
                raise MalformedUpload(str(exc)[:100]) from None
            if event is NEED_DATA:
                break
            if isinstance(event, File):
                files += 1
                if files > limits.max_files:
                    raise UploadTooLarge("files")
                kind, file_size = "file", 0
                yield FileStart(
                    name=event.name or "",
                    filename=sanitise_filename(event.filename),
                    media_type=sanitise_media_type(event.headers.get("content-type")),
                )
            elif isinstance(event, Field):
                kind, field_name = "field", event.name or ""
                field_buf = bytearray()
            elif isinstance(event, Data):
                if kind == "file":
                    file_size += len(event.data)
                    file_total += len(event.data)
                    if file_size > limits.max_file_bytes:
                        raise UploadTooLarge("file")
                    if limits.max_report_bytes is not None and file_total > limits.max_report_bytes:
                        raise UploadTooLarge("report")
                    if event.data:
                        yield FileChunk(event.data)
                    if not event.more_data:
                        kind = None
                        yield FileEnd(file_size)
                elif kind == "field":
                    field_buf += event.data
                    if len(field_buf) > limits.max_field_bytes:
                        raise UploadTooLarge("field")
                    if not event.more_data:
                        kind = None
                        yield FieldPart(field_name, bytes(field_buf))
                        field_buf = bytearray()
            elif isinstance(event, Epilogue):
                done = True
                break
        if not chunk and not done:
            raise MalformedUpload("body ended before the closing boundary")


_STRIP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def sanitise_filename(name: str | None) -> str:
    """A filename safe to show an inspector and to put in a Content-Disposition header.

    Keeps only the last path component (browsers on Windows send full paths, attackers send
    ``../``), drops control, format (incl. RTL/LTR overrides that disguise ``exe.pdf`` as
    ``fdp.exe``), surrogate, private-use, unassigned and line/paragraph separator characters,
    drops leading dots (hidden files, ``..``), collapses whitespace and bounds the result to
    200 UTF-8 bytes keeping the extension. Never empty.
    """
    if not name:
        return DEFAULT_FILENAME
    name = unicodedata.normalize("NFC", str(name)[:4096])
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _STRIP_CATEGORIES)
    name = " ".join(name.split())
    name = name.lstrip(". ").rstrip(" .")
    if not name:
        return DEFAULT_FILENAME
    if len(name.encode("utf-8")) > MAX_FILENAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem or len(ext.encode("utf-8")) > 16:
            stem, ext = name, ""
        budget = MAX_FILENAME_BYTES - (len(ext.encode("utf-8")) + 1 if ext else 0)
        stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(" .")
        name = f"{stem}.{ext}" if ext else stem
    return name or DEFAULT_FILENAME


_MEDIA_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")


def sanitise_media_type(value: str | None) -> str:
    """The part's declared type without parameters, if it looks like one; else octet-stream.

    It is only a hint for the inspector's download: nothing trusts it.
    """
    if not value:
        return DEFAULT_MEDIA_TYPE
    mimetype, _ = parse_options_header(value[:256])
    mimetype = mimetype.lower()
    return mimetype if _MEDIA_TYPE_RE.fullmatch(mimetype) else DEFAULT_MEDIA_TYPE
