"""Splitting a research query into the sub-questions a report answers one by one.

:func:`plan_questions` is the ``local`` provider's planner: pure, deterministic, no model.
It reads the query's shape first and its kind second:

- a **comparison** ("PostgreSQL vs MySQL for a small SaaS", "Should I rent or buy a home
  in Berlin?", "the difference between TCP and UDP") asks about each option, then how
  they differ and which to choose, then compares them on cost, risks, examples and
  timeline (for actions: cost, risks, timeline and when one beats the other);
- **several questions** in one ("How do I get a visa for Canada and what does it cost to
  live in Toronto?") are taken one by one;
- a **list** under one frame ("What are the health benefits and risks of intermittent
  fasting?", "Impact of remote work on productivity, wages and housing markets") becomes
  one question per item, each with the frame's shared words;
- then **facets** by the query's kind fill the plan up to the number asked for: a how-to
  (steps, cost, timeline, mistakes, examples), a decision ("Is solar power worth it...",
  "Should I ...": gains, cost, risks, payback, alternatives), a yes-or-no question ("Do I
  need a visa for Japan?": the question, what sources say, what changes the answer), or a
  topic (what it is, background, facts, risks, examples, outlook). A wh-question keeps
  its own words as the first sub-question. A facet the split already covers (a
  "risks" item) is not asked twice.

With a model, the model proposes the sub-questions; :func:`parse_questions` reads its
answer (numbered or bulleted lines, stray prose, duplicates) and the plan is topped up
from the local planner when the model gave too few.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["comparison", "how_to", "decision", "yes_no", "topic"]

#: How many sub-questions each research depth asks (the input's ``depth``, 1-3).
QUESTIONS_BY_DEPTH: Final = {1: 3, 2: 5, 3: 7}
DEFAULT_DEPTH: Final = 2


def _word_set(text: str) -> frozenset[str]:
    """The words of ``text``: the word lists below read as the prose they come from."""
    return frozenset(text.split())


#: Prepositions that start a shared tail ("... of intermittent fasting") or a context
#: ("... for a small SaaS startup").
_PREPOSITIONS: Final = _word_set(
    "of on for in to with about at from between among across during under within into around near"
)
#: Prepositions that start the context of a comparison's last option ("MySQL for a small
#: SaaS startup"); "to" and "of" are left out, as options hold them ("move to Lisbon").
_CONTEXT_WORDS: Final = _word_set("for in on at with when during within under if as near")
_DETERMINERS: Final = _word_set("a an the my our your their this that")
_QUESTION_WORDS: Final = _word_set(
    "what which who whom whose how why when where is are was were can could should would "
    "will do does did"
)
#: Words naming an aspect of a topic: "impact of remote work" is about remote work.
_ASPECTS: Final = _word_set(
    "impact impacts effect effects role history cost costs price prices benefits "
    "advantages disadvantages risks dangers future state pros cons influence consequences "
    "outlook causes origins origin basics meaning importance"
)
#: Facet -> words that show a sub-question already covers it.
_FACET_WORDS: Final = {
    "cost": ("cost", "price", "pay", "afford", "budget", "expens", "cheap"),
    "risks": ("risk", "danger", "downside", "disadvantage", "drawback", " cons", "mistake"),
    "timeline": ("how long", "timeline", "time it takes", "pay off", "outlook"),
    "examples": ("example", "case stud"),
    "benefits": ("benefit", "gain", "advantage", "pros", "strength"),
    "background": ("history", "background", "origin"),
    "steps": ("steps", "how to", "how do i"),
}

_OPENERS = re.compile(
    r"^(?:(?:please|can you|could you|would you|i(?:'d| would) like (?:you )?to|i want to|"
    r"help me)\s+)*(?:(?:research|investigate|look into|find out|know|tell me|explain to me|"
    r"explain|describe|summari[sz]e|analy[sz]e|compare|give me an overview of|overview of)"
    r"\s+(?!and\b|or\b))?(?:(?:about|on)\s+)?",
    re.IGNORECASE,
)
#: The interrogative frame of a question: "What are the", "How does", "What is the".
_LEAD = re.compile(
    r"^(?:(?:what|which|who|how|why|when|where)(?:\s+(?:much|many|long|often|exactly))?"
    r"\s+(?:is|are|was|were|do|does|did|can|could|should|will|would)(?:\s+the|\s+a|\s+an)?"
    r"\s+)",
    re.IGNORECASE,
)
_LEAD_BARE = re.compile(
    r"^(?:(?:what|which|who|how|why|when|where)(?:\s+(?:much|many|long|often|exactly))?"
    r"\s+(?:is|are|was|were|do|does|did|can|could|should|will|would)\s+)",
    re.IGNORECASE,
)
_AUXILIARIES: Final = _word_set(
    "do does did can could should will would must is are was were may might shall"
)
_PRONOUNS: Final = _word_set("i we you they it he she")
_HOW_TO = re.compile(
    r"^how\s+(?:to|do\s+(?:i|we|you)|can\s+(?:i|we|you|one)|should\s+(?:i|we)|"
    r"would\s+(?:i|we)|does\s+one)\s+(?P<goal>.+)$|^(?:steps|guide)\s+(?:to|for)\s+"
    r"(?P<goal2>.+)$",
    re.IGNORECASE,
)
_SHOULD = re.compile(
    r"^(?:should|shall)\s+(?P<who>i|we)\s+(?P<rest>.+)$|"
    r"^is\s+it\s+(?:better|worth\s+it|wise|a\s+good\s+idea|smart|sensible)\s+to\s+"
    r"(?P<rest2>.+)$",
    re.IGNORECASE,
)
_WORTH = re.compile(
    r"^(?:is|are)\s+(?P<subject>.+?)\s+(?:really\s+)?(?:worth\s+it|worth\s+the\s+"
    r"(?:money|cost|investment|effort)|a\s+good\s+(?:idea|investment|choice)|worthwhile)"
    r"(?P<tail>\s.*)?$",
    re.IGNORECASE,
)
_VERSUS = re.compile(r"\s+(?:vs\.?|versus|compared\s+(?:to|with))\s+", re.IGNORECASE)
_BETWEEN = re.compile(r"\bdifferences?\s+between\s+(?P<a>.+?)\s+and\s+(?P<b>.+)$", re.IGNORECASE)
_COMPARATIVE = r"(?:better|best|cheaper|safer|faster|easier|nicer|right|preferable)"
#: "Which is better for a beginner: Python or JavaScript" (the context before a colon).
_CHOICE_COLON = re.compile(
    r"^(?:which|what)(?:'s|\s+is|\s+are)?\s+(?:\w+\s+)?" + _COMPARATIVE
    + r"(?P<context>[^:]*):\s*(?P<options>.+\s+or\s+.+)$",
    re.IGNORECASE,
)  # fmt: skip
#: "Which is better, Python or JavaScript for a beginner" (the context after the options).
_CHOICE = re.compile(
    r"^(?:which|what)(?:'s|\s+is|\s+are)?\s+(?:\w+\s+)?" + _COMPARATIVE
    + r",?\s+(?P<options>[^:]+\s+or\s+.+)$",
    re.IGNORECASE,
)  # fmt: skip
#: "Is Lisbon or Porto better for remote work".
_IS_OR = re.compile(
    r"^(?:is|are|would)\s+(?P<options>.+?\s+or\s+.+?)\s+" + _COMPARATIVE
    + r"\b(?P<context>.*)$",
    re.IGNORECASE,
)  # fmt: skip
_SEVERAL = re.compile(
    r"\?\s+|;\s+|,?\s+(?:and|but|also)\s+(?=(?:what|which|who|how|why|when|where|is|are|"
    r"can|should|do|does)\b)",
    re.IGNORECASE,
)
_LIST_SEPARATOR = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|&)\s+", re.IGNORECASE)
#: A longer line in a model's plan is prose, not a sub-question.
_MAX_QUESTION_WORDS: Final = 80
_NUMBERING = re.compile(
    r"^\s*(?:[-*\u2022\u2013]|\(?\d{1,2}[.):]|[a-g][.)]|q\d+[.:)])\s*", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Plan:
    """The sub-questions of a query and what the planner made of it."""

    kind: Kind
    #: The query's subject as the facets name it ("intermittent fasting").
    topic: str
    questions: tuple[str, ...]


def question_count(depth: float | None) -> int:
    """How many sub-questions ``depth`` (1-3, default 2) asks for."""
    level = DEFAULT_DEPTH if depth is None else min(3, max(1, round(depth)))
    return QUESTIONS_BY_DEPTH[level]


def plan_questions(query: str, count: int) -> Plan:
    """At most ``count`` sub-questions for ``query``, most specific first; see the module
    docstring for how the query is read."""
    text = _normalise(query)
    if not text:
        return Plan("topic", "", ())
    comparison = _comparison(text)
    if comparison is not None:
        return _cap(comparison, count)
    several = _several(text)
    parts: list[str]
    if len(several) > 1:
        parts = several
        topic, kind = _topic_and_kind(_strip_question(several[0]))
    else:
        listed = _list(text)
        if listed is not None:
            parts, topic = listed
            # "How do I learn Spanish and French": the facets are about learning both.
            whole_topic, kind = _topic_and_kind(text)
            if kind != "topic":
                topic = whole_topic
        else:
            topic, kind = _topic_and_kind(text)
            first = text.split(maxsplit=1)[0].casefold()
            # A wh-question is its own best first sub-question; a yes-or-no one too.
            asks = kind in ("topic", "yes_no") and (first in _QUESTION_WORDS or kind == "yes_no")
            parts = [_as_question(text)] if asks else []
    facets = _facets(kind, topic, text, covered=parts)
    return _cap(Plan(kind, topic, tuple(_unique([*parts, *facets]))), count)


def parse_questions(text: str, limit: int) -> list[str]:
    """The sub-questions in a model's answer: one per line, numbering, bullets, quotes and
    bold marks removed; lines that are no question (a preamble, "Sure!") skipped;
    duplicates dropped; at most ``limit``."""
    found: list[str] = []
    for raw in text.splitlines():
        line = _NUMBERING.sub("", raw.strip()).strip().strip("*_\"'`\u201c\u201d").strip()
        line = " ".join(line.split())
        words = line.split()
        if not 3 <= len(words) <= _MAX_QUESTION_WORDS:
            continue
        if not (line.endswith("?") or words[0].casefold() in _QUESTION_WORDS):
            continue
        found.append(_as_question(line))
    return _unique(found)[:limit]


def short_question(question: str, limit: int = 48) -> str:
    """The start of ``question`` for a progress phase: whole words, at most ``limit``
    characters, without the question mark (the phase adds its own "...")."""
    text = " ".join(question.split()).rstrip("?")
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut or text[:limit]


def question_facet(question: str) -> str:
    """The aspect a sub-question asks about (``tradeoffs``, ``comparison``, ``choice``,
    ``timeline``, ``cost``, ``risks``, ``examples``, ``steps``, ``benefits``,
    ``background``) or ``overview``: what the offline answer advises on."""
    folded = f" {question.casefold()} "
    if "pros and cons" in folded or "strengths and weaknesses" in folded:
        return "tradeoffs"
    if " compare" in folded or " differ" in folded:
        return "comparison"
    if "better choice" in folded or "better to " in folded or "which should" in folded:
        return "choice"
    for facet in ("timeline", "cost", "risks", "examples", "steps", "benefits", "background"):
        if any(word in folded for word in _FACET_WORDS[facet]):
            return facet
    return "overview"


# --- reading the query -------------------------------------------------------------------


def _normalise(query: str) -> str:
    text = " ".join(query.split()).strip(" .!?")
    text = _OPENERS.sub("", text).strip(" .!?:")
    return text


def _words(text: str) -> list[str]:
    return text.split()


def _as_question(text: str) -> str:
    text = " ".join(text.split()).strip(" .;:,")
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith("?") else text.rstrip("?") + "?"


def _strip_question(text: str) -> str:
    return text.strip(" ?.")


def _lower_first(text: str) -> str:
    """Lower-case the first word when it is a common word put there by the query's own
    capital ("Impact of ..."), never a name ("Python", "AWS")."""
    first, _, rest = text.partition(" ")
    folded = first.casefold()
    if folded in _ASPECTS or folded in _DETERMINERS or folded in _QUESTION_WORDS:
        return f"{folded} {rest}".strip()
    return text


def _topic_and_kind(text: str) -> tuple[str, Kind]:
    """The subject the facets name, and the query's kind."""
    how = _HOW_TO.match(text)
    if how:
        return (how.group("goal") or how.group("goal2") or "").strip(), "how_to"
    worth = _WORTH.match(text)
    if worth:
        return (worth.group("subject") + (worth.group("tail") or "")).strip(), "decision"
    should = _SHOULD.match(text)
    if should:
        return (should.group("rest") or should.group("rest2") or "").strip(), "decision"
    if text.split(maxsplit=1)[0].casefold() in _AUXILIARIES:
        return _whether(text), "yes_no"
    return _subject(text), "topic"


