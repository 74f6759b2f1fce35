"""The OpenAPI 3 document for the reporter API (served at /api/v1/openapi.json)."""

from intake.schemas import CATEGORIES, RELATIONSHIPS

_ERROR = {"$ref": "#/components/schemas/Error"}


def _err(description):
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


POW_DESCRIPTION = (
    "Abuse control without tracking anyone. GET /api/v1/pow returns {challenge, bits, expires_at}. "
    "Find a decimal nonce (0, 1, 2, ...) such that SHA-256 of the ASCII string challenge + ':' + nonce "
    "starts with `bits` zero bits (read the digest as a big-endian bit string), then send the header "
    "`X-WBS-PoW: <challenge>:<nonce>`. A challenge is good for one request and until expires_at. "
    "A missing, reused, expired or wrong proof gets 428. When bits is 0 the header is not required."
)


_NONEMPTY = {"type": "string", "minLength": 1, "pattern": "\\S"}


def _text(max_length: int) -> dict:
    return {**_NONEMPTY, "maxLength": max_length}


def _json(schema) -> dict:
    return {"application/json": {"schema": schema}}


SESSION = {"type": "object", "required": ["token", "expires_at"], "additionalProperties": False, "properties": {
    "token": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}}}
EVIDENCE_ANSWER = {"type": "object", "required": ["evidence"], "properties": {"evidence": {"type": "array", "items": {
    "type": "object", "required": ["evidence_id", "size_bytes"], "properties": {
        "evidence_id": {"type": "string"}, "size_bytes": {"type": "integer", "minimum": 1}}}}}}
LABELLED = {"type": "object", "required": ["code", "label"], "properties": {
    "code": {"type": "string"}, "label": {"type": "string"}}}
REPORTER_VIEW = {
    "type": "object",
    "required": ["report_id", "received_at", "state", "history", "messages", "evidence_count"],
    "properties": {
        "report_id": {"type": "string", "format": "uuid"},
        "received_at": {"type": "string", "format": "date-time"},
        "language": {"type": "string", "enum": ["id", "en"]},
        "state": LABELLED,
        "history": {"type": "array", "items": {**LABELLED, "properties": {
            **LABELLED["properties"], "at": {"type": "string", "nullable": True}}}},
        "messages": {"type": "array", "items": {
            "type": "object", "required": ["direction", "text", "at"], "properties": {
                "direction": {"type": "string", "enum": ["to_reporter", "from_reporter"]},
                "text": {"type": "string", "nullable": True,
                         "description": "null if storage could not open it (e.g. the report was shredded)"},
                "at": {"type": "string", "nullable": True}}}},
        "evidence_count": {"type": "integer", "minimum": 0},
    },
}


