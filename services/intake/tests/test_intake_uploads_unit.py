"""Streaming multipart parser and filename sanitising."""

import io
import os

import pytest
from hypothesis import given, settings, strategies as st

from intake.uploads import (
    FieldPart,
    FileChunk,
    FileEnd,
    FileStart,
    MalformedUpload,
    UploadLimits,
    UploadTooLarge,
    boundary_from_content_type,
    iter_multipart,
    sanitise_filename,
    sanitise_media_type,
)

BOUNDARY = b"----wbsTestBoundary7MA4YWxk"
BIG = UploadLimits(max_request_bytes=64 << 20, max_files=10, max_file_bytes=16 << 20)


def body(parts, boundary=BOUNDARY):
    out = io.BytesIO()
    for part in parts:
        out.write(b"--" + boundary + b"\r\n")
        if part[0] == "field":
            _, name, value = part
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
            out.write(value)
        else:
            _, name, filename, ctype, data = part
            out.write(
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n".encode()
            )
            out.write(data)
        out.write(b"\r\n")
    out.write(b"--" + boundary + b"--\r\n")
    return out.getvalue()


class ChunkedReader:
    """A stream whose read() returns at most `sizes[i]` bytes on the i-th call."""

    def __init__(self, data, sizes):
        self.data, self.pos, self.sizes, self.i = data, 0, sizes, 0

    def read(self, n):
        size = min(n, self.sizes[self.i % len(self.sizes)])
        self.i += 1
        out = self.data[self.pos:self.pos + size]
        self.pos += len(out)
        return out


def collect(events):
    """Rebuild fields and files from the event stream, checking event order."""
    fields, files, current = {}, [], None
    for ev in events:
        if isinstance(ev, FieldPart):
            assert current is None
            fields[ev.name] = ev.value
        elif isinstance(ev, FileStart):
            assert current is None
            current = [ev.name, ev.filename, ev.media_type, bytearray()]
        elif isinstance(ev, FileChunk):
            assert current is not None and ev.data
            current[3] += ev.data
        elif isinstance(ev, FileEnd):
            assert ev.size == len(current[3])
            files.append(tuple(current[:3]) + (bytes(current[3]),))
            current = None
    assert current is None
    return fields, files


def sample_parts():
    rnd = os.urandom(2 * 1024 * 1024 + 17)
    # data that contains the boundary without its line break, and CR/LF at the edges
    tricky = b"\r\n--" + BOUNDARY[:-1] + b"\r\n\r" + b"--" + BOUNDARY + b"X\n\r"
    return [
        ("field", "report", b'{"unit": "dit-smp", "x": "\xc3\xa9"}'),
        ("file", "evidence", "a.pdf", "application/pdf", rnd),
        ("file", "evidence", "b.txt", "text/plain", tricky),
        ("file", "evidence", "empty.bin", "application/octet-stream", b""),
    ]


def test_parses_fields_and_files_and_chunks_are_small():
    parts = sample_parts()
    events = list(iter_multipart(io.BytesIO(body(parts)).read, BOUNDARY, BIG))
    fields, files = collect(events)
    assert fields == {"report": parts[0][2]}
    assert [f[3] for f in files] == [p[4] for p in parts[1:]]
    assert [(f[0], f[1], f[2]) for f in files] == [
        ("evidence", "a.pdf", "application/pdf"),
        ("evidence", "b.txt", "text/plain"),
        ("evidence", "empty.bin", "application/octet-stream"),
    ]
    assert max(len(e.data) for e in events if isinstance(e, FileChunk)) <= 64 * 1024 + 1024


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=70_000), min_size=1, max_size=8))
def test_any_chunking_of_the_input_gives_the_same_result(sizes):
    parts = [
        ("field", "report", b"{}"),
        ("file", "evidence", "x.bin", "image/png", os.urandom(150_000) + b"\r\n--" + BOUNDARY[:5]),
        ("file", "evidence", "y.bin", "image/png", b"\r\r\n\n" * 300),
    ]
    data = body(parts)
    fields, files = collect(iter_multipart(ChunkedReader(data, sizes).read, BOUNDARY, BIG))
    assert fields == {"report": b"{}"}
    assert [f[3] for f in files] == [parts[1][4], parts[2][4]]


def test_one_byte_reads():
    parts = [("field", "report", b"abc"), ("file", "evidence", "z", "text/plain", b"hello\r\nworld")]
    fields, files = collect(iter_multipart(ChunkedReader(body(parts), [1]).read, BOUNDARY, BIG))
    assert fields == {"report": b"abc"} and files[0][3] == b"hello\r\nworld"


class CountingReader:
    def __init__(self, data):
        self.inner, self.consumed = io.BytesIO(data), 0

    def read(self, n):
        out = self.inner.read(n)
        self.consumed += len(out)
        return out


def test_request_limit_stops_reading_early():
    data = body([("file", "evidence", "a", "x/y", b"a" * (5 << 20))])
    reader = CountingReader(data)
    limits = UploadLimits(max_request_bytes=1 << 20, max_files=10, max_file_bytes=100 << 20)
    with pytest.raises(UploadTooLarge) as info:
        list(iter_multipart(reader.read, BOUNDARY, limits))
    assert info.value.what == "request"
    assert reader.consumed <= (1 << 20) + 64 * 1024