def _whether(text: str) -> str:
    """A yes-or-no question as the clause the facets name: "Can I drink the tap water in
    Mexico City" -> "whether I can drink the tap water in Mexico City"; where the subject
    is no pronoun (so its end is unknown), 'the answer to "..."' instead."""
    words = _words(text)
    aux = words[0].casefold()
    pronoun = words[1].casefold() if len(words) > 2 else ""
    if pronoun in _PRONOUNS:
        who = "I" if pronoun == "i" else pronoun
        rest = " ".join(words[2:])
        if aux == "do":
            return f"whether {who} {rest}"
        if aux not in ("does", "did"):
            return f"whether {who} {aux} {rest}"
    return f'the answer to "{text}"'


def _subject(text: str) -> str:
    """The subject a query names: "the Suez Canal" in "What is the history of the Suez
    Canal", "remote work" in "Impact of remote work", "a heat pump" in "How does a heat
    pump work"; a bare subject as it is."""
    rest = _LEAD_BARE.sub("", text, count=1)
    aspect_of = _aspect_object(rest)
    if aspect_of:
        return aspect_of
    words = _words(rest)
    if len(words) > 1 and words[-1].casefold() in ("work", "works", "mean", "matter"):
        words = words[:-1]
    return _lower_first(" ".join(words))


