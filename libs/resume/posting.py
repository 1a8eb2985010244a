"""Reading a job posting: the skills it asks for, its keywords and its seniority."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from resume.profile import clean, clean_list
from resume.vocabulary import canonical_skill, find_skills, iter_skill_mentions

#: The levels a posting can be pitched at; "unspecified" when it gives no cue.
Seniority = Literal["junior", "mid", "senior", "lead", "unspecified"]

_SENIORITIES: dict[str, Seniority] = {level: level for level in get_args(Seniority)}
MAX_KEYWORDS = 15

_NICE_CUE = re.compile(
    r"\b(?:nice[\s-]to[\s-]haves?|good[\s-]to[\s-]have|bonus|preferred|a plus|desirable|desired"
    r"|ideally|advantageous|not required|not essential|would be great)\b",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u25cf+]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")

# Titles are trusted more than descriptions, so they get the wider set of cues; in a
# description "lead" is mostly a verb ("you will lead the design of ...").
_TITLE_CUES: tuple[tuple[Seniority, re.Pattern[str]], ...] = (
    (
        "lead",
        re.compile(r"\b(?:lead|principal|staff|head of|director|vp|engineering manager)\b", re.I),
    ),
    ("senior", re.compile(r"\b(?:senior|sr|architect|iii|iv)\b", re.I)),
    ("junior", re.compile(r"\b(?:junior|jr|entry[\s-]level|graduate|intern(?:ship)?)\b", re.I)),
    ("mid", re.compile(r"\b(?:mid[\s-]?level|intermediate|ii)\b", re.I)),
)
_DESCRIPTION_CUES: tuple[tuple[Seniority, re.Pattern[str]], ...] = (
    ("lead", re.compile(r"\b(?:tech lead|team lead|staff engineer|principal engineer)\b", re.I)),
    ("senior", re.compile(r"\bsenior\b", re.I)),
    ("mid", re.compile(r"\bmid[\s-]?level\b", re.I)),
    ("junior", re.compile(r"\b(?:junior|entry[\s-]level|graduate)\b", re.I)),
)
# "5+ years of", "3-5 years' experience"; not "over the past 20 years, we have grown".
_YEARS = re.compile(
    r"\b(\d{1,2})\s*\+?\s*(?:(?:-|to|\u2013)\s*\d{1,2}\s*\+?\s*)?"
    r"years?'?\s+(?:of|in|with|experience|professional)\b",
    re.I,
)

# English function words, then job-ad boilerplate that says nothing about this job.
_STOPWORD_TEXT = """
a about above across after again all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each either etc
every few for from further had has have having he her here hers him his how i if in into
is it its itself just me more most my no nor not now of off on once only or other our ours
out over own per same she should so some such than that the their them then there these
they this those through to too under until up upon us very via was we were what when where
which while who whom why will with within would yet you your yours
ability able apply bonus build building candidate company day days deep degree environment
etc excellent experience experienced familiar familiarity get good great help ideal ideally
including join just knowledge like looking love make must new nice opportunity part people
plus preferred proven related relevant required requirement requirements responsibilities
role skill skills solid strong team teams understanding use using want well work working
world year years
backed build builds built create creates deliver delivers drive drives ensure ensures expose
keep keeps lead leads make makes operate operates own owns run runs ship ships"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[a-z][a-z0-9']*(?:-[a-z0-9']+)*")