def test_file_limit_stops_reading_early():
    data = body([("file", "evidence", "a", "x/y", b"a" * (5 << 20))])
    reader = CountingReader(data)
    limits = UploadLimits(max_request_bytes=100 << 20, max_files=10, max_file_bytes=1 << 20)
    with pytest.raises(UploadTooLarge) as info:
        list(iter_multipart(reader.read, BOUNDARY, limits))
    assert info.value.what == "file"
    assert reader.consumed <= (1 << 20) + 2 * 64 * 1024


def test_file_count_limit():
    data = body([("file", "evidence", f"{i}", "x/y", b"a") for i in range(4)])
    limits = UploadLimits(max_request_bytes=1 << 20, max_files=3, max_file_bytes=1 << 20)
    with pytest.raises(UploadTooLarge) as info:
        list(iter_multipart(io.BytesIO(data).read, BOUNDARY, limits))
    assert info.value.what == "files"


def test_field_limit():
    data = body([("field", "report", b"x" * 300_000)])
    with pytest.raises(UploadTooLarge) as info:
        list(iter_multipart(io.BytesIO(data).read, BOUNDARY, BIG))
    assert info.value.what == "field"


def test_huge_headers_are_refused_not_buffered():
    data = b"--" + BOUNDARY + b"\r\nX-Pad: " + b"a" * (1 << 20)
    with pytest.raises(UploadTooLarge):
        list(iter_multipart(io.BytesIO(data).read, BOUNDARY, BIG))


def test_truncated_body_is_malformed():
    data = body([("file", "evidence", "a", "x/y", b"a" * 1000)])
    with pytest.raises(MalformedUpload):
        list(iter_multipart(io.BytesIO(data[:-30]).read, BOUNDARY, BIG))


def test_garbage_is_malformed():
    with pytest.raises(MalformedUpload):
        list(iter_multipart(io.BytesIO(b"hello world").read, BOUNDARY, BIG))
    bad = b"--" + BOUNDARY + b"\r\nNo-Disposition: x\r\n\r\ndata\r\n--" + BOUNDARY + b"--\r\n"
    with pytest.raises(MalformedUpload):
        list(iter_multipart(io.BytesIO(bad).read, BOUNDARY, BIG))


def test_boundary_from_content_type():
    assert boundary_from_content_type('multipart/form-data; boundary="abc"') == b"abc"
    assert boundary_from_content_type("multipart/form-data; boundary=----x1") == b"----x1"
    for bad in (None, "application/json", "multipart/form-data", "multipart/form-data; boundary=" + "a" * 71,
                'multipart/form-data; boundary="a\\"b"'):
        with pytest.raises(MalformedUpload):
            boundary_from_content_type(bad)


@pytest.mark.parametrize("raw,expected", [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\ani\\Documents\\bukti.docx", "bukti.docx"),
    ("..", "evidence"),
    ("...hidden", "hidden"),
    ("", "evidence"),
    (None, "evidence"),
    ("a\x00b\x1fc.txt", "abc.txt"),
    ("invoice\u202egpj.exe", "invoicegpj.exe"),
    ("zero\u200bwidth.png", "zerowidth.png"),
    ("line\u2028sep.txt", "linesep.txt"),
    ("  many   spaces  .txt ", "many spaces .txt"),
    ("Laporan Dana BOS 2026.xlsx", "Laporan Dana BOS 2026.xlsx"),
    ("e\u0301.txt", "\u00e9.txt"),
])
def test_sanitise_filename(raw, expected):
    assert sanitise_filename(raw) == expected


def test_sanitise_filename_bounds_length_and_keeps_extension():
    name = sanitise_filename("\u00e9" * 500 + ".pdf")
    assert len(name.encode()) <= 200 and name.endswith(".pdf")
    name = sanitise_filename("a" * 500)
    assert len(name.encode()) <= 200
    name = sanitise_filename("b" * 300 + "." + "c" * 50)
    assert len(name.encode()) <= 200


@given(st.text(max_size=400))
def test_sanitise_filename_never_returns_dangerous_names(raw):
    name = sanitise_filename(raw)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert len(name.encode("utf-8")) <= 200
    assert all(ord(ch) >= 32 for ch in name)


def test_sanitise_media_type():
    assert sanitise_media_type("application/PDF; charset=x") == "application/pdf"
    assert sanitise_media_type("text/html\r\nX: y") == "application/octet-stream"
    assert sanitise_media_type(None) == "application/octet-stream"
    assert sanitise_media_type("nonsense") == "application/octet-stream"


def test_every_two_read_split_gives_the_same_result():
    """Regression: werkzeug 3.1.9 alone emits a stray CR when a read ends in '\\r\\n--boundary-'."""
    parts = [("field", "report", b"{}"), ("file", "evidence", "e", "text/plain", b"evidence\r"),
             ("file", "evidence", "f", "text/plain", b"")]
    data = body(parts)
    for cut in range(1, len(data)):
        fields, files = collect(iter_multipart(ChunkedReader(data, [cut, 1 << 20]).read, BOUNDARY, BIG))
        assert fields == {"report": b"{}"}, cut
        assert [f[3] for f in files] == [b"evidence\r", b""], cut