# --- comparisons -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Options:
    options: tuple[str, ...]
    context: str
    #: "Should I rent or buy": options are things to do, not things.
    actions: bool
    who: str


def _comparison(text: str) -> Plan | None:
    found = _options(text)
    if found is None or len(found.options) < 2:
        return None
    options, context, who = _sentence_case(found.options[:4]), found.context, found.who
    ctx = f" {context}" if context else ""
    both = _join(options)
    if found.actions:
        to_each = _join([f"to {o}" for o in options], "or")
        first, second = options[0], options[1]
        per_option = [f"What are the pros and cons if {who} {o}{ctx}?" for o in options]
        facets = [
            f"Which costs more{ctx}: {to_each}?",
            f"What are the risks if {who} {first} rather than {second}{ctx}?",
            f"What timeline should {who} expect{ctx} if {who} {first}, and if {who} {second}?",
            f"In which situations is it better to {first} rather than {second}{ctx}?",
            f"What have people learned who chose {to_each}{ctx}?",
        ]
        topic = _join(options, "or")
    else:
        per_option = [f"What are the strengths and weaknesses of {o}{ctx}?" for o in options]
        facets = [
            f"How do {both} differ in how they work{ctx}?",
            f"Which is the better choice{ctx}, and under what conditions?",
            f"How do {both} compare on cost{ctx}?",
            f"How do {both} compare on risks and limitations{ctx}?",
            f"What do real-world examples show about {both}{ctx}?",
            f"How long does it take to get started with {both}{ctx}?",
        ]
        topic = both
    questions = [_as_question(q) for q in (*per_option, *facets)]
    return Plan("comparison", topic + ctx, tuple(_unique(questions)))


