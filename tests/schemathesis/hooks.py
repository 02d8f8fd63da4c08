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
