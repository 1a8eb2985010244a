"""The JSON Schemas of a résumé and a job posting, shared by the résumé job types."""

from __future__ import annotations

from typing import Any

from jobkit.catalog import obj, text, texts

_TEXT = 20_000
_LINE = 2_000

RESUME_SCHEMA: dict[str, Any] = obj(
    {
        "name": text(200, required=True, description="The candidate's full name."),
        "headline": text(_LINE),
        "email": text(320),
        "phone": text(64),
        "location": text(_LINE),
        "summary": text(_TEXT),
        "skills": texts(500),
        "experience": {
            "type": "array",
            "maxItems": 100,
            "description": "Roles, most recent first.",
            "items": obj(
                {
                    "title": text(_LINE, required=True),
                    "company": text(_LINE, required=True),
                    "start": text(64),
                    "end": text(64),
                    "bullets": texts(100),
                },
                required=("title", "company"),
            ),
        },
        "education": {
            "type": "array",
            "maxItems": 50,
            "items": obj(
                {
                    "degree": text(_LINE, required=True),
                    "institution": text(_LINE, required=True),
                    # "2019" or 2019; the length applies to the string form only.
                    "year": {"type": ["string", "number"], "maxLength": 16},
                },
                required=("degree", "institution"),
            ),
        },
    },
    required=("name",),
    description="A résumé: the candidate's details, skills, experience and education.",
)

POSTING_SCHEMA: dict[str, Any] = obj(
    {
        "title": text(_LINE, required=True),
        "company": text(_LINE, required=True),
        "description": text(100_000, required=True),
        "requirements": texts(200),
        "nice_to_have": texts(200),
    },
    required=("title", "company", "description"),
    description="A job posting: its title, company, description and listed requirements.",
)
