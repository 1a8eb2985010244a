"""The input schemas of a résumé and a job posting, shared by the résumé job types."""

from __future__ import annotations

from collections.abc import Mapping

from jobkit.catalog import Field

_TEXT = 20_000
_LINE = 2_000

RESUME_SCHEMA: Mapping[str, Field] = {
    "name": Field(str, required=True, max_length=200),
    "headline": Field(str, max_length=_LINE),
    "email": Field(str, max_length=320),
    "phone": Field(str, max_length=64),
    "location": Field(str, max_length=_LINE),
    "summary": Field(str, max_length=_TEXT),
    "skills": Field(list, items=str, max_length=500),
    "experience": Field(
        list,
        max_length=100,
        items={
            "title": Field(str, required=True, max_length=_LINE),
            "company": Field(str, required=True, max_length=_LINE),
            "start": Field(str, max_length=64),
            "end": Field(str, max_length=64),
            "bullets": Field(list, items=str, max_length=100),
        },
    ),
    "education": Field(
        list,
        max_length=50,
        items={
            "degree": Field(str, required=True, max_length=_LINE),
            "institution": Field(str, required=True, max_length=_LINE),
            "year": Field((str, float, int), max_length=16),
        },
    ),
}

POSTING_SCHEMA: Mapping[str, Field] = {
    "title": Field(str, required=True, max_length=_LINE),
    "company": Field(str, required=True, max_length=_LINE),
    "description": Field(str, required=True, max_length=100_000),
    "requirements": Field(list, items=str, max_length=200),
    "nice_to_have": Field(list, items=str, max_length=200),
}