def _options(text: str) -> _Options | None:
    """The options a comparison weighs, the context they are weighed in, and whether they
    are actions ("rent" or "buy")."""
    between = _BETWEEN.search(text)
    if between:
        last, context = _split_context(between.group("b"))
        return _Options((between.group("a").strip(), last), context, False, "I")
    if len(parts := _VERSUS.split(text)) > 1:
        *firsts, last_part = parts
        last, context = _split_context(last_part)
        return _Options((*(p.strip(" ,") for p in firsts), last), context, False, "I")
    for pattern in (_CHOICE_COLON, _CHOICE, _IS_OR):
        choice = pattern.match(text)
        if choice is None:
            continue
        options = _or_options(choice.group("options"))
        given = choice.groupdict().get("context") or ""
        if len(options) > 1:
            last, tail = _split_context(options[-1])
            context = " ".join(p.strip(" ,:") for p in (given, tail) if p.strip(" ,:"))
            return _Options((*options[:-1], last), context, False, "I")
    should = _SHOULD.match(text)
    if should:
        rest = should.group("rest") or should.group("rest2") or ""
        options = _or_options(rest)
        if len(options) > 1:
            who = "we" if (should.group("who") or "").casefold() == "we" else "I"
            last, context = _split_context(options[-1])
            return _Options(_share_verb((*options[:-1], last)), context, True, who)
    return None