def document(pow_bits: int, unit_codes: list[str] | None = None) -> dict:
    """The document as served: `unit_codes` (when verification answered) makes `unit` an enum
    of the codes a report may name right now, so a client can validate before sending."""
    unit = {**_text(64), "description": "A code from GET /api/v1/units"}
    if unit_codes:
        unit["enum"] = sorted(unit_codes)
    report_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["unit", "category", "description", "parties", "reporter", "good_faith"],
        "properties": {
            "unit": unit,
            "category": {"type": "string", "enum": list(CATEGORIES)},
            "title": {"type": "string", "maxLength": 200},
            "description": _text(20000),
            "occurred": {"type": "object", "additionalProperties": False, "properties": {
                "from": {"type": "string", "format": "date"},
                "to": {"type": "string", "format": "date"},
                "ongoing": {"type": "boolean", "nullable": True}}},
            "location": {"type": "string", "maxLength": 500},
            "parties": {"type": "array", "minItems": 1, "maxItems": 20, "items": {
                "type": "object", "additionalProperties": False, "required": ["name"],
                "properties": {"name": _text(200),
                               "position": {"type": "string", "maxLength": 200},
                               "unit": {"type": "string", "maxLength": 100},
                               "nip": {"type": "string", "maxLength": 40, "description": (
                                   "Optional: the party's civil-servant number (NIP, 18 digits; "
                                   "spaces, dots and dashes are ignored). An inspector with this "
                                   "NIP is never assigned the case.")}}}},
            "reporter": {"type": "object", "additionalProperties": False,
                         "required": ["relationship", "involved"], "properties": {
                             "relationship": {"type": "string", "enum": list(RELATIONSHIPS)},
                             "involved": {"type": "boolean"},
                             "identity": {"type": "object", "additionalProperties": False, "nullable": True,
                                          "description": "Optional; sealed: never in events, logs or emails",
                                          "properties": {
                                              "name": {"type": "string", "maxLength": 200},
                                              "email": {"type": "string", "format": "email", "maxLength": 254},
                                              "phone": {"type": "string", "maxLength": 40}}},
                             "contact_email": {"type": "string", "format": "email", "maxLength": 254,
                                               "description": "Optional, for content-free update notices"}}},
            "language": {"type": "string", "enum": ["id", "en"], "default": "id"},
            "good_faith": {"type": "boolean", "enum": [True]},
        },
    }
    pow_param = {"name": "X-WBS-PoW", "in": "header", "required": pow_bits > 0,
                 "description": POW_DESCRIPTION, "schema": {"type": "string"}}
    busy = _err("Too many requests from everyone together right now (global throttle, never per "
                "client); retry after the Retry-After header's seconds")
    unavailable = _err("Temporarily unavailable; nothing was kept")
    bearer = [{"bearer": []}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "WBS reporter API",
            "version": "1",
            "description": (
                "Report a suspected violation anonymously. Nothing about your device or network is "
                "recorded. The receipt returned on submission is shown once and never stored in clear: "
                "write it down; it is the only way back to your report.\n\n" + POW_DESCRIPTION +
                "\n\nFollow-up: POST /api/v1/reporter/session with the receipt gives a short-lived bearer "
                "token (default 30 minutes; DELETE ends it at once) for reading the report's state, history "
                "and messages, answering, and adding evidence. Costly requests share one global throttle "
                "(429 with Retry-After); nothing is rate-limited per client, because nothing identifies one."
            ),
        },
        "paths": {
            "/api/v1/pow": {"get": {
                "summary": "Get a proof-of-work challenge",
                "responses": {"200": {"description": "A challenge", "content": _json(
                    {"$ref": "#/components/schemas/PowChallenge"})}}}},
            "/api/v1/units": {"get": {"summary": "Units that can be reported about",
                                      "responses": {"200": {"description": "{units: [{code, name, parent}]}",
                                                            "content": _json({"type": "object", "required": ["units"]})},
                                                    "503": unavailable}}},
            "/api/v1/categories": {"get": {"summary": "Categories of violation",
                                           "responses": {"200": {"description": "{categories: [{code, label: {id, en}}]}",
                                                                 "content": _json({"type": "object", "required": ["categories"]})}}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document",
                                             "responses": {"200": {"description": "OpenAPI 3",
                                                                   "content": _json({"type": "object"})}}}},
            "/api/v1/reports": {"post": {
                "summary": "Submit a report",
                "description": ("Either a JSON report, or multipart/form-data with a part `report` (the JSON) "
                                "followed by any number of file parts named `evidence`. The `report` part "
                                "must come before the files. Limits (files per report, bytes per file and "
                                "per report, bytes per request) are checked while the body streams in: a "
                                "request that breaks one gets 413 as soon as it does. Empty file parts are "
                                "ignored; file names are sanitised and kept only inside the encrypted object; "
                                "files are stored as sent (archives are never unpacked)."),
                "parameters": [pow_param],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Report"}},
                    "multipart/form-data": {"schema": {"type": "object", "required": ["report"], "properties": {
                        "report": {"type": "string", "description": "The report as JSON"},
                        "evidence": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
                "responses": {
                    "201": {"description": "Accepted", "content": _json({
                        "type": "object", "required": ["report_id", "receipt", "received_at"], "properties": {
                            "report_id": {"type": "string", "format": "uuid"},
                            "receipt": {"type": "string", "description": "Shown this once"},
                            "received_at": {"type": "string", "format": "date-time"}}})},
                    "400": _err("Malformed body"), "413": _err("Too large"),
                    "415": _err("Unsupported media type"), "422": _err("Invalid report; see error.fields"),
                    "428": _err("Proof of work missing, reused, expired or wrong"),
                    "429": busy, "503": unavailable}}},
            "/api/v1/reporter/session": {
                "post": {
                    "summary": "Sign in with a receipt",
                    "parameters": [pow_param],
                    "requestBody": {"required": True, "content": _json({
                        "type": "object", "required": ["receipt"], "properties": {"receipt": {"type": "string"}}})},
                    "responses": {"200": {"description": "A short-lived session", "content": _json(SESSION)},
                                  "400": _err("Malformed body"), "413": _err("Too large"),
                                  "415": _err("Unsupported media type"),
                                  "401": _err("Not recognised (same answer for every wrong receipt)"),
                                  "428": _err("Proof of work required"), "429": busy}},
                "delete": {
                    "summary": "Sign out: the bearer token sent stops working at once",
                    "description": "Send the session's Authorization: Bearer header. Always 204, so an "
                                   "unknown or expired token reveals nothing.",
                    "responses": {"204": {"description": "Signed out (also for an unknown token)"}}}},
            "/api/v1/reporter/report": {"get": {
                "summary": "State, history and messages of your report",
                "security": bearer,
                "parameters": [{"name": "lang", "in": "query", "required": False,
                                "description": "Language of the labels; default: the report's",
                                "schema": {"type": "string", "enum": ["id", "en"]}}],
                "responses": {"200": {"description": "The reporter's view", "content": _json(REPORTER_VIEW)},
                              "401": _err("Token missing, wrong or expired"), "503": unavailable}}},
            "/api/v1/reporter/messages": {"post": {
                "summary": "Write to the inspector",
                "security": bearer,
                "requestBody": {"required": True, "content": _json({
                    "type": "object", "required": ["text"], "properties": {"text": _text(10000)}})},
                "responses": {"201": {"description": "Sent", "content": _json({
                                  "type": "object", "required": ["message_id"], "properties": {
                                      "message_id": {"type": "string", "format": "uuid"}}})},
                              "400": _err("Malformed body"), "401": _err("Not signed in"),
                              "413": _err("Too large"), "415": _err("Unsupported media type"),
                              "422": _err("Empty, too long, or with forbidden characters; see error.fields"),
                              "429": busy, "503": unavailable}}},
            "/api/v1/reporter/evidence": {"post": {
                "summary": "Add evidence to your report",
                "description": "Counts against the report's limits of files and bytes.",
                "security": bearer,
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "properties": {
                        "evidence": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
                "responses": {"201": {"description": "Stored", "content": _json(EVIDENCE_ANSWER)},
                              "400": _err("No file, or a non-file part"), "401": _err("Not signed in"),
                              "413": _err("Too large, or too many files for the report"),
                              "415": _err("Unsupported media type"), "429": busy, "503": unavailable}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Report": report_schema,
                "PowChallenge": {"type": "object", "required": ["challenge", "bits", "expires_at"], "properties": {
                    "challenge": {"type": "string"}, "bits": {"type": "integer", "minimum": 0},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "algorithm": {"type": "string"}}},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}}},
            },
        },
    }
