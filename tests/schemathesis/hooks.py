"""Schemathesis hooks for Assent (loaded through SCHEMATHESIS_HOOKS by run.sh).

`POST /v1/imports` takes NDJSON or CSV as text; schemathesis knows neither, so the
generated string body is sent as it is (UTF-8), the way `text/plain` is.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson", "text/csv")
def text_lines(ctx, value):
    if isinstance(value, bytes):
        return {"data": value}
    if not isinstance(value, str):
        value = json.dumps(value)
    return {"data": value.encode("utf-8")}


# Rules the document states in words because OpenAPI cannot express them; applied to
# positive cases only, so negative testing still sends what the rules refuse.
def _positive(case):
    meta = getattr(case, "meta", None)
    return meta is None or meta.generation.mode.is_positive


# `GET /v1/subjects` takes exactly one of these query parameters.
SUBJECT_KEYS = ("external_ref", "email", "phone")


@schemathesis.hook
def map_case(ctx, case):
    if not _positive(case) or not case.query:
        return case
    # A cursor is opaque: only one a previous page returned is valid.
    case.query.pop("cursor", None)
    if case.method.upper() == "GET" and case.path == "/v1/subjects":
        given = [k for k in SUBJECT_KEYS if k in case.query]
        for extra in given[1:]:
            del case.query[extra]
    return case


@schemathesis.hook
def filter_case(ctx, case):
    if not _positive(case):
        return True
    if case.method.upper() == "GET" and case.path == "/v1/subjects":
        return any(k in (case.query or {}) for k in SUBJECT_KEYS)
    return True