def _sentence_case(options: Sequence[str]) -> tuple[str, ...]:
    """Options as written, but for the capital the query's first word got: "Rent" vs "buy"
    is "rent" vs "buy"; "PostgreSQL" vs "MySQL" keep theirs."""
    first = options[0]
    rest_lower = all(o[:1].islower() for o in options[1:])
    word = first.split(maxsplit=1)[0]
    if rest_lower and word[:1].isupper() and word[1:].islower():
        return (first[0].lower() + first[1:], *options[1:])
    return tuple(options)


def _or_options(text: str) -> list[str]:
    return [p.strip(" ,") for p in re.split(r",\s*(?:or\s+)?|\s+or\s+", text) if p.strip(" ,")]


def _split_context(option: str) -> tuple[str, str]:
    """An option and its context: ("MySQL", "for a small SaaS startup") from "MySQL for a
    small SaaS startup"."""
    words = _words(option)
    for index, word in enumerate(words):
        if index and word.casefold() in _CONTEXT_WORDS:
            return " ".join(words[:index]), " ".join(words[index:])
    return option.strip(), ""


def _share_verb(options: Sequence[str]) -> tuple[str, ...]:
    """Actions share what the query says once: "rent" or "buy a home" are "rent a home"
    and "buy a home"; "move to Lisbon" or "Porto" are "move to Lisbon" and "move to
    Porto"; "buy a Tesla" or "a BMW" are "buy a Tesla" and "buy a BMW"."""
    first, last = _words(options[0]), _words(options[-1])
    if not first or not last:
        return tuple(options)
    if len(first) == 1 and len(last) > 1:
        shared = " ".join(last[1:])
        return tuple(f"{o} {shared}" if len(_words(o)) == 1 else o for o in options)
    head: list[str] = []
    if last[0].casefold() in _DETERMINERS:
        for index, word in enumerate(first):
            if index and word.casefold() in _DETERMINERS:
                head = first[:index]
                break
    elif last[0][:1].isupper() and first[0][:1].islower():
        for word in first:
            if word[:1].isupper():
                break
            head.append(word)
    if not head or len(head) == len(first):
        return tuple(options)
    prefix = " ".join(head)
    return (options[0], *(f"{prefix} {o}" for o in options[1:]))


def _join(items: Sequence[str], word: str = "and") -> str:
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


# --- several questions, lists ------------------------------------------------------------


def _several(text: str) -> list[str]:
    """Independent questions asked together, each as a question; one if there is one."""
    parts = [p.strip(" ,.?") for p in _SEVERAL.split(text)]
    parts = [p for p in parts if len(_words(p)) >= 2]
    return [_as_question(p) for p in parts] if len(parts) > 1 else [text]


