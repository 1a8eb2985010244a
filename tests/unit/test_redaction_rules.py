"""PII and secret redaction rules (jobkit.redaction): recall, precision, terms, stability.

Every canary below is synthetic: documentation ranges (203.0.113.0/24, 2001:db8::/32),
Ofcom drama numbers (020 7946 0xxx), NANP fictional 555-01xx, payment-network test cards,
the IBAN registry's examples and ids built to pass their checksums.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest

from jobkit.redaction import PLACEHOLDERS, redact, sensitive_terms


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _case(template: str, canary: str, placeholder: str, id: str) -> Any:
    return pytest.param(template, canary, placeholder, id=id)


# (log line with {} where the canary goes, canary, placeholder expected in its place)
CANARIES = [
    # --- emails
    _case("mail to {} bounced", "zoe.obrien+jobs@mail.example.co.uk", "[EMAIL]", "email-plus"),
    _case("contact: {}", "O'Brien.Smith@example.ie", "[EMAIL]", "email-apostrophe"),
    _case("sent to <{}>", "ZOE.OBRIEN@EXAMPLE.COM", "[EMAIL]", "email-upper"),
    _case("user {} signed in", "a_b-c@dept.sub.example.org", "[EMAIL]", "email-subdomain"),
    _case("from {}", "zoë@exämple.de", "[EMAIL]", "email-unicode"),
    _case("mailto:{}?subject=cv", "jane@example.com", "[EMAIL]", "email-mailto"),
    # --- phones
    _case("call {} now", "+442079460958", "[PHONE]", "phone-e164"),
    _case("phone={}", "+44 20 7946 0958", "[PHONE]", "phone-intl-spaces"),
    _case("call {} re: offer", "+1 (415) 555-0100", "[PHONE]", "phone-intl-parens"),
    _case("Tel.: {}", "+49 30 901820", "[PHONE]", "phone-de"),
    _case("tel {}", "+33 6 12 34 56 78", "[PHONE]", "phone-fr-intl"),
    _case("tel {}", "+1-415-555-0100", "[PHONE]", "phone-intl-dashes"),
    _case("tel {}", "+44 (0)20 7946 0958", "[PHONE]", "phone-intl-trunk"),
    _case("tel {}", "+1.415.555.0100", "[PHONE]", "phone-intl-dots"),
    _case("reach me at {}.", "(415) 555-0100", "[PHONE]", "phone-us-parens"),
    _case("landline {}", "020 7946 0958", "[PHONE]", "phone-uk-national"),
    _case("mobile {}", "06 12 34 56 78", "[PHONE]", "phone-fr-national"),
    _case("mobile {}", "06.12.34.56.78", "[PHONE]", "phone-fr-dots"),
    _case("mobile {}", "0612345678", "[PHONE]", "phone-nl-compact"),
    _case("cell {}", "415.555.0100", "[PHONE]", "phone-us-dots"),
    _case("cell {}", "415-555-0100", "[PHONE]", "phone-us-dashes"),
    _case("cell {}", "1-415-555-0100", "[PHONE]", "phone-us-trunk"),
    _case("dial {}", "0044 20 7946 0958", "[PHONE]", "phone-00-prefix"),
    _case("dial {}", "030 901820", "[PHONE]", "phone-de-national"),
    # --- cards (network test numbers, Luhn-valid)
    _case("charged card {} ok", "4111 1111 1111 1111", "[CARD]", "card-visa-spaces"),
    _case("card={}", "5555 5555 5555 4444", "[CARD]", "card-mc"),
    _case("amex {} declined", "378282246310005", "[CARD]", "card-amex"),
    _case("pan {}", "4012-8888-8888-1881", "[CARD]", "card-dashes"),
    _case("card {}", "6011111111111117", "[CARD]", "card-discover"),
    _case("card {}", "3530111333300000", "[CARD]", "card-jcb"),
    _case("card {}", "2223003122003222", "[CARD]", "card-mc-2series"),
    _case("card {} 12/27", "4111111111111111", "[CARD]", "card-compact-then-expiry"),
    # --- national ids
    _case("ssn {} on file", "123-45-6789", "[NATIONAL_ID]", "ssn"),
    _case("SSN: {}", "078-05-1120", "[NATIONAL_ID]", "ssn-colon"),
    _case("id {}", "219 09 9999", "[NATIONAL_ID]", "ssn-spaces"),
    _case("NI number {}", "QQ 12 34 56 C", "[NATIONAL_ID]", "nino-spaced"),
    _case("nino={}", "AB123456C", "[NATIONAL_ID]", "nino-compact"),
    _case("DNI {}", "12345678Z", "[NATIONAL_ID]", "dni"),
    _case("documento {} ok", "12345678-Z", "[NATIONAL_ID]", "dni-dash"),
    _case("NIE {}", "X1234567L", "[NATIONAL_ID]", "nie"),
    _case("NIR {}", "1 84 12 76 451 089 46", "[NATIONAL_ID]", "insee-spaced"),
    _case("numéro {}", "184127645108946", "[NATIONAL_ID]", "insee-compact"),
    _case("burgerservicenummer {}", "1112.22.333", "[NATIONAL_ID]", "bsn-dotted"),
    _case("BSN: {}", "123456782", "[NATIONAL_ID]", "bsn-labelled"),
    _case("passport no. {}", "533401372", "[NATIONAL_ID]", "passport-labelled"),
    # --- IBANs
    _case("pay to {} please", "GB82 WEST 1234 5698 7654 32", "[IBAN]", "iban-gb-spaced"),
    _case("iban={}", "DE89370400440532013000", "[IBAN]", "iban-de-compact"),
    _case("IBAN {} EUR", "FR14 2004 1010 0505 0001 3M02 606", "[IBAN]", "iban-fr-then-word"),
    _case("account {}", "NL91ABNA0417164300", "[IBAN]", "iban-nl"),
    _case("account {}", "ES91 2100 0418 4502 0005 1332", "[IBAN]", "iban-es"),
    # --- IP addresses
    _case("request from {} rejected", "203.0.113.7", "[IP]", "ipv4"),
    _case("peer={}:443", "198.51.100.23", "[IP]", "ipv4-port"),
    _case("client {}, retrying", "2001:db8::1", "[IP]", "ipv6-short"),
    _case("client {}", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[IP]", "ipv6-full"),
    _case("peer [{}]:50051", "2001:db8:0:1::42", "[IP]", "ipv6-bracketed"),
    _case("via {}", "::ffff:192.0.2.1", "[IP]", "ipv6-mapped-v4"),
    _case("link {}", "fe80::1ff:fe23:4567:890a%eth0", "[IP]", "ipv6-zone"),
    # --- addresses
    _case("ship to {} today", "221B Baker Street", "[ADDRESS]", "street-uk"),
    _case("office {}", "1600 Amphitheatre Pkwy", "[ADDRESS]", "street-abbrev"),
    _case("visit {} tomorrow", "10 Downing St.", "[ADDRESS]", "street-dot"),
    _case("lives at {}", "221B Baker Street\nLondon NW1 6XE", "[ADDRESS]", "multiline-uk"),
    _case(
        "addr:\n{}\nUSA",
        "1600 Amphitheatre Parkway\nMountain View, CA 94043",
        "[ADDRESS]",
        "multiline-us",
    ),
    _case("at {}", "123 Main St, Springfield, IL 62704-1234", "[ADDRESS]", "us-zip4"),
    _case("at {}", "742 Evergreen Terrace, Apt 2", "[ADDRESS]", "street-unit"),
    _case("postcode {} on file", "SW1A 2AA", "[ADDRESS]", "uk-postcode"),
    _case("vive en {}", "Calle Mayor 5", "[ADDRESS]", "calle"),
    _case("vive en {}", "Calle Mayor 5, 28013 Madrid", "[ADDRESS]", "calle-postcode"),
    _case("mora na {}", "Rua Augusta 100", "[ADDRESS]", "rua"),
    _case("wohnt {}", "Hauptstraße 12", "[ADDRESS]", "strasse"),
    _case("wohnt {}", "Hauptstraße 12\n10115 Berlin", "[ADDRESS]", "strasse-postcode"),
    _case("wohnt {}", "Berliner Str. 5", "[ADDRESS]", "str-abbrev"),
    _case("woont {}", "Keizersgracht 123, 1015 CJ Amsterdam", "[ADDRESS]", "gracht"),
    _case("habite {}", "10 rue de Rivoli", "[ADDRESS]", "rue"),
    # --- names without a term list
    _case("reviewed by {}", "Dr. Jane Roe", "[NAME]", "honorific"),
    _case("first_name={} ok", "Zoë", "[NAME]", "labelled-name"),
    # --- secrets
    _case(
        "token {} expired",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "[JWT]",
        "jwt",
    ),
    _case("Authorization: Bearer {}", "abcDEF0123456789xyz", "[SECRET]", "authorization"),
    _case("sent Bearer {} upstream", "0a1b2c3d4e5f6a7b8c9d", "[TOKEN]", "bearer"),
    _case("authorization={}", "Basic dXNlcjpwYXNzd29yZA==", "[SECRET]", "authorization-basic"),
    _case("key {} leaked", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", "[TOKEN]", "openai"),
    _case("using {}", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "[TOKEN]", "github"),
    _case("aws key {}", "AKIAIOSFODNN7EXAMPLE", "[TOKEN]", "aws"),
    _case("slack {}", "xoxb-123456789012-abcdefABCDEF", "[TOKEN]", "slack"),
    _case("connect postgres://app:{}@db:5432/jobs", "hunter2", "[SECRET]", "url-password"),
    _case("GET https://x.test/cb?token={}&page=2", "s3cr3tValue", "[SECRET]", "query-token"),
    _case("GET /v1/jobs?limit=5&api_key={}", "abc123def456", "[SECRET]", "query-api-key"),
    _case("callback access_token={} done", "ya29.a0AfH6SMB", "[SECRET]", "access-token"),
    _case("s3 url X-Amz-Signature={}", "5d672d79c15b13162d9279b0855cfba6", "[SECRET]", "sig"),
    _case("signature={}", "abc%2Fdef%3D", "[SECRET]", "signature"),
    _case("login password={} failed", "hunter2!", "[SECRET]", "password-kv"),
    _case('config {{"client_secret": "{}"}}', "Zx9!qq Ww", "[SECRET]", "json-secret"),
    _case("accessToken: {}", "tok_live_9f8e7d", "[SECRET]", "camel-key"),
    _case(
        "key:\n{}\nend",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx9\n-----END RSA PRIVATE KEY-----",
        "[SECRET]",
        "pem",
    ),
]


@pytest.mark.parametrize(("template", "canary", "placeholder"), CANARIES)
def test_canary_is_redacted(template: str, canary: str, placeholder: str) -> None:
    line = template.format(canary)
    out = redact(line)
    assert placeholder in out, out
    assert canary not in out
    assert canary.lower() not in out.lower()
    digits = _digits(canary)
    if len(digits) >= 6:
        assert digits not in _digits(out), out


# Lines that must come out exactly as they went in.
PRECISION = [
    pytest.param("job 6f1c4c6e-0000-4000-8000-000000000001 queued", id="uuid"),
    pytest.param("job 12345678-1234-4234-8234-123456789012 queued", id="uuid-digits"),
    pytest.param("at 2026-11-22T06:07:35.789234Z step done", id="iso-timestamp"),
    pytest.param("2026-11-22 06:07:35,123 INFO worker started", id="stdlib-timestamp"),
    pytest.param("due 2026-11-22, 22/11/2026 or 22.11.2026", id="dates"),
    pytest.param("employed 2017-2021 and 1999 - 2024", id="year-ranges"),
    pytest.param("took 0.03s, then 1500 ms, then 12.5 seconds", id="durations"),
    pytest.param("at 06:07:35 and again at 10:30", id="times"),
    pytest.param("grpcio 2.15.1, node v18.6, tool v2.15.1", id="versions"),
    pytest.param("python 3.11.7 on Kubernetes 1.30", id="versions-names"),
    pytest.param("version 1.2.3.4 and v10.0.19045.1", id="four-part-versions"),
    pytest.param("pip install foo==1.2.3.4", id="pinned-four-part"),
    pytest.param("order ORD-2024-000123 shipped", id="order-id"),
    pytest.param("order 4111111111111112 shipped", id="16-digits-not-luhn"),
    pytest.param("ref 1234567812345670 shipped", id="16-digits-luhn-bad-prefix"),
    pytest.param("card 4111 1111 1111 1112 rejected", id="card-bad-luhn"),
    pytest.param("HTTP/1.1 503 Service Unavailable, status=200", id="http-status"),
    pytest.param("listening on 0.0.0.0:50051 and localhost:8080", id="ports"),
    pytest.param("db at 127.0.0.1:5432, grpc at [::1]:50051", id="loopback"),
    pytest.param("cpu 99.5% memory 100%", id="percentages"),
    pytest.param("attempt=3 retries 5 of 10 count 42", id="small-ints"),
    pytest.param("wrote 104857600 bytes, size=123456789", id="large-ints"),
    pytest.param("epoch 1732255655789 ns 1732255655789234000", id="epochs"),
    pytest.param("event=step_completed next=job_failed", id="snake-case"),
    pytest.param("error STEP_TIMEOUT after INVALID_ARGUMENT", id="error-codes"),
    pytest.param("trace 4bf92f3577b34da6a3ce929d0e0e4736 sha 3f786850e387550fda", id="hex"),
    pytest.param("pod job-api-7d9f8b6c5-x2x4z model claude-3-5-sonnet-20241022", id="k8s"),
    pytest.param("rpc /jobs.v1.JobService/SubmitJob ok", id="grpc-method"),
    pytest.param("GET https://api.example.com/v1/jobs?page=2&limit=50", id="clean-url"),
    pytest.param("usage max_tokens=1024 prompt_tokens: 512 token_count=3", id="token-counts"),
    pytest.param("token_type=bearer scope=read", id="token-type"),
    pytest.param("the bearer instrument and basic authentication", id="bearer-prose"),
    pytest.param("password reset requested; password: None", id="password-prose"),
    pytest.param("processed 3 files on the main road", id="lowercase-street"),
    pytest.param("paid EUR 12.50 and $1,234.56", id="money"),
    pytest.param("ext 555-0100 and +5% and +1 retry", id="short-numbers"),
    pytest.param("ids 000-12-3456 666-12-3456 900-12-3456", id="ssn-invalid-areas"),
    pytest.param("ids 123-00-4567 and 123-45-0000", id="ssn-invalid-group-serial"),
    pytest.param("iban GB82 WEST 1234 5698 7654 33", id="iban-bad-checksum"),
    pytest.param("ref 12345678A", id="dni-bad-letter"),
    pytest.param("ref DQ 12 34 56 C", id="nino-bad-prefix"),
    pytest.param("code 1112.22.334", id="bsn-bad-11-test"),
    pytest.param("numéro 184127645108947", id="insee-bad-key"),
    pytest.param("hosts 999.1.1.1 and 10.0.0.256 and 1.2.3", id="not-ipv4"),
    pytest.param("mac 00:1A:2B:3C:4D:5E and std::vector", id="not-ipv6"),
    pytest.param("user@localhost rejected", id="no-tld"),
    pytest.param("skills Python, PostgreSQL, gRPC at Fabrikam AI", id="prose"),
    pytest.param(" ".join(sorted(PLACEHOLDERS)), id="placeholders"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("line", PRECISION)
def test_near_misses_survive(line: str) -> None:
    assert redact(line) == line


# --------------------------------------------------------------------------- terms

RESUME_DOC: dict[str, Any] = {
    "resume": {
        "name": "Dr. Zoë Ann O'Brien-Smith",
        "headline": "Backend Engineer",
        "email": "zoe.obrien+cv@example.com",
        "phone": "+44 20 7946 0958",
        "location": "Lisbon, Portugal",
        "address": {"street": "221B Baker Street", "city": "Lisbon", "postcode": "1100-148"},
        "linkedin": "https://www.linkedin.com/in/zoe-obrien-smith",
        "skills": ["Python", "PostgreSQL", {"name": "Kubernetes"}],
        "experience": [
            {"title": "Senior Engineer", "company": "Northwind Logistics", "start": "2021"},
        ],
        "education": [{"degree": "BSc", "institution": "University of Porto", "year": 2017}],
        "references": [{"name": "Jane Roe", "email": "jane.roe@uni.example.edu"}],
        "projects": [{"name": "Routing API", "url": "https://github.com/northwind/routing"}],
    },
    "job_posting": {
        "title": "Senior Backend Engineer",
        "company": "Fabrikam AI",
        "location": "Remote, EU",
        "contact": {"name": "Sam Recruiter", "email": "sam@fabrikam.example"},
        "description": "Build gRPC services in Python.",
    },
}


def test_sensitive_terms_collects_the_person() -> None:
    terms = sensitive_terms(RESUME_DOC)
    expected = {
        "Dr. Zoë Ann O'Brien-Smith",
        "Zoë Ann O'Brien-Smith",
        "Zoë",
        "Ann",
        "O'Brien-Smith",
        "Brien",
        "Smith",
        "zoe.obrien+cv@example.com",
        "zoe.obrien",
        "+44 20 7946 0958",
        "Lisbon, Portugal",
        "221B Baker Street",
        "Lisbon",
        "1100-148",
        "https://www.linkedin.com/in/zoe-obrien-smith",
        "linkedin.com/in/zoe-obrien-smith",
        "Jane Roe",
        "Jane",
        "Roe",
        "jane.roe@uni.example.edu",
        "jane.roe",
        "Sam Recruiter",
        "Sam",
        "Recruiter",
        "sam@fabrikam.example",
    }
    assert terms == expected


@pytest.mark.parametrize(
    "absent",
    [
        "Dr",
        "O",
        "Python",
        "Kubernetes",
        "Routing API",
        "Northwind Logistics",
        "University of Porto",
        "Fabrikam AI",
        "Remote, EU",
        "Backend Engineer",
        "https://github.com/northwind/routing",
        "2017",
    ],
)
def test_sensitive_terms_leaves_work_and_posting_alone(absent: str) -> None:
    assert absent not in sensitive_terms(RESUME_DOC)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param({}, set(), id="empty"),
        pytest.param({"resume": {"name": "Li"}}, set(), id="too-short"),
        pytest.param(
            {"candidate": {"firstName": "José", "lastName": "van der Berg"}},
            {"José", "van der Berg", "Berg"},
            id="camel-case-and-particles",
        ),
        pytest.param(
            {"basics": {"name": "Ada Example", "location": {"postalCode": "94043", "city": "X"}}},
            {"Ada Example", "Ada", "Example", "94043"},
            id="json-resume",
        ),
        pytest.param(
            {"applicant": {"phone": 442079460958, "date_of_birth": "1990-04-12"}},
            {"442079460958", "1990-04-12"},
            id="number-and-dob",
        ),
        pytest.param(
            {"skills": [{"name": "Go"}, {"name": "Rust"}], "team": {"name": "Platform"}},
            set(),
            id="names-of-things",
        ),
    ],
)
def test_sensitive_terms_shapes(doc: dict[str, Any], expected: set[str]) -> None:
    assert sensitive_terms(doc) == expected


TERMS = sensitive_terms(RESUME_DOC)


@pytest.mark.parametrize(
    ("line", "gone", "placeholder"),
    [
        pytest.param("candidate Zoë uploaded a CV", "Zoë", "[NAME]", id="nfc"),
        pytest.param("candidate Zoe\u0308 uploaded", "Zoe\u0308", "[NAME]", id="nfd"),
        pytest.param("candidate ZOË uploaded", "ZOË", "[NAME]", id="upper"),
        pytest.param("candidate zoe uploaded", "zoe", "[NAME]", id="unaccented"),
        pytest.param("by O\u2019Brien-Smith", "Brien", "[NAME]", id="typographic-apostrophe"),
        pytest.param("by obrien smith", "obrien", "[NAME]", id="flattened"),
        pytest.param("by Ms Smith", "Smith", "[NAME]", id="surname-part"),
        pytest.param("cc jane roe", "roe", "[NAME]", id="reference-lower"),
        pytest.param("dialled 442079460958", "442079460958", "[PHONE]", id="phone-digits"),
        pytest.param("dialled 2079460958", "2079460958", "[PHONE]", id="phone-national-bare"),
        pytest.param("dialled 44-20-7946-0958", "7946", "[PHONE]", id="phone-odd-grouping"),
        pytest.param("based in lisbon, portugal now", "portugal", "[ADDRESS]", id="location"),
        pytest.param("profile linkedin.com/in/zoe-obrien-smith", "obrien", "[NAME]", id="url"),
        pytest.param("user zoe.obrien not found", "zoe.obrien", "[NAME]", id="email-local"),
        pytest.param("postcode 1100-148 invalid", "1100-148", "[ADDRESS]", id="postcode"),
    ],
)
def test_terms_are_redacted_in_any_spelling(line: str, gone: str, placeholder: str) -> None:
    out = redact(line, TERMS)
    assert placeholder in out, out
    assert gone.lower() not in out.lower(), out


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("Annual report: annotated by Smithsonian staff", id="word-prefixes"),
        pytest.param("zoetrope and Brienne", id="longer-words"),
        pytest.param("event=step_completed job at Fabrikam AI in Python", id="work-words"),
        pytest.param("kept [NAME] and [ADDRESS]", id="placeholders"),
    ],
)
def test_terms_match_whole_words_only(line: str) -> None:
    assert redact(line, TERMS) == line


def test_terms_accept_any_iterable_and_skip_blanks() -> None:
    assert redact("Zoë met Ann", ["Zoë", "", " ", "x"]) == "[NAME] met Ann"
    assert redact("Zoë met Ann", iter(["ann"])) == "Zoë met [NAME]"


def test_terms_never_touch_placeholders() -> None:
    # Someone called "Card Name" must not turn "[CARD]" into "[[NAME]]".
    terms = frozenset({"Card", "Name", "Token", "Email"})
    line = "[CARD] [NAME] [TOKEN] [EMAIL] paid 4111 1111 1111 1111 by Card Name"
    assert redact(line, terms) == "[CARD] [NAME] [TOKEN] [EMAIL] paid [CARD] by [NAME] [NAME]"


def test_terms_in_text_whose_lower_case_is_longer() -> None:
    # "İ".lower() is two characters, so matching falls back to a case-insensitive pattern.
    assert redact("İstanbul: ZOË left", ["Zoë"]) == "İstanbul: [NAME] left"


# --------------------------------------------------------------------------- stability


def _all_lines() -> list[str]:
    lines = [str(c.values[0]).format(c.values[1]) for c in CANARIES]
    lines += [str(p.values[0]) for p in PRECISION]
    lines.append(
        "Zoë O'Brien-Smith <zoe.obrien+cv@example.com>, +44 20 7946 0958, "
        "221B Baker Street\nLondon NW1 6XE; card 4111 1111 1111 1111; from 203.0.113.7"
    )
    return lines


@pytest.mark.parametrize("line", _all_lines())
def test_redaction_is_idempotent(line: str) -> None:
    once = redact(line, TERMS)
    assert redact(once, TERMS) == once
    assert redact(redact(line)) == redact(line)


def test_whole_profile_in_one_line() -> None:
    line = (
        "tailor_cv failed for Zoë Ann O'Brien-Smith (zoe.obrien+cv@example.com, "
        "tel +44 20 7946 0958) at 221B Baker Street, job 6f1c4c6e-0000-4000-8000-000000000001 "
        "after 0.03s: STEP_TIMEOUT"
    )
    out = redact(line, TERMS)
    assert out == (
        "tailor_cv failed for [NAME] ([EMAIL], tel [PHONE]) at [ADDRESS], "
        "job 6f1c4c6e-0000-4000-8000-000000000001 after 0.03s: STEP_TIMEOUT"
    )
    folded = unicodedata.normalize("NFD", out).lower()
    for term in TERMS:
        assert unicodedata.normalize("NFD", term).lower() not in folded