@dataclass(frozen=True, slots=True)
class PostingAnalysis:
    """What a posting asks for. Skill lists are canonical vocabulary names, most important
    first; ``keywords`` are the description's salient terms that are not skills."""

    title: str
    company: str
    seniority: Seniority = "unspecified"
    required_skills: tuple[str, ...] = ()
    nice_to_have_skills: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A Struct-safe dict; :meth:`from_dict` reads it back."""
        return {
            "title": self.title,
            "company": self.company,
            "seniority": self.seniority,
            "required_skills": list(self.required_skills),
            "nice_to_have_skills": list(self.nice_to_have_skills),
            "keywords": list(self.keywords),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PostingAnalysis:
        """Read back a :meth:`to_dict` result (an unknown seniority reads as unspecified)."""
        return cls(
            title=clean(data.get("title")),
            company=clean(data.get("company")),
            seniority=_SENIORITIES.get(str(data.get("seniority")), "unspecified"),
            required_skills=clean_list(data.get("required_skills")),
            nice_to_have_skills=clean_list(data.get("nice_to_have_skills")),
            keywords=clean_list(data.get("keywords")),
        )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _listed_skills(items: Iterable[str]) -> list[str]:
    # A list item may be a bare skill the vocabulary spells differently ("Postgres 14+")
    # or a sentence naming several ("Python or Go, and SQL").
    found: list[str] = []
    for item in items:
        skills = find_skills(item)
        if not skills and (known := canonical_skill(item)):
            skills = [known]  # e.g. "go": lowercase, so only an exact list item means Go
        found.extend(skills)
    return _unique(found)


def _is_heading(line: str) -> bool:
    if _BULLET.match(line) or len(line) > 60:
        return False
    bare = line.strip("#*_ \t")
    if line.lstrip().startswith("#") or bare.endswith(":"):
        return True
    # "Bonus points" on a line of its own; "Go is a plus." is a sentence, not a heading.
    return (
        bool(_NICE_CUE.search(bare))
        and not bare.endswith((".", "!", "?"))
        and not find_skills(bare)
    )


def _sentences(description: str) -> Iterator[tuple[str, bool]]:
    """Each sentence of the description, and whether it is about nice-to-haves: it says so
    itself, or sits under a heading that does ("Bonus points:", "Preferred qualifications")."""
    in_nice_section = False
    for line in description.splitlines():
        if not line.strip():
            continue
        if _is_heading(line):
            in_nice_section = bool(_NICE_CUE.search(line))
        for sentence in _SENTENCE_END.split(line):
            yield sentence, in_nice_section or bool(_NICE_CUE.search(sentence))


def _seniority(title: str, description: str) -> Seniority:
    for level, cue in _TITLE_CUES:
        if cue.search(title):
            return level
    years = [int(found.group(1)) for found in _YEARS.finditer(description)]
    if years:
        most = max(years)
        return "senior" if most >= 5 else "mid" if most >= 2 else "junior"
    for level, cue in _DESCRIPTION_CUES:
        if cue.search(description):
            return level
    return "unspecified"


def _keywords(description: str, exclude: Iterable[str]) -> list[str]:
    """The most frequent non-stopword terms and repeated bigrams of the description that
    are not skills (nor words of the company name)."""
    excluded = {word.casefold() for word in exclude}
    pieces: list[str] = []
    last = 0
    for mention in iter_skill_mentions(description):
        # A skill mention breaks runs of words, so it cannot glue a bigram together.
        pieces.append(description[last : mention.start])
        last = mention.end
    pieces.append(description[last:])
    first_seen: dict[str, int] = {}
    counts: dict[str, int] = {}

    def add(term: str) -> None:
        first_seen.setdefault(term, len(first_seen))
        counts[term] = counts.get(term, 0) + 1

    for piece in pieces:
        for run in re.split(r"[^\w\s'-]|\n|\s-\s", piece.casefold()):
            previous = ""
            for found in _WORD.findall(run):
                word = found.removesuffix("'s").strip("'-")
                if (
                    len(word) < 3
                    or "'" in word  # contractions: "you'll", "we're"
                    or word in _STOPWORDS
                    or word in excluded
                    or canonical_skill(word)  # "rest", "lean": lowercase, so not the skill
                ):
                    previous = ""
                    continue
                add(word)
                if previous:
                    add(f"{previous} {word}")
                previous = word

    def score(term: str) -> int:
        # A bigram only counts when repeated, and then outweighs its single words.
        return counts[term] * 2 if " " in term else counts[term]

    candidates = [term for term in counts if " " not in term or counts[term] > 1]
    ranked = sorted(candidates, key=lambda t: (-score(t), first_seen[t]))
    chosen: list[str] = []
    for term in ranked:
        # A word that only ever appears inside a chosen bigram adds nothing.
        if " " not in term and any(
            term in bigram.split() and counts[bigram] == counts[term] for bigram in chosen
        ):
            continue
        chosen.append(term)
        if len(chosen) == MAX_KEYWORDS:
            break
    return chosen


def analyze_posting(posting: Mapping[str, Any]) -> PostingAnalysis:
    """Analyse a job posting document.

    Required skills: those in ``requirements`` first (in order), then those the description
    mentions outside nice-to-have sentences, most frequent first. The structured lists win
    over the free text: a skill in ``nice_to_have`` stays nice-to-have wherever else the
    description mentions it, unless ``requirements`` names it too.
    """
    title = clean(posting.get("title"))
    company = clean(posting.get("company"))
    description = str(posting.get("description") or "")
    listed_required = _listed_skills(clean_list(posting.get("requirements")))
    listed_nice = _listed_skills(clean_list(posting.get("nice_to_have")))

    counts: dict[str, int] = {}
    nice_mentions: list[str] = []
    for sentence, is_nice in _sentences(description):
        for skill in (m.skill for m in iter_skill_mentions(sentence)):
            if is_nice:
                nice_mentions.append(skill)
            else:
                counts[skill] = counts.get(skill, 0) + 1
    by_frequency = sorted(counts, key=lambda skill: -counts[skill])  # stable: ties keep order
    required = _unique([*listed_required, *(s for s in by_frequency if s not in listed_nice)])
    nice = [s for s in _unique([*listed_nice, *nice_mentions]) if s not in required]
    return PostingAnalysis(
        title=title,
        company=company,
        seniority=_seniority(title, description),
        required_skills=tuple(required),
        nice_to_have_skills=tuple(nice),
        keywords=tuple(_keywords(description, company.split())),
    )