def _list(text: str) -> tuple[list[str], str] | None:
    """One question per item of a list under one frame, and the subject they share; None
    when ``text`` holds no such list."""
    pieces = [p for p in _LIST_SEPARATOR.split(text) if p]
    if len(pieces) < 2 or any(len(_words(p)) > 6 for p in pieces[1:-1]):
        return None
    first, last = pieces[0], pieces[-1]
    lead_match = _LEAD.match(first)
    lead = lead_match.group(0) if lead_match else ""
    body = _words(first[len(lead) :])
    if not body:
        return None
    # The shared tail after the last item: from its first preposition.
    last_words = _words(last)
    suffix_words: list[str] = []
    for index, word in enumerate(last_words):
        if index and word.casefold() in _PREPOSITIONS:
            suffix_words = last_words[index:]
            last_words = last_words[:index]
            break
    # The frame's words before the first item: items are about as long as each other, so
    # the first is as long as the second ("affect productivity" / "wages"), or what follows
    # the first piece's last preposition when that is no longer ("remote work on
    # productivity" / "wages"; not "way to learn Spanish" / "French").
    width = len(_words(pieces[1])) if len(pieces) > 2 else len(last_words)
    preposition = next(
        (i for i in range(len(body) - 2, -1, -1) if body[i].casefold() in _PREPOSITIONS), None
    )
    if preposition is not None and len(body) - preposition - 1 <= width:
        prefix_words = body[: preposition + 1]
    elif len(body) > width + 1 or (not lead and len(body) > width):
        prefix_words = body[: len(body) - width]
    else:
        prefix_words = []
    items = [" ".join(body[len(prefix_words) :]), *pieces[1:-1], " ".join(last_words)]
    if any(
        not item or len(_words(item)) > 4 or _words(item)[0].casefold() in _QUESTION_WORDS
        for item in items
    ):
        return None  # clauses, not the items of a list
    if not lead and not prefix_words and not suffix_words:
        return None  # "Apples and oranges": no frame to share, nothing to split
    prefix, suffix = " ".join(prefix_words), " ".join(suffix_words)
    questions = [_framed(lead, prefix, item, suffix) for item in items]
    return questions, _list_topic(prefix, items, suffix_words)


def _list_topic(prefix: str, items: Sequence[str], suffix_words: Sequence[str]) -> str:
    """What a list's questions share: the object of "... of intermittent fasting"; else
    the object of an aspect before the list ("impact of AI on" jobs and wages "in Europe":
    AI in Europe); else the items themselves ("pack for" Iceland and Norway)."""
    if suffix_words and suffix_words[0].casefold() in ("of", "about", "on", "around"):
        return " ".join(suffix_words[1:])
    context = " " + " ".join(suffix_words) if suffix_words else ""
    aspect_of = _aspect_object(_strip_trailing_preposition(prefix))
    if aspect_of:
        return aspect_of + context
    return _join(list(items)) + context


def _aspect_object(text: str) -> str:
    """What an aspect is of: "AI" in "the impact of AI"; "" when ``text`` names none."""
    words = _words(text)
    start = 1 if len(words) > 3 and words[0].casefold() in _DETERMINERS else 0
    if (
        len(words) > start + 2
        and words[start].casefold() in _ASPECTS
        and words[start + 1].casefold() == "of"
    ):
        return " ".join(words[start + 2 :])
    return ""


def _strip_trailing_preposition(text: str) -> str:
    words = _words(text)
    while words and words[-1].casefold() in _PREPOSITIONS:
        words.pop()
    return " ".join(words)


def _framed(lead: str, prefix: str, item: str, suffix: str) -> str:
    core = " ".join(p for p in (prefix, item, suffix) if p)
    if lead:
        return _as_question(f"{lead}{core}")
    core = _lower_first(core)
    first = _words(core)[0].casefold().rstrip(",")
    verb = "are" if first.endswith("s") and not first.endswith("ss") else "is"
    article = "" if first in _DETERMINERS else "the "
    return _as_question(f"What {verb} {article}{core}")


# --- facets ------------------------------------------------------------------------------


