"""Schemathesis hooks for Assent (loaded through SCHEMATHESIS_HOOKS by run.sh).

`POST /v1/imports` takes NDJSON or CSV as text; schemathesis knows neither, so the
generated string body is sent as it is (UTF-8), the way `text/plain` is.
"""

import json
import os
import uuid
from datetime import datetime, timedelta, timezone

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

# Objects run.sh creates in tenant `alpha` before the run (the identity positive cases
# use): a reference to an unknown subject or purpose in a body is refused (422), and a
# generator cannot guess a real one.
FIXTURE_SUBJECT = os.environ.get("ASSENT_ST_SUBJECT_ID")
FIXTURE_PURPOSE = os.environ.get("ASSENT_ST_PURPOSE")
# A recipient in `alpha`'s register of the contract purpose `st_contract` (category
# `email`): a disclosure needs a known recipient, a purpose covering what it names and
# a legal basis in force, rules the document states in words.
FIXTURE_RECIPIENT = os.environ.get("ASSENT_ST_RECIPIENT")
VALID_RECIPIENT = {
    "name": "St Processor", "kind": "processor", "country": "RU",
    "contract": {"number": "P-2", "date": "2026-01-01"},
    "purposes": ["st_contract"], "data_categories": ["email"],
}
# An operator under 152-FZ: INN and OGRN with valid check digits.
VALID_OPERATOR = {
    "name": "ООО «Альфа»", "address": "Москва", "inn": "7707083893", "ogrn": "1027700132195",
    "responsible": {"name": "Иванова Анна", "contact": "dpo@alpha.example"},
    "database_country": "RU", "database_location": "Москва",
    "protection_measures": ["шифрование"], "subject_categories": ["клиенты"],
    "processing_started_on": "2020-01-01",
}
# A visitor of `alpha`'s website (run.sh answers its banner once): a visitor id is
# MAC'd by the installation, so a generated one is refused (422) by design.
FIXTURE_VISITOR = os.environ.get("ASSENT_ST_VISITOR")
# A banner `alpha` may publish: which purposes a category may record, and which words
# bundle consents, are rules the document states in words.
VALID_BANNER = {"categories": [{"code": "necessary"}], "origins": ["https://st.example"]}

# A template that is valid minijinja, renders non-empty for every kind; which source
# renders is not a rule a schema can state.
VALID_TEMPLATE = {"subject": "Hello", "text": "Hello {{ recipient }}", "html": "<p>Hello</p>"}


