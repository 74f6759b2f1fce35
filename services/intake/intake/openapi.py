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


def document(pow_bits: int) -> dict:
    report_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["unit", "category", "description", "parties", "reporter", "good_faith"],
        "properties": {
            "unit": {"type": "string", "description": "A code from GET /api/v1/units"},
            "category": {"type": "string", "enum": list(CATEGORIES)},
            "title": {"type": "string", "maxLength": 200},
            "description": {"type": "string", "maxLength": 20000},
            "occurred": {"type": "object", "additionalProperties": False, "properties": {
                "from": {"type": "string", "format": "date"},
                "to": {"type": "string", "format": "date"},
                "ongoing": {"type": "boolean"}}},
            "location": {"type": "string", "maxLength": 500},
            "parties": {"type": "array", "minItems": 1, "maxItems": 20, "items": {
                "type": "object", "additionalProperties": False, "required": ["name"],
                "properties": {"name": {"type": "string", "maxLength": 200},
                               "position": {"type": "string", "maxLength": 200},
                               "unit": {"type": "string", "maxLength": 100}}}},
            "reporter": {"type": "object", "additionalProperties": False,
                         "required": ["relationship", "involved"], "properties": {
                             "relationship": {"type": "string", "enum": list(RELATIONSHIPS)},
                             "involved": {"type": "boolean"},
                             "identity": {"type": "object", "additionalProperties": False, "properties": {
                                 "name": {"type": "string"}, "email": {"type": "string"},
                                 "phone": {"type": "string"}}},
                             "contact_email": {"type": "string"}}},
            "language": {"type": "string", "enum": ["id", "en"], "default": "id"},
            "good_faith": {"type": "boolean", "enum": [True]},
        },
    }
    pow_param = {"name": "X-WBS-PoW", "in": "header", "required": pow_bits > 0,
                 "description": POW_DESCRIPTION, "schema": {"type": "string"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "WBS reporter API",
            "version": "1",
            "description": (
                "Report a suspected violation anonymously. Nothing about your device or network is "
                "recorded. The receipt returned on submission is shown once and never stored in clear: "
                "write it down; it is the only way back to your report.\n\n" + POW_DESCRIPTION
            ),
        },
        "paths": {
            "/api/v1/pow": {"get": {
                "summary": "Get a proof-of-work challenge",
                "responses": {"200": {"description": "A challenge", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/PowChallenge"}}}}}}},
            "/api/v1/units": {"get": {"summary": "Units that can be reported about",
                                      "responses": {"200": {"description": "{units: [{code, name, parent}]}"},
                                                    "503": _err("Directory unavailable")}}},
            "/api/v1/categories": {"get": {"summary": "Categories of violation",
                                           "responses": {"200": {"description": "{categories: [{code, label: {id, en}}]}"}}}},
            "/api/v1/reports": {"post": {
                "summary": "Submit a report",
                "description": ("Either a JSON report, or multipart/form-data with a part `report` (the JSON) "
                                "followed by any number of file parts named `evidence`. The `report` part "
                                "must come before the files."),
                "parameters": [pow_param],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Report"}},
                    "multipart/form-data": {"schema": {"type": "object", "required": ["report"], "properties": {
                        "report": {"type": "string", "description": "The report as JSON"},
                        "evidence": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
                "responses": {
                    "201": {"description": "Accepted", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["report_id", "receipt", "received_at"], "properties": {
                            "report_id": {"type": "string", "format": "uuid"},
                            "receipt": {"type": "string", "description": "Shown this once"},
                            "received_at": {"type": "string", "format": "date-time"}}}}}},
                    "400": _err("Malformed body"), "413": _err("Too large"),
                    "415": _err("Unsupported media type"), "422": _err("Invalid report; see error.fields"),
                    "428": _err("Proof of work missing, reused, expired or wrong"),
                    "503": _err("Temporarily unavailable; nothing was kept")}}},
            "/api/v1/reporter/session": {"post": {
                "summary": "Sign in with a receipt",
                "parameters": [pow_param],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["receipt"], "properties": {"receipt": {"type": "string"}}}}}},
                "responses": {"200": {"description": "{token, expires_at}"},
                              "401": _err("Not recognised (same answer for every wrong receipt)"),
                              "428": _err("Proof of work required")}}},
            "/api/v1/reporter/evidence": {"post": {
                "summary": "Add evidence to your report",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "properties": {
                        "evidence": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
                "responses": {"201": {"description": "{evidence: [{evidence_id, size_bytes}]}"},
                              "400": _err("No file, or a non-file part"), "401": _err("Not signed in"),
                              "413": _err("Too large"), "503": _err("Temporarily unavailable")}}},
            "/api/v1/reporter/report": {"get": {
                "summary": "Status of your report",
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "{report_id, state: {code, label}, history, messages}"},
                              "401": _err("Token missing, wrong or expired")}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Report": report_schema,
                "PowChallenge": {"type": "object", "properties": {
                    "challenge": {"type": "string"}, "bits": {"type": "integer"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "algorithm": {"type": "string"}}},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}}},
            },
        },
    }