def _facets(kind: Kind, topic: str, text: str, covered: Sequence[str]) -> list[str]:
    """The questions every query of ``kind`` deserves, minus those ``covered`` asks."""
    if not topic:
        topic = text
    if kind == "how_to":
        candidates = [
            ("steps", f"What are the steps to {topic}?"),
            ("cost", f"What do you need to {topic}, and what does it cost?"),
            ("timeline", f"How long does it take to {topic}?"),
            ("risks", f"What are the common mistakes and risks when you {topic}?"),
            ("examples", f"What examples show how others {topic}?"),
            ("benefits", f"How do you know it worked when you {topic}?"),
            ("alternatives", f"What are the alternatives if you cannot {topic}?"),
        ]
    elif kind == "decision":
        should = _SHOULD.match(text)
        if should and not _WORTH.match(text):
            who = "we" if (should.group("who") or "").casefold() == "we" else "I"
            candidates = [
                ("benefits", f"What would {who} gain if {who} {topic}?"),
                ("cost", f"What would it cost to {topic}?"),
                ("risks", f"What are the risks if {who} {topic}?"),
                ("timeline", f"How long would it take to {topic}, and when would it pay off?"),
                ("alternatives", f"What else should {who} weigh before deciding to {topic}?"),
                ("examples", f"What have others learned when they chose to {topic}?"),
                ("steps", f"What would the first steps be to {topic}?"),
            ]
        else:
            candidates = [
                ("benefits", f"What are the benefits of {topic}?"),
                ("cost", f"What does {topic} cost, up front and over time?"),
                ("risks", f"What are the risks and downsides of {topic}?"),
                ("timeline", f"How long does {topic} take to pay off?"),
                ("alternatives", f"What are the alternatives to {topic}?"),
                ("examples", f"What do real examples of {topic} show?"),
                ("steps", f"What are the first steps towards {topic}?"),
            ]
    elif kind == "yes_no":
        candidates = [
            ("sources", f"What do official or expert sources say about {topic}?"),
            ("conditions", f"What conditions or exceptions change {topic}?"),
            ("cost", "If the answer is yes, what costs, risks or deadlines follow?"),
            ("examples", "What have others in the same situation found?"),
            ("steps", "What should be done next, depending on the answer?"),
            ("timeline", f"How is {topic} likely to change over the next few years?"),
        ]
    else:
        candidates = [
            ("overview", f"What is {topic}, and why does it matter?"),
            ("background", f"What is the background and history of {topic}?"),
            ("facts", f"What are the key facts and figures about {topic}?"),
            ("risks", f"What are the main risks and open questions around {topic}?"),
            ("examples", f"Which real-world examples illustrate {topic}?"),
            ("timeline", f"What is the outlook for {topic} over the next few years?"),
            ("cost", f"What are the costs and benefits of {topic}?"),
        ]
    covered_text = " ".join(covered).casefold()
    chosen = []
    for facet, question in candidates:
        if covered and facet == "overview":
            continue  # the split's own questions are the overview
        words = _FACET_WORDS.get(facet, ())
        if covered and any(word in covered_text for word in words):
            continue
        chosen.append(_as_question(question))
    return chosen


