"""From HTTP to the domain: the request's form fields and multipart parts, mapped to what the
use cases take (a report dict, and evidence files as streams of bytes).

This is the one place that knows the HTML form's field names (`party2_name`, `how`, ...), the
API's `report` part, and the multipart parser's events (:mod:`intake.uploads`): the domain
(:mod:`intake.submission`) sees a report and files, never a request. The order rule lives here
too: every form field comes before the first file, so a report is validated before a byte of
its evidence is read, let alone sent anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from wbs_plumbing.web import JsonTooDeep, loads_json

from intake.errors import BadRequest
from intake.uploads import FieldPart, FileChunk, FileEnd, FileStart

#: The only file part name either form accepts.
EVIDENCE_PART = "evidence"


@dataclass
class EvidenceFile:
    """One evidence file as the domain sees it: a name, a media type, and its bytes in order
    (an iterator: the file is never held whole)."""

    filename: str
    media_type: str
    chunks: Iterator[bytes]


def report_parts(events: Iterable) -> tuple[dict[str, bytes], Iterator[EvidenceFile]]:
    """Split a report request into its fields (read now) and its files (streamed later).

    Raises BadRequest for a field sent twice; iterating the files raises BadRequest for a field
    after a file or a file part not named `evidence`.
    """
    events = iter(events)
    fields: dict[str, bytes] = {}
    first_file: FileStart | None = None
    for event in events:
        if isinstance(event, FieldPart):
            if event.name in fields:
                raise BadRequest("duplicate_field", "A form field was sent twice.")
            fields[event.name] = event.value
        elif isinstance(event, FileStart):
            first_file = event
            break
    return fields, evidence_files(
        events, first_file,
        BadRequest("field_after_file", "Form fields must come before the evidence files."))


def evidence_parts(events: Iterable) -> Iterator[EvidenceFile]:
    """The files of an evidence-only request (the follow-up's upload): any field is refused."""
    return evidence_files(iter(events), None,
                          BadRequest("unexpected_part", "Only file parts named 'evidence' are accepted."))


def evidence_files(events: Iterator, first: FileStart | None, field_error: BadRequest) -> Iterator[EvidenceFile]:
    pending = first
    while True:
        if pending is None:
            pending = next(events, None)
            if pending is None:
                return
            if isinstance(pending, FieldPart):
                raise field_error
        start, pending = pending, None
        if start.name != EVIDENCE_PART:
            raise BadRequest("unexpected_part", "File parts must be named 'evidence'.")
        chunks = _file_chunks(events)
        yield EvidenceFile(start.filename, start.media_type, chunks)
        for _rest in chunks:  # a consumer that stopped early: skip to the next part
            pass


def _file_chunks(events: Iterator) -> Iterator[bytes]:
    for event in events:
        if isinstance(event, FileChunk):
            yield event.data
        elif isinstance(event, FileEnd):
            return


def report_from_json_part(fields: dict[str, bytes]) -> Any:
    """The API's multipart form: exactly one field, `report`, holding the JSON."""
    if set(fields) - {"report"}:
        raise BadRequest("unexpected_part", "The only form field allowed is 'report'.")
    if "report" not in fields:
        raise BadRequest("missing_report", "The 'report' part (JSON) must come before the files.")
    return parse_json(fields["report"])


def parse_json(raw: bytes) -> Any:
    try:
        return loads_json(raw.decode("utf-8"))
    except JsonTooDeep:
        raise BadRequest("too_deeply_nested", "The JSON body is nested too deeply.") from None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("invalid_json", "The report is not valid UTF-8 JSON.") from None


#: How the page's "how" answer is joined to the narrative (the report has one narrative field).
HOW_HEADING = {"id": "Bagaimana (modus):", "en": "How it was done:"}


def report_from_form(fields: dict[str, bytes]) -> dict:
    """The reporter web page's fields (the guided 4W1H form) -> the report dict of docs/interface.md §2.

    The page asks "what happened" and "how was it done" separately, because a frightened
    reporter answers a small question more easily than a blank page; the report keeps one
    narrative (`description`), so "how" is appended under a heading in the report's language.
    """
    try:
        f = {k: v.decode("utf-8").strip() for k, v in fields.items()}
    except UnicodeDecodeError:
        raise BadRequest("invalid_encoding", "The form is not UTF-8.") from None

    def opt(name):
        return f.get(name) or None

    language = opt("language") or "id"
    involved = {"yes": True, "no": False}.get(f.get("involved", ""))
    identity = {k: opt(f"identity_{k}") for k in ("name", "email", "phone")}
    description = opt("description")
    if description and opt("how"):
        description = f"{description}\n\n{HOW_HEADING.get(language, HOW_HEADING['id'])}\n{opt('how')}"
    parties = [{"name": opt(f"{prefix}_name"), "position": opt(f"{prefix}_position"),
                "unit": opt(f"{prefix}_unit"), "nip": opt(f"{prefix}_nip")}
               for prefix in ("party", "party2")]
    report: dict[str, Any] = {
        "unit": opt("unit"),
        "category": opt("category"),
        "title": opt("title"),
        "description": description,
        "location": opt("location"),
        "parties": [p for p in parties if any(p.values())],
        "reporter": {
            "relationship": opt("relationship"),
            "involved": involved,
            "identity": identity if any(identity.values()) else None,
            "contact_email": opt("contact_email"),
        },
        "language": language,
        # an unchecked checkbox is simply absent: that is a refusal, not an omission
        "good_faith": f.get("good_faith") in ("on", "yes", "true"),
    }
    if opt("occurred_from") or opt("occurred_to") or opt("ongoing"):
        report["occurred"] = {"from": opt("occurred_from"), "to": opt("occurred_to"),
                              "ongoing": True if opt("ongoing") else None}
    return report