def _integral(value):
    """serde reads an integer field strictly: `382.0` is a float to it although JSON
    Schema calls it an integer. Send such numbers as integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _email_ok(value):
    """Whether `contact::normalize_email` surely accepts `value`, for the two rules the
    document's pattern cannot state: at most 64 characters before `@`, and a non-ASCII
    domain character must be a letter or digit (Python's `isalpha`/`isdigit` are within
    Rust's `is_alphabetic`/`is_numeric`, so this errs on the strict side)."""
    email = value.strip().lower()
    local, _, domain = email.partition("@")
    labels = domain.split(".")

    def alnum(c):
        return c.isascii() or c.isalpha() or c.isdigit()

    tld = labels[-1]
    return (
        0 < len(local) <= 64
        and len(email) <= 254
        and all(label and len(label) <= 63 and all(alnum(c) for c in label) for label in labels)
        and (tld.startswith("xn--") or all(c.isalpha() for c in tld))
    )


def _emails(value):
    """Replace, anywhere in a body, an `email` the server would refuse although the
    document's (deliberately wider) pattern allows it."""
    if isinstance(value, list):
        for v in value:
            _emails(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k == "email" and isinstance(v, str) and not _email_ok(v):
                value[k] = f"st-{uuid.uuid4().hex[:12]}@example.com"
            else:
                _emails(v)


def _at(delta):
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _references(body):
    """Point references to a subject or purpose at the fixtures."""
    if FIXTURE_SUBJECT and isinstance(body.get("subject_id"), str):
        body["subject_id"] = FIXTURE_SUBJECT
    if FIXTURE_SUBJECT and isinstance(body.get("subject_ids"), list):
        body["subject_ids"] = [FIXTURE_SUBJECT]
    for key in ("purpose", "expiry_purpose"):
        if FIXTURE_PURPOSE and isinstance(body.get(key), str):
            body[key] = FIXTURE_PURPOSE


def _body_rules(method, path, body):
    """Rules stated in words in the document (descriptions), one per operation."""
    _references(body)
    _emails(body)
    # `send_at` (notifications, invitations): at most a year ahead.
    if body.get("send_at") is not None:
        body["send_at"] = _at(timedelta(hours=1))
    # `occurred_at` (consents, survey events) is never in the future.
    if body.get("occurred_at") is not None:
        body["occurred_at"] = _at(-timedelta(seconds=5))
    if method == "POST" and path == "/v1/subscriptions" or method == "PATCH" and path == "/v1/subscriptions/{id}":
        # `expires_at` must be in the future.
        if body.get("expires_at") is not None:
            body["expires_at"] = _at(timedelta(days=30))
    elif method == "POST" and path == "/v1/rights-requests":
        # `received_at`: within the last year, never in the future.
        if body.get("received_at") is not None:
            body["received_at"] = _at(-timedelta(days=1))
    elif method == "POST" and path == "/v1/purposes":
        # `scope: group` needs a tenant in a group; the Schemathesis tenants are in none.
        body["scope"] = "tenant"
        # `consent_term_days` only for a purpose based on consent.
        if body.get("legal_basis") != "consent":
            body.pop("consent_term_days", None)
    elif method == "PATCH" and path == "/v1/purposes/{code}":
        # `legal_basis` is accepted only when unchanged, and `consent_term_days` only for
        # a consent purpose: the generator knows neither the current basis.
        body.pop("legal_basis", None)
        body.pop("consent_term_days", None)
        # The fixture purposes' data categories are what the fixture recipient and
        # consent document name: narrowing them refuses the fixture's disclosures.
        body.pop("data_categories", None)
        # `reconsent` asks people again for a change that widens a consent purpose, with
        # a lapse date in the future; the generator knows neither the current meaning.
        body.pop("reconsent", None)
    elif method == "POST" and path == "/v1/rights-requests/{id}/verify":
        # The one-time code went to the person: a generated one is wrong (422) by design.
        # Staff approval is the other valid way.
        if "code" in body:
            body.clear()
            body["documents_approved"] = True
    elif method == "POST" and path == "/v1/subjects/{id}/consents":
        # `policy_version` must name a published version; the run publishes none.
        body.pop("policy_version", None)
        # `items` only for a purpose whose data is permitted for dissemination (the
        # fixture's is not), and then naming exactly its categories.
        body.pop("items", None)
    elif method == "PUT" and path == "/v1/purposes/{code}/consent-document":
        # Item-by-item consent on the fixture purpose would refuse every later grant
        # without `items`.
        body["for_dissemination"] = False
    if method in ("POST", "PATCH") and path in ("/v1/subjects", "/v1/subjects/{id}") and body.get("tags") is not None:
        # Tags are labels of lowercase letters, digits and `_-.:`.
        body["tags"] = ["st-tag"]
    if method == "POST" and path == "/v1/subjects":
        # A new subject needs one of external_ref, email, phone.
        if all(body.get(k) is None for k in SUBJECT_KEYS):
            body["external_ref"] = str(uuid.uuid4())
    elif method == "PATCH" and path == "/v1/subjects/{id}":
        # The subject must keep one of external_ref, email, phone, and the generator does
        # not know which it has: clear identifiers only while setting another.
        if all(body.get(k) is None for k in SUBJECT_KEYS):
            for k in SUBJECT_KEYS:
                body.pop(k, None)
    elif method == "POST" and path == "/v1/notifications":
        # The template kind must have templates: a built-in one (`message` takes its
        # subject and body from `data`) or a tenant's upload.
        body["template"] = "message"
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        body["data"] = {**data, "subject": "Hello", "body": "Hello"}
        # A transactional message cannot serve a purpose based on consent (the fixture's).
        if body.get("category") == "transactional":
            body.pop("purpose", None)
    elif method == "PUT" and path == "/v1/branding":
        # The accent colour must reach 4.5:1 contrast with white text (WCAG AA).
        if body.get("accent_color") is not None:
            body["accent_color"] = "#1a4d8f"
    elif method == "PUT" and path == "/v1/templates/{kind}/{locale}":
        body.update(VALID_TEMPLATE)
    elif method == "POST" and path == "/v1/templates/{kind}/{locale}/preview":
        # A kind without built-in templates previews only a given template.
        body["template"] = dict(VALID_TEMPLATE)
    elif method == "PUT" and path == "/v1/banner":
        body.clear()
        body.update(VALID_BANNER)
    elif method == "POST" and path == "/v1/subjects/{id}/visitors":
        if FIXTURE_VISITOR:
            body["visitor_id"] = FIXTURE_VISITOR
    elif method == "POST" and path == "/v1/campaigns":
        # A template in both languages (`message` reads its subject and body from
        # `data`), an audience of the fixture subject (tags and purposes must be
        # known), a channel the fixture purpose allows.
        body["template"] = "message"
        body.pop("content", None)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        body["data"] = {**data, "subject": "Hello", "body": "Hello"}
        body["channel"] = "email"
        body["audience"] = {"subject_ids": [FIXTURE_SUBJECT]} if FIXTURE_SUBJECT else None
    elif method == "POST" and path == "/v1/policies":
        # A summary belongs to a material change, in both languages.
        if body.get("material") is True:
            body["summary"] = {"ru": "Изменения", "en": "Changes"}
        else:
            body.pop("summary", None)
    elif method == "POST" and path == "/v1/rights-requests/{id}/complete":
        # `changes` is for a rectification (the generator does not know the request's
        # type), and names fields of a subject; completing without it is always valid.
        body.pop("changes", None)
    elif method == "POST" and path == "/v1/surveys/{code}/invitations":
        # One of subject_ids, filter, audience; `rate_per_minute` paces an audience
        # only; an audience names only known tags and subjects, on a channel the
        # survey's purpose allows.
        given = [k for k in ("subject_ids", "filter", "audience") if body.get(k) is not None]
        for extra in given[1:]:
            body.pop(extra, None)
        if given[:1] == ["audience"]:
            body["audience"] = {"subject_ids": [FIXTURE_SUBJECT]} if FIXTURE_SUBJECT else {}
            body["channel"] = "email"
        else:
            body.pop("rate_per_minute", None)
    elif method == "PUT" and path == "/v1/subjects/{id}/tags":
        # Tags are labels of lowercase letters, digits and `_-.:`.
        body["tags"] = ["st-tag"]
    elif method == "POST" and path == "/v1/recipients":
        body.clear()
        body.update(json.loads(json.dumps(VALID_RECIPIENT)))
    elif method == "PATCH" and path == "/v1/recipients/{id}":
        # Each field is checked with the others (a contract for every kind but an
        # authority, purposes that exist, an affiliate of the group): rename only.
        body.clear()
        body["name"] = "St Renamed"
    elif method == "POST" and path == "/v1/subjects/{id}/disclosures":
        if FIXTURE_RECIPIENT:
            body.clear()
            body.update({"recipient_id": FIXTURE_RECIPIENT, "purpose": "st_contract",
                         "data_categories": ["email"]})
    elif method == "PUT" and path == "/v1/operator":
        body.clear()
        body.update(json.loads(json.dumps(VALID_OPERATOR)))
    elif method == "POST" and path == "/v1/records-of-processing/filings":
        # Filed on a day not in the future.
        body["filed_on"] = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        if body.get("reference") is not None:
            body["reference"] = "RKN-1"
    elif method == "POST" and path == "/v1/incidents":
        # Detected within the last year and not in the future; a description and
        # categories are texts without control characters.
        body["detected_at"] = _at(-timedelta(hours=1))
        body["description"] = "St incident"
        body["data_categories"] = ["email"]
    elif method == "PATCH" and path == "/v1/incidents/{id}":
        body.clear()
        body["affected_count"] = 1
    elif method == "POST" and path == "/v1/incidents/{id}/steps":
        # Not before detection nor in the future (default now); `closed` would close
        # the incident to every later change, by design.
        body["kind"] = "contained"
        body.pop("taken_at", None)
        body.pop("note", None)
        if body.get("reference") is not None:
            body["reference"] = "RKN-1"
    elif method == "POST" and path == "/v1/incidents/{id}/notify-subjects":
        # The people affected named one way (everyone here: a generated id or tag
        # is unknown); texts without control characters; a repeat asks again.
        body.pop("subject_ids", None)
        body.pop("tags", None)
        body["everyone"] = True
        body["again"] = True
        body["consequences"] = {"ru": "Возможны письма мошенников.", "en": "Phishing may follow."}
        body["measures"] = {"ru": "Доступ закрыт.", "en": "Access was closed."}
    elif method == "POST" and path == "/v1/webhooks":
        # A public https host (literal private addresses and localhost are refused).
        body["url"] = "https://hooks.example.com/assent"
    if method == "POST" and path == "/v1/notifications" and body.get("idempotency_key") is not None:
        # A key names one notification: reusing it for another is refused.
        body["idempotency_key"] = str(uuid.uuid4())


@schemathesis.hook
def map_case(ctx, case):
    if not _positive(case):
        return case
    method, path = case.method.upper(), case.path
    if case.headers and "Idempotency-Key" in case.headers:
        # A key names one request: reusing it with another body is refused.
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    if isinstance(case.body, dict):
        case.body = _integral(case.body)
        _body_rules(method, path, case.body)
        if method == "POST" and path == "/v1/notifications" and "Idempotency-Key" in (case.headers or {}):
            case.body.pop("idempotency_key", None)
    if case.query:
        # A cursor is opaque: only one a previous page returned is valid.
        case.query.pop("cursor", None)
        _emails(case.query)
        if method == "GET" and path == "/v1/subjects":
            given = [k for k in SUBJECT_KEYS if k in case.query]
            for extra in given[1:]:
                del case.query[extra]
        if method == "GET" and path == "/v1/banner/stats":
            # `from` not after `to`, at most 366 days in all.
            start, end = case.query.get("from"), case.query.get("to")
            if isinstance(start, str) and end is None:
                # Without `to` the range ends today: `from` must not be later.
                try:
                    if datetime.strptime(start, "%Y-%m-%d").date() > datetime.now(timezone.utc).date():
                        case.query["from"] = (datetime.now(timezone.utc) - timedelta(days=30)).strftime("%Y-%m-%d")
                except ValueError:
                    pass
            if isinstance(start, str) and isinstance(end, str):
                try:
                    a = datetime.strptime(start, "%Y-%m-%d")
                    b = datetime.strptime(end, "%Y-%m-%d")
                    if a > b or (b - a).days > 365:
                        case.query["to"] = (a + timedelta(days=30)).strftime("%Y-%m-%d")
                except ValueError:
                    pass
    if method == "GET" and path == "/v1/audit-log" and case.query:
        # `from` not after `to` (RFC 3339 times compare as instants; swap them).
        start, end = case.query.get("from"), case.query.get("to")
        if isinstance(start, str) and isinstance(end, str):
            try:
                a = datetime.fromisoformat(start.replace("Z", "+00:00"))
                b = datetime.fromisoformat(end.replace("Z", "+00:00"))
                if a.tzinfo and b.tzinfo and a > b:
                    case.query["from"], case.query["to"] = end, start
            except ValueError:
                pass
    if method == "GET" and path == "/v1/incidents/{id}/notice":
        case.query = {"kind": "regulator_initial", "lang": "ru"}
    if method == "PUT" and path == "/v1/purposes/{code}/consent-document" and FIXTURE_PURPOSE:
        # Only a consent purpose has a consent document: the fixture's is one.
        case.path_parameters = {**(case.path_parameters or {}), "code": FIXTURE_PURPOSE}
    if method == "POST" and path == "/v1/subjects/{id}/visitors" and FIXTURE_SUBJECT:
        # The fixture visitor is linked to the fixture subject (another is a 409).
        case.path_parameters = {**(case.path_parameters or {}), "id": FIXTURE_SUBJECT}
    return case


@schemathesis.hook
def filter_case(ctx, case):
    if not _positive(case):
        return True
    if case.method.upper() == "DELETE" and case.path == "/v1/recipients/{id}":
        # Removing the fixture recipient (found through the list) would retire it, and
        # every later disclosure would be refused by design.
        return False
    if case.method.upper() == "GET" and case.path == "/v1/subjects":
        return any(k in (case.query or {}) for k in SUBJECT_KEYS)
    return True
