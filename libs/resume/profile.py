"""The candidate's profile: a normalised, immutable view of the résumé input."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from resume.vocabulary import canonical_skill


def clean(value: object) -> str:
    """``value`` as text with runs of whitespace collapsed; ``""`` for ``None``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        # Struct round-trips turn every number into a float: 2019 must not become "2019.0".
        value = int(value)
    return " ".join(str(value).split())


def clean_list(values: object) -> tuple[str, ...]:
    """The non-empty cleaned strings of a list (anything else counts as empty)."""
    if not isinstance(values, list | tuple):
        return ()
    return tuple(text for text in (clean(v) for v in values) if text)


@dataclass(frozen=True, slots=True)
class Role:
    """One position held; ``bullets`` are the achievements as written (or as tailored)."""

    title: str
    company: str
    start: str = ""
    end: str = ""
    bullets: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A Struct-safe dict in the résumé's ``experience`` item shape."""
        return {
            "title": self.title,
            "company": self.company,
            "start": self.start,
            "end": self.end,
            "bullets": list(self.bullets),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Role:
        """Read a role from a résumé ``experience`` item or a :meth:`to_dict` result."""
        return cls(
            title=clean(data.get("title")),
            company=clean(data.get("company")),
            start=clean(data.get("start")),
            end=clean(data.get("end")),
            bullets=clean_list(data.get("bullets")),
        )


@dataclass(frozen=True, slots=True)
class Education:
    """One degree; ``year`` is text because résumés say "2019" as often as 2019."""

    degree: str
    institution: str
    year: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A Struct-safe dict in the résumé's ``education`` item shape."""
        return {"degree": self.degree, "institution": self.institution, "year": self.year}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Education:
        """Read a degree from a résumé ``education`` item or a :meth:`to_dict` result."""
        return cls(
            degree=clean(data.get("degree")),
            institution=clean(data.get("institution")),
            year=clean(data.get("year")),
        )


def roles_from(values: object) -> tuple[Role, ...]:
    """The roles of a list of dicts, in order."""
    items = values if isinstance(values, list | tuple) else ()
    return tuple(Role.from_dict(v) for v in items if isinstance(v, Mapping))


def education_from(values: object) -> tuple[Education, ...]:
    """The degrees of a list of dicts, in order."""
    items = values if isinstance(values, list | tuple) else ()
    return tuple(Education.from_dict(v) for v in items if isinstance(v, Mapping))


@dataclass(frozen=True, slots=True)
class Profile:
    """A candidate as the résumé describes them. Optional text fields are ``""`` when absent.

    ``experience`` keeps the résumé's order, which by convention is most recent first.
    """

    name: str
    headline: str = ""
    email: str = ""
    phone: str = ""
    location: str = ""
    summary: str = ""
    skills: tuple[str, ...] = ()
    experience: tuple[Role, ...] = ()
    education: tuple[Education, ...] = ()

    def texts(self) -> Iterator[str]:
        """The free-text fields where skills and experience show: headline, summary, role
        titles and bullets."""
        yield from (self.headline, self.summary)
        for role in self.experience:
            yield role.title
            yield from role.bullets

    def to_dict(self) -> dict[str, Any]:
        """A Struct-safe dict in the résumé input's shape (``load_profile`` reads it back)."""
        return {
            "name": self.name,
            "headline": self.headline,
            "email": self.email,
            "phone": self.phone,
            "location": self.location,
            "summary": self.summary,
            "skills": list(self.skills),
            "experience": [role.to_dict() for role in self.experience],
            "education": [degree.to_dict() for degree in self.education],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Same as :func:`load_profile`: normalising is idempotent."""
        return load_profile(data)


def unique_skills(skills: Iterable[str]) -> tuple[str, ...]:
    """Skills canonicalised where the vocabulary knows them, without case-insensitive
    duplicates; the first spelling of an unknown skill wins."""
    seen: set[str] = set()
    kept: list[str] = []
    for raw in skills:
        text = clean(raw)
        skill = canonical_skill(text) or text
        if skill and skill.casefold() not in seen:
            seen.add(skill.casefold())
            kept.append(skill)
    return tuple(kept)


def load_profile(resume: Mapping[str, Any]) -> Profile:
    """Normalise a résumé document into a :class:`Profile`.

    Raises ``ValueError`` (with a message free of personal data) if it has no name.
    """
    name = clean(resume.get("name"))
    if not name:
        raise ValueError("the résumé has no name")
    return Profile(
        name=name,
        headline=clean(resume.get("headline")),
        email=clean(resume.get("email")),
        phone=clean(resume.get("phone")),
        location=clean(resume.get("location")),
        summary=clean(resume.get("summary")),
        skills=unique_skills(clean_list(resume.get("skills"))),
        experience=roles_from(resume.get("experience")),
        education=education_from(resume.get("education")),
    )