def _unique(questions: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for question in questions:
        key = re.sub(r"\W+", " ", question.casefold()).strip()
        if key and key not in seen:
            seen.add(key)
            kept.append(question)
    return kept


def _cap(plan: Plan, count: int) -> Plan:
    return Plan(plan.kind, plan.topic, plan.questions[: max(0, count)])


# --- what the local provider writes ------------------------------------------------------

#: How to answer a sub-question of each facet, when no model is there to answer it.
_GUIDANCE: Final = {
    "tradeoffs": (
        "List the advantages and the drawbacks side by side, each with how much it matters "
        "in this particular case and where the claim comes from; a drawback that cannot be "
        "lived with outweighs several small advantages."
    ),
    "cost": (
        "Add up the whole cost, not only the price: what is paid up front, what it costs to "
        "run each month or year, and what stopping or switching would cost. Compare at "
        "least three current quotes or price lists and note the date of each, as prices move."
    ),
    "risks": (
        "List what could go wrong, how likely each risk is and how much it would hurt. "
        "Prefer independent sources (regulators, consumer bodies, published post-mortems) "
        "to the seller's own pages, and note what would reduce each risk."
    ),
    "timeline": (
        "Break it into stages and give each a range rather than a single figure; find out "
        "which stage is usually the slowest and what waits on something else (paperwork, "
        "deliveries, approvals)."
    ),
    "examples": (
        "Look for two or three real cases close to this one in size, place and budget, and "
        "note what they did, what it cost them and what they would do differently."
    ),
    "steps": (
        "Write the steps in order, each with what it needs before it can start; make the "
        "first one small enough to do this week."
    ),
    "benefits": (
        "Name the benefits that would actually be felt and how each could be measured; "
        "keep the proven ones apart from the promised ones."
    ),
    "background": (
        "Start from a reference overview (an encyclopedia entry or an official history), "
        "then a recent summary, and note the key dates and turning points."
    ),
    "comparison": (
        "Compare the options on the same few criteria (cost, effort, risks, fit for this "
        "case) in a small table, with a source for each cell."
    ),
    "choice": (
        "Decide first what matters most here, then see which option wins on that: the "
        "right choice depends on the constraints more than on which option is best in "
        "general."
    ),
    "overview": (
        "Start with a definition from a reliable reference, then the two or three facts "
        "that matter most to the question, each with its source and its date."
    ),
}


def offline_answer(question: str) -> str:
    """What the ``local`` provider answers to a sub-question: no facts it cannot know, but
    how to answer it, by the facet it asks about."""
    return f"How to answer it: {_GUIDANCE[question_facet(question)]}"


def offline_summary(query: str, kind: Kind, topic: str, questions: Sequence[str]) -> str:
    """The report's summary with no model: what was asked and how it was split."""
    shape = {
        "comparison": "It looks at each option in turn, then compares them",
        "how_to": "It goes from the steps to the cost, the time it takes and what goes wrong",
        "decision": "It weighs the gains against the cost and the risks, then the timeline",
        "yes_no": "It starts from the question itself, then what sources say and what "
        "changes the answer",
        "topic": "It goes from what the subject is to its background, facts and outlook",
    }[kind]
    items = "; ".join(q.rstrip("?") for q in questions)
    return (
        f'This report looks at "{" ".join(query.split())}" through {len(questions)} '
        f"sub-questions: {items}. {shape}."
    )


def offline_conclusion(kind: Kind, topic: str) -> str:
    """The report's conclusion with no model: how to turn the sections into an answer."""
    return {
        "comparison": (
            f"The right choice ({topic}) depends on what matters most in this case. Fill in "
            "the cost, risks and timeline of each option from the sections above, then pick "
            "the one that wins on the criterion that matters most to you."
        ),
        "how_to": (
            "Start with the first step this week, budget for the costs listed, and check your "
            "progress against the timeline; the common mistakes above are the ones to plan "
            "around."
        ),
        "decision": (
            "Decide once the gains, the full cost and the risks are written side by side: if "
            "the gains still outweigh the cost after the risks are allowed for, go ahead; "
            "otherwise look at the alternatives first."
        ),
        "yes_no": (
            "Take the answer from the most official source the sections point to, check the "
            "conditions and exceptions that apply to your case, and note the date you "
            "checked, as rules change."
        ),
        "topic": (
            f"For a sound view of {topic}, rely on the sources each section points to, note "
            "their dates, and revisit the outlook as new figures come out."
        ),
    }[kind]


def render_report(
    query: str, summary: str, sections: Sequence[tuple[str, str]], conclusion: str
) -> str:
    """The report as Markdown: the query as title, the summary, one section per
    sub-question (heading, answer), the conclusion."""
    lines = [f"# Research: {' '.join(query.split())}", "", "## Summary", "", summary, ""]
    for number, (question, answer) in enumerate(sections, 1):
        lines += [f"## {number}. {question}", "", answer, ""]
    lines += ["## Conclusion", "", conclusion, ""]
    return "\n".join(lines)
