"""Credentials: PEM keys, ``Authorization`` values, JWTs, bearer tokens, URL passwords,
secret-named keys and query parameters, and API keys of known vendor shapes.

They run before every other rule: a token may hold digits, dots or an ``@`` that a later
rule would split.
"""

from __future__ import annotations

import re

from jobkit.redaction.core import JWT, SECRET, TOKEN, Rule, has, has_lower, keep_quotes

_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|\Z)", re.S
)

_AUTH_HEADER = re.compile(
    r"(?P<key>(?<![\w-])(?i:(?:proxy-)?authorization))"
    r"(?P<sep>[\"']?[ \t]*[:=][ \t]*[\"']?)"
    # Atomic, so an already-redacted "Bearer [SECRET]" is not re-read as the value "Bearer".
    r"(?>(?P<scheme>(?i:(?:bearer|basic|digest|token|negotiate|ntlm|apikey|aws4-hmac-sha256)"
    r"[ \t]+))?)"
    r"(?!\[)[^\s\"',;]+"
)

# header.payload[.signature], all base64url; a JWE has two more segments.
_JWT = re.compile(r"e(?<![\w-]e)yJ[\w-]{2,}\.[\w-]{2,}(?:\.[\w-]*){0,3}")

# RFC 6750 token68: base64url-ish characters, "=" only as trailing padding (so
# "bearer scope=read" is not a token).
_BEARER = re.compile(
    r"(?P<scheme>(?<![\w-])(?i:bearer|basic))[ \t]+(?P<tok>[\w.~+/-]{8,}=*)(?![\w.~+/=-])"
)


def _bearer_sub(m: re.Match[str]) -> str:
    tok = m["tok"]
    # "the bearer instrument" is prose; credentials have a digit or a symbol, or are long.
    if len(tok) < 20 and tok.isalpha():
        return m[0]
    return f"{m['scheme']} {TOKEN}"


_URL_USERINFO = re.compile(r"(?i)(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^\s/:@?#\[]*:[^\s/@?#]+@")

# A key ending in a secret word, then ":" or "=", then the value. Only the value goes, so
# prefixes (client_secret, X-Amz-Signature, aws_secret_access_key) need not be matched;
# max_tokens and token_type survive because the secret word must end the key.
_ASSIGNMENT = re.compile(
    r"(?P<key>(?<![A-Za-z0-9])(?i:password|passwd|passphrase|pwd|secret|token|api[_-]?key"
    r"|access[_-]?key|private[_-]?key|signature|sig|credentials?|session[_-]?id|sessid"
    r"|cookie|otp)"
    r"|(?<=[a-z0-9])(?:Password|Passwd|Passphrase|Pwd|Secret|Token|ApiKey|AccessKey"
    r"|PrivateKey|Signature|Credentials?|SessionId|Cookie|Otp))"
    r"(?P<sep>[\"']?[ \t]*[:=][ \t]*)"
    r"(?!(?i:none|null|nil|true|false|undefined|redacted)\b|\*|\[)"
    r"(?P<val>\"[^\"\n]+\"|'[^'\n]+'|[^\s\"'&,;#<>)\]}]+)"
)

# Parameters that are secret only in a query string (``code=`` elsewhere is an error code).
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&](?i:code|key|auth|sid|ticket))(?P<sep>=)(?!\[)(?P<val>[^\s&#\"'<>]+)"
)

_API_KEY = re.compile(
    # Led by the "-" or "_" after the vendor prefix (rarer than any letter), which stays
    # in the output: "sk-[TOKEN]" still says what leaked.
    r"[-_A](?:"
    r"(?<=(?<![\w-])sk-)(?:proj-|ant-)?[\w-]{20,}"
    r"|(?<=(?<![\w-])[spr]k_)(?:live|test)_[A-Za-z0-9]{16,}"
    r"|(?<=(?<![\w-])gh[pousr]_)[A-Za-z0-9]{30,}"
    r"|(?<=(?<![\w-])github_)pat_\w{30,}"
    r"|(?<=(?<![\w-])glpat-)[\w-]{20,}"
    r"|(?<=(?<![\w-])xox[abposr]-)[A-Za-z0-9-]{10,}"
    r"|(?<=(?<![\w-])npm_)[A-Za-z0-9]{36}"
    r"|(?<=(?<![\w-])hf_)[A-Za-z0-9]{30,}"
    # AWS access key ids and Google API keys carry no separator.
    r"|(?<=(?<![\w-])A)(?:(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}|Iza[\w-]{35})"
    r")(?![\w-])"
)


def _api_key_sub(m: re.Match[str]) -> str:
    lead = m[0][0]
    return lead + TOKEN if lead in "-_" else TOKEN


RULES: tuple[Rule, ...] = (
    Rule(_PRIVATE_KEY, SECRET, has("-----BEGIN")),
    Rule(_AUTH_HEADER, lambda m: f"{m['key']}{m['sep']}{m['scheme'] or ''}{SECRET}",
         has_lower("authorization")),
    Rule(_JWT, JWT, has("eyJ")),
    Rule(_BEARER, _bearer_sub, has_lower("bearer", "basic")),
    Rule(_URL_USERINFO, lambda m: f"{m['scheme']}{SECRET}@",
         lambda text, _low: "@" in text and "://" in text),
    Rule(_ASSIGNMENT, lambda m: keep_quotes(m, SECRET),
         has_lower("pass", "pwd", "secret", "token", "key", "sig", "credential", "sess",
                   "cookie", "otp")),
    Rule(_QUERY_SECRET, lambda m: keep_quotes(m, SECRET), has("?", "&")),
    Rule(_API_KEY, _api_key_sub,
         has("sk-", "k_live_", "k_test_", "gh", "github_pat_", "glpat-", "xox", "npm_",
             "hf_", "AKIA", "ASIA", "ABIA", "ACCA", "AIza")),
)  # fmt: skip
"""The secret rules, in the order they run."""
