"""The OpenAPI 3.0 document of the inspector API (docs/interface.md §3 and what this round added),
served at ``GET /api/v1/openapi.json``. Built as data so a test can validate it and compare its
paths with the routes the service really serves."""
from __future__ import annotations

from . import caselist, lifecycle

_ERROR = {"$ref": "#/components/responses/Error"}


def _body(schema: dict, required=()) -> dict:
    body = {"type": "object", "properties": schema, "additionalProperties": False}
    if required:
        body["required"] = list(required)
    return {"required": True, "content": {"application/json": {"schema": body}}}


def _ok(description: str, schema: dict | None = None, status: str = "200") -> dict:
    answer = {"description": description}
    if schema is not None:
        answer["content"] = {"application/json": {"schema": schema}}
    return {status: answer, "400": _ERROR, "401": _ERROR, "404": _ERROR}


_CASE = {"$ref": "#/components/schemas/Case"}
_CASE_ID = {"name": "case_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}


def document() -> dict:
    states = list(lifecycle.STATES)
    details = sorted({c for d in lifecycle.DETAILS.values() for c in d})
    paths = {
        "/api/v1/auth/login": {"post": {
            "summary": "Sign in with username, password and TOTP code (throttled per account)",
            "security": [],
            "requestBody": _body({"username": _STR, "password": _STR, "otp": _STR}, ["username", "password", "otp"]),
            "responses": {"200": {"description": "Signed in", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"token": _STR, "expires_at": {"type": "string", "format": "date-time"}}}}}},
                "400": _ERROR, "401": _ERROR}}},
        "/api/v1/auth/logout": {"post": {"summary": "Revoke this session",
                                         "responses": {"204": {"description": "Signed out"}}}},
        "/api/v1/cases": {"get": {
            "summary": "One page of the cases in the caller's reach, nearest deadline first by default",
            "parameters": [{"name": n, "in": "query", "required": False, "schema": _STR}
                           for n in ("q", "state", "unit", "category", "assignee")]
            + [{"name": n, "in": "query", "required": False, "schema": {"type": "string", "format": "date"}}
               for n in ("received_from", "received_to")]
            + [{"name": "sort", "in": "query", "required": False,
                "schema": {"type": "string", "enum": list(caselist.SORTS)}},
               {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
               {"name": "per_page", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": caselist.MAX_PER_PAGE}}],
            "responses": {"200": {"description": "Cases", "content": {"application/json": {"schema": {
                "type": "object", "required": ["cases", "total", "page", "per_page"],
                "properties": {"cases": {"type": "array", "items": {"type": "object"}},
                               "total": {"type": "integer"}, "page": {"type": "integer"},
                               "per_page": {"type": "integer"}}}}}},
                "400": _ERROR, "401": _ERROR}}},
        "/api/v1/cases/{case_id}": {"get": {
            "summary": "One case: metadata, flags, deadlines, narrative, parties, evidence, history, messages (audited read)",
            "parameters": [_CASE_ID], "responses": dict(_ok("The case", _CASE), **{"503": _ERROR})}},
        "/api/v1/cases/{case_id}/transitions": {"post": {
            "summary": "Move the case; end states need a coded reason (sub_reason, authority or outcome)",
            "parameters": [_CASE_ID],
            "requestBody": _body({"to": {"type": "string", "enum": states}, "reason": _STR,
                                  "sub_reason": {"type": "string", "enum": list(lifecycle.NOT_ACTIONABLE_REASONS)},
                                  "authority": {"type": "string", "enum": list(lifecycle.AUTHORITIES)},
                                  "outcome": {"type": "string", "enum": list(lifecycle.OUTCOMES)},
                                  "detail": {"type": "string", "enum": details}}, ["to"]),
            "responses": dict(_ok("The case", _CASE), **{"409": _ERROR})}},
        "/api/v1/cases/{case_id}/messages": {"post": {
            "summary": "Message to the reporter or internal note (stored encrypted by storage)",
            "parameters": [_CASE_ID],
            "requestBody": _body({"text": _STR, "visibility": {"type": "string", "enum": ["reporter", "internal"]},
                                  "awaiting_reporter": _BOOL}, ["text", "visibility"]),
            "responses": dict(_ok("Posted", {"type": "object", "properties": {
                "message_id": _STR, "direction": _STR, "at": _STR, "state": _STR}}, "201"),
                **{"409": _ERROR, "503": _ERROR})}},
        "/api/v1/cases/{case_id}/flags": {"post": {
            "summary": "Set on hold (anyone on the case) or the conflict flag (supervisor)",
            "parameters": [_CASE_ID],
            "requestBody": _body({"on_hold": _BOOL, "conflict_flagged": _BOOL}),
            "responses": dict(_ok("The case", _CASE), **{"403": _ERROR})}},
        "/api/v1/cases/{case_id}/legal-hold": {"post": {
            "summary": "Place or lift a legal hold (supervisor)",
            "parameters": [_CASE_ID],
            "requestBody": _body({"legal_hold": _BOOL, "reason": _STR}, ["legal_hold", "reason"]),
            "responses": dict(_ok("The case", _CASE), **{"403": _ERROR})}},
        "/api/v1/cases/{case_id}/recusal": {"post": {
            "summary": "The assignee recuses themselves; the case is routed again",
            "parameters": [_CASE_ID], "requestBody": _body({"reason": _STR}, ["reason"]),
            "responses": dict(_ok("Rerouted", {"type": "object"}), **{"403": _ERROR, "503": _ERROR})}},
        "/api/v1/cases/{case_id}/parties": {"post": {
            "summary": "Add parties found later; anyone named or with a declared conflict is excluded (the assignee too)",
            "parameters": [_CASE_ID],
            "requestBody": _body({"parties": {"type": "array", "minItems": 1, "maxItems": 50, "items": {
                "type": "object", "properties": {"name": _STR, "nip": _STR, "position": _STR, "unit": _STR}}}},
                ["parties"]),
            "responses": dict(_ok("Checked", {"type": "object"}), **{"503": _ERROR})}},
        "/api/v1/cases/{case_id}/assignment": {"post": {
            "summary": "Reassign (supervisor); the same conflict checks as routing",
            "parameters": [_CASE_ID], "requestBody": _body({"assignee": _STR}, ["assignee"]),
            "responses": dict(_ok("The case", _CASE), **{"403": _ERROR, "409": _ERROR, "503": _ERROR})}},
        "/api/v1/cases/{case_id}/evidence/{evidence_id}": {"get": {
            "summary": "Download one evidence file (decrypted, streamed, audited)",
            "parameters": [_CASE_ID, {"name": "evidence_id", "in": "path", "required": True, "schema": _STR}],
            "responses": {"200": {"description": "The file", "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}, "401": _ERROR, "404": _ERROR, "503": _ERROR}}},
        "/api/v1/cases/{case_id}/export": {"get": {
            "summary": "Export the case for referral: a ZIP (summary, narrative, parties, evidence, history, "
                       "SHA-256 manifest), streamed and audited; announced by case_exported",
            "parameters": [_CASE_ID],
            "responses": {"200": {"description": "The ZIP", "content": {"application/zip": {
                "schema": {"type": "string", "format": "binary"}}}}, "401": _ERROR, "404": _ERROR, "409": _ERROR,
                "503": _ERROR}}},
        "/api/v1/me/conflicts": {"post": {
            "summary": "Declare a conflict of interest (unit and/or person)",
            "requestBody": _body({"unit": _STR, "name": _STR, "nip": _STR, "note": _STR}),
            "responses": _ok("Declared", {"type": "object"}, "201")}},
        "/api/v1/stats": {"get": {
            "summary": "Statistics (counts 1-4 shown as \"<5\"); format=csv for CSV",
            "parameters": [{"name": "format", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": ["json", "csv"]}}],
            "responses": {"200": {"description": "Statistics", "content": {
                "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": _STR}}}, "401": _ERROR}}},
        "/api/v1/me/password": {"post": {
            "summary": "Change one's own password (required after a reset and for a new account: until then "
                       "every other call answers 403 password_change_required)",
            "requestBody": _body({"current": _STR, "new": {"type": "string", "minLength": 12}}, ["current", "new"]),
            "responses": {"204": {"description": "Changed"}, "400": _ERROR, "401": _ERROR}}},
        "/api/v1/admin/units": {"get": {
            "summary": "Administrators: every unit, depth first, with parent, flags, time zone, clocks and case count",
            "responses": _ok("Units", {"type": "object", "properties": {
                "units": {"type": "array", "items": {"type": "object"}}}})}},
        "/api/v1/admin/staff": {"get": {
            "summary": "Administrators: staff accounts, filtered",
            "parameters": [{"name": n, "in": "query", "required": False, "schema": _STR} for n in ("q", "unit", "role")]
            + [{"name": "active", "in": "query", "required": False,
                "schema": {"type": "string", "enum": ["active", "disabled"]}}],
            "responses": _ok("Staff", {"type": "object", "properties": {
                "staff": {"type": "array", "items": {"type": "object"}}}})}},
        "/api/v1/openapi.json": {"get": {"summary": "This document", "security": [],
                                         "responses": {"200": {"description": "OpenAPI 3.0"}}}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "WBS inspector API", "version": "1",
                 "description": "The inspector console's JSON API (verification service, port 8001). "
                                "A case outside the caller's reach answers 404 exactly like a missing one."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "A refusal", "content": {"application/json": {"schema": {
                "type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": _STR, "message": _STR}}}}}}}},
            "schemas": {"Case": {"type": "object", "required": ["case_id", "state"], "properties": {
                "case_id": _STR, "report_id": _STR, "unit": _STR,
                "state": {"type": "object"}, "flags": {"type": "object"}, "deadlines": {"type": "array", "items": {"type": "object"}},
                "history": {"type": "array", "items": {"type": "object"}},
                "messages": {"type": "array", "items": {"type": "object"}}}}},
        },
    }
