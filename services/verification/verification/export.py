"""A case exported for referral (*pelimpahan*): one ZIP, written as it is sent.

What is in it (docs/interface.md §3):

* ``summary.html``: reference, state with its Indonesian label, unit by name, category, the
  handling inspector, dates in the unit's zone (WIB/WITA/WIT), the evidence list and the history;
* ``narrative.txt`` (title and *kronologi*), ``parties.json`` (the reported parties as the report
  names them), ``history.json``;
* ``evidence/NN-<file name>``: every evidence file, decrypted, exactly as uploaded;
* ``manifest.json``: the SHA-256 and size of every file above; ``SHA256SUMS``: the same for every
  file including ``manifest.json``, in the format ``sha256sum -c`` checks.

Never in it: anything about the reporter (identity, contact, relationship), messages, the
routing record. Those stay in the console.

Why a generator: evidence may be 1 GiB a file, so the archive is never whole in memory or on disk
(docs/architecture.md §4.6). :func:`zip_stream` gives ``zipfile`` a write-only file without
``tell``/``seek``, so it writes each entry's sizes and CRC in a data descriptor after the data,
and hands on whatever was written after each chunk: memory holds one evidence chunk (<= 1 MiB)
and the central directory, whatever the evidence adds up to. Each file's SHA-256 is computed as
it passes, so the manifest, written last, costs no second read. Evidence is stored, not deflated
(it is mostly compressed already, and deflating a gigabyte would hold the web worker's CPU);
the small text files are deflated.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from wbs_plumbing.clock import as_utc, iso

from . import zones

FORMAT = "wbs.case-export/1"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"


@dataclass
class Entry:
    """One file of the archive: its path, its bytes as chunks, whether to deflate it, and its size
    when known (so ``zipfile`` knows whether it needs ZIP64)."""

    name: str
    chunks: Iterable[bytes]
    compress: bool = True
    size: int | None = None


class _Pipe:
    """A write-only file with no ``tell`` or ``seek``: ``zipfile`` streams into it, and what it
    wrote waits here until :meth:`drain` hands it on."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def zip_stream(entries: Iterable[Entry], when: dt.datetime) -> Iterator[bytes]:
    """The ZIP of ``entries`` as a sequence of byte strings, each entry read chunk by chunk and
    passed on as soon as it is written. ``when`` (local time) stamps every entry."""
    pipe = _Pipe()
    stamp = when.timetuple()[:6]
    archive = zipfile.ZipFile(pipe, "w")
    for entry in entries:
        info = zipfile.ZipInfo(entry.name, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED if entry.compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        if entry.size is not None:
            info.file_size = int(entry.size)
        with archive.open(info, "w", force_zip64=entry.size is None) as out:
            for chunk in entry.chunks:
                out.write(chunk)
                data = pipe.drain()
                if data:
                    yield data
        data = pipe.drain()
        if data:
            yield data
    archive.close()
    yield pipe.drain()


def _hashed(name: str, chunks: Iterable[bytes], manifest: list[dict], **about) -> Iterator[bytes]:
    """Pass ``chunks`` on, and once they are all through record the file's size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    manifest.append(dict(path=name, size_bytes=size, sha256=digest.hexdigest(), **about))


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def evidence_path(index: int, item: dict) -> str:
    """``evidence/NN-<name>``: numbered so two files of the same name stay apart, and the name
    cleaned so no entry can point outside the folder it is unpacked into."""
    name = unicodedata.normalize("NFC", str(item.get("filename") or item.get("evidence_id") or "evidence"))
    name = _UNSAFE.sub("_", name).strip(" .") or "evidence"
    return f"evidence/{index:02d}-{name[:120]}"


def filename(case: dict) -> str:
    """The download's name: the register number with ``/`` as ``-`` (``WBS-ITJEN-2026-00042.zip``)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", case.get("reference") or case["case_id"]) + ".zip"


def _history(case: dict, zone: str) -> list[dict]:
    return [{"at": h["at"], "at_local": zones.local_iso(h["at"], zone), "from_state": h["from_state"],
             "to_state": h["to_state"], "to_label": h["to_label"], "reason": h["reason"],
             "detail": (h["detail"] or {}).get("label"), "actor": h["actor"]}
            for h in case.get("history", [])]


def archive(case: dict, exporter: dict, evidence: list[tuple[dict, Iterable[bytes]]], now: dt.datetime,
            render: Callable[..., str]) -> Iterator[bytes]:
    """The export of ``case`` (``views.case_detail`` with ``views.attach_content``'s narrative,
    parties and evidence list) as ZIP bytes, lazily.

    ``evidence`` pairs each evidence item with an iterable of its plaintext chunks, read only when
    the archive reaches it; ``render(template, **context)`` renders the HTML summary.
    """
    zone = case["zone"]["name"]
    local_now = as_utc(now).astimezone(ZoneInfo(zone if zones.valid(zone) else zones.DEFAULT))
    history = _history(case, zone)
    listed = [dict(path=evidence_path(i, item), **{k: item.get(k) for k in
                                                   ("evidence_id", "filename", "media_type", "size_bytes", "sha256")})
              for i, (item, _) in enumerate(evidence, start=1)]
    summary = render("export_summary.html", case=case, exporter=exporter, history=history, evidence=listed,
                     exported_local=zones.local(now, zone))
    narrative = "\n\n".join(part for part in (case.get("title"), case.get("narrative")) if part) + "\n"
    files = [
        Entry("summary.html", [summary.encode("utf-8")]),
        Entry("narrative.txt", [narrative.encode("utf-8")]),
        Entry("parties.json", [_json(case.get("parties") or [])]),
        Entry("history.json", [_json(history)]),
    ] + [Entry(about["path"], chunks, compress=False, size=about["size_bytes"])
         for about, (_, chunks) in zip(listed, evidence)]
    manifest: list[dict] = []

    def entries() -> Iterator[Entry]:
        for entry in files:
            yield Entry(entry.name, _hashed(entry.name, entry.chunks, manifest), entry.compress, entry.size)
        document = {"format": FORMAT, "case_id": case["case_id"], "reference": case.get("reference"),
                    "exported_at": iso(now), "exported_by": exporter, "files": list(manifest),
                    "note": "SHA-256 of every file in this archive but manifest.json and SHA256SUMS; "
                            "SHA256SUMS covers manifest.json too (sha256sum -c SHA256SUMS)."}
        yield Entry(MANIFEST, _hashed(MANIFEST, [_json(document)], manifest))
        yield Entry(SUMS, ["".join(f"{m['sha256']}  {m['path']}\n" for m in manifest).encode("utf-8")])

    return zip_stream(entries(), local_now.replace(tzinfo=None))


def _json(value) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
