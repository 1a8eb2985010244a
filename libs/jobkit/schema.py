"""Job input schemas as JSON Schema (draft 2020-12): compiled once, checked per request.

``compile_schema(schema)`` checks the schema against the draft's meta-schema and refuses a
malformed one (``ConfigError``: the process cannot start with it); ``InputSchema.validate``
returns every violation of a document as ``FieldViolation``, each naming its field the way
clients have always seen it (``input.resume.experience[2].title``) with the wording they
have always seen (``is required``, ``must be a string``, ``must be at most 200
characters``, ...).

The conventions a schema author relies on:

- A required string that must not be blank: ``"minLength": 1, "pattern": NON_BLANK``; both
  read "must not be empty".
- Numbers arrive from ``google.protobuf.Struct`` as floats: ``"integer"`` accepts ``3.0``
  (the draft says so), and ``true``/``false`` never pass as a number.
- A member whose value is ``null`` counts as absent (``is required`` if it is required,
  else unchecked), as a Struct client leaving a field unset expects. A ``null`` list entry
  is checked like any other entry.
- One violation per field, the first by the old validator's order (type, bounds, blank,
  length); a field reported as a whole (a list with too many entries) is not also reported
  inside. Violations come in the schema's property order, depth first.
- Keywords without a mapped message still fail validation, with a generic message naming
  the field and the keyword.
- A ``false`` subschema (``"properties": {"legacy": false}``) is reported on the enclosing
  object ("is not allowed"): jsonschema 4.26 gives that error no path of its own. Write
  ``{"not": {}}`` to have the member named.

Two validators, one verdict. ``compile_schema`` compiles the schema twice: for
``jsonschema`` (``Draft202012Validator``, ``iter_errors``), which finds every violation and
is the one whose findings are mapped to the wording above, and for ``fastjsonschema``, the
*gate*, which stops at the first violation but is ~35x faster. ``validate`` walks the
document once (null members, tuples), leaves out null members, asks the gate and returns
``[]`` at once when it passes; only a document the gate fails goes through jsonschema,
which then decides (and may still find nothing: the gate is allowed to be stricter, never
more lenient). Valid documents are CreateJob's hot path; invalid ones cost what they did.

The gate is sound only where the two libraries agree, so it is given a schema only when
every keyword in it is on a list checked to mean the same in both (``_why_ungated``, at
compile time; ``InputSchema.ungated_because`` says why not, and such a schema simply always
goes through jsonschema):

- fastjsonschema has no 2020-12 code (it falls back to its 2019-09 one, i.e. draft-07), so
  the gate is compiled as draft-07, with only the keywords that read the same in both:
  ``type``, ``properties``, ``required``, ``additionalProperties``, ``items`` (one schema),
  ``minItems``/``maxItems``, ``minLength``/``maxLength``, ``pattern``,
  ``minimum``/``maximum``, ``exclusiveMinimum``/``exclusiveMaximum`` (numbers in both),
  ``enum``, ``const``, boolean subschemas, annotations (``title``, ``description``,
  ``default``, ``format``, ...: the gate is compiled with ``use_default=False``, so it never
  writes into the document, and ``use_formats=False``, as jsonschema checks no format).
- ``$ref``: only a local JSON pointer (``#/$defs/resume``) to a subschema the scan has
  checked, and with no sibling assertion (draft-07 ignores a ``$ref``'s siblings, 2020-12
  applies them). ``$defs`` is no keyword to draft-07, but the pointer resolves all the same.
- Anything else leaves the schema ungated: ``prefixItems``, ``unevaluated*``,
  ``dependent*``, ``$id``/``$anchor``/``$dynamicRef``, ``definitions``, and also keywords
  that mean the same in both drafts but have not been checked against both libraries
  (``not``, ``anyOf``, ``oneOf``, ``if``, ``uniqueItems``, ``multipleOf``,
  ``patternProperties``, ...). Add one to the list only with a case in the tests.
- What the two libraries read differently, checked in fastjsonschema 2.22.3 against
  jsonschema 4.26: both take 3.0 as an ``integer`` and never a bool as a number (and
  fastjsonschema >= 2.22 tells ``true`` from ``1`` in ``enum``/``const``); fastjsonschema
  takes a tuple as an array, so a document holding one skips the gate; it reads ``$`` in a
  pattern as ``\\Z`` (stricter: "AB\\n" fails the gate, passes jsonschema), and a pattern
  where that could turn lenient (``$`` with a negative lookaround, a conditional, an
  atomic group or a possessive quantifier) is ungated. Anything the generated code raises
  counts as "not passed".

``tests/unit/test_schema.py`` holds the two to the same verdict on ~4,800 documents made by
mutating valid ones (each real schema and one using every gated keyword).

Measured by ``python -m bench.schema_validation`` on a cv_tailoring input of 5 roles x 5
bullets and a 3,000-character posting, CPython 3.11, best of 7, five runs on a shared
(busy) 2-CPU machine. One validation:

- a valid document: 22-25 us through the gate (the walk ~5 us, fastjsonschema 16-18 us),
  against 510-650 us through jsonschema alone, as every document went before the gate;
- an invalid one (9 violations, all reported): 620-830 us, the gate's failed try (~3 us)
  and then jsonschema with the mapping: the same as before, within noise;
- a noop input ``{"sleep_ms": 100}``: 0.6-0.8 us, against 10-11 us before;
- compiling the cv_tailoring schema: 15-19 ms, once per job type at start-up (jsonschema's
  meta-schema check 7-13 ms, fastjsonschema's code generation 7.5-9 ms).

For scale, the hand-rolled ``Field`` validator these schemas replaced took 38-44 us / 45-53
us on the same inputs: a valid CreateJob now costs about half of that, an invalid one ~15x.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import unquote

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from jobkit.errors import ConfigError, FieldViolation

#: The draft of every input schema; a schema may say so in ``$schema`` or leave it out.
DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"

#: ``pattern`` of a string that must hold something besides white space.
NON_BLANK: Final = r"\S"

#: JSON Schema type -> the words after "must be".
_TYPE_NAMES: Final = {
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}

#: Which of several failed keywords of one field is reported, lowest first: the old
#: validator's order (type, minimum, maximum, blank, length), then the rest.
_RANK: Final = {
    "type": 0,
    "const": 1,
    "enum": 1,
    "minimum": 2,
    "exclusiveMinimum": 2,
    "maximum": 3,
    "exclusiveMaximum": 3,
    "blank": 4,
    "minLength": 5,
    "maxLength": 6,
    "minItems": 5,
    "maxItems": 6,
    "pattern": 7,
}
_OTHER_RANK: Final = 10

_Path = tuple[str | int, ...]

# --- The gate: fastjsonschema, for the verdict on valid documents ------------------------

#: What the gate is compiled as: fastjsonschema has no 2020-12 code (it would fall back to
#: its 2019-09 one, which is its draft-07 one), so it is asked for draft-07 by name. Only
#: the keywords below, whose meaning is the same in both drafts, are let through to it.
_GATE_DRAFT: Final = "http://json-schema.org/draft-07/schema#"

#: Assertions read the same by draft-07 and 2020-12, and by fastjsonschema (>= 2.22: enum
#: and const tell true from 1) and jsonschema: bool is never a number, 3.0 is an integer.
_GATE_ASSERTIONS: Final = frozenset(
    {
        *("type", "required", "enum", "const", "pattern"),
        *("minLength", "maxLength", "minItems", "maxItems"),
        *("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
    }
)
#: Keywords that assert nothing here (``format`` is an annotation in 2020-12 and jsonschema
#: checks none; the gate is compiled with ``use_formats=False`` to match, and with
#: ``use_default=False`` so that it never writes a ``default`` into the document).
_GATE_ANNOTATIONS: Final = frozenset(
    {
        *("title", "description", "$comment", "default", "examples"),
        *("deprecated", "readOnly", "writeOnly", "format"),
    }
)
#: Keywords whose value holds subschemas, and how: a map of them or one.
_GATE_SUBSCHEMA_MAPS: Final = frozenset({"properties", "$defs"})
_GATE_SUBSCHEMAS: Final = frozenset({"items", "additionalProperties"})
#: fastjsonschema reads every unescaped ``$`` of a pattern as ``\Z`` (no match before a
#: final newline, as Python's ``$`` allows): that only makes the gate stricter, except
#: inside these constructs (negative lookarounds, conditionals, atomic groups, possessive
#: quantifiers), where stricter can turn into more lenient; a pattern with both is ungated.
_NON_MONOTONE_REGEX: Final = ("(?!", "(?<!", "(?(", "(?>", "*+", "++", "?+", "}+")

#: Flags of a document, found by one walk (``_doc_flags``).
_NULL_MEMBER: Final = 1  # an object member is null: it is left out before validating
_TUPLE: Final = 2  # a tuple somewhere: an array to fastjsonschema, not to jsonschema
#: Skipped by exact type in that walk; containers are looked into.
_LEAVES: Final = frozenset({str, float, int, bool})
_CONTAINERS: Final = (dict, list, tuple)


class InputSchema:
    """A compiled JSON Schema of a job's input (made by ``compile_schema``); immutable, safe
    to share between tasks."""

    __slots__ = ("_gate", "_schema", "_ungated_because", "_validator")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema = schema
        self._validator = Draft202012Validator(schema)
        self._gate, self._ungated_because = _compile_gate(schema)

    @property
    def schema(self) -> Mapping[str, Any]:
        """The JSON Schema itself, e.g. to publish in ``JobType.input_schema``."""
        return self._schema

    @property
    def ungated_because(self) -> str | None:
        """Why this schema has no fastjsonschema gate (every document then goes through
        jsonschema); None when it has one."""
        return self._ungated_because

    def validate(self, doc: Any, root: str = "input") -> list[FieldViolation]:
        """Every violation of ``doc``, each naming its field under ``root``; [] if valid."""
        flags = _doc_flags(doc)
        if flags & _NULL_MEMBER:
            doc = _pruned(doc)
        if not flags & _TUPLE and self._gate_passes(doc):
            return []
        return self._full(doc, root)

    def _gate_verdict(self, doc: Any) -> bool | None:
        """The gate's verdict on ``doc`` (nulls left out as ``validate`` does): True valid,
        False not; None where ``validate`` does not ask it (no gate, a tuple in ``doc``)."""
        flags = _doc_flags(doc)
        if self._gate is None or flags & _TUPLE:
            return None
        return self._gate_passes(_pruned(doc) if flags & _NULL_MEMBER else doc)

    def _full_violations(self, doc: Any, root: str = "input") -> list[FieldViolation]:
        """``validate`` without the gate: jsonschema's verdict, every violation mapped."""
        flags = _doc_flags(doc)
        return self._full(_pruned(doc) if flags & _NULL_MEMBER else doc, root)

    def _gate_passes(self, doc: Any) -> bool:
        if self._gate is None:
            return False
        try:
            self._gate(doc)
        except Exception:  # a violation, or the generated code tripping: jsonschema decides
            return False
        return True

    def _full(self, doc: Any, root: str) -> list[FieldViolation]:
        found: dict[_Path, tuple[int, str]] = {}
        for where, rank, why in _violations(self._validator.iter_errors(doc)):
            if where not in found or rank < found[where][0]:
                found[where] = (rank, why)
        if not found:
            return []
        # A field reported whole (too many entries, not a list) is not reported inside too;
        # one failing a generic rule (anyOf, not, ...) still has its details reported.
        whole = {where for where, (rank, _) in found.items() if rank < _OTHER_RANK}
        reported = [
            where for where in found if not any(where[:n] in whole for n in range(len(where)))
        ]
        reported.sort(key=lambda where: _order_key(self._schema, where))
        return [FieldViolation(_field_name(root, where), found[where][1]) for where in reported]


def compile_schema(schema: Mapping[str, Any]) -> InputSchema:
    """Compile ``schema`` once; ``ConfigError`` if it is not a valid draft 2020-12 schema."""
    if not isinstance(schema, Mapping):
        raise ConfigError(f"input schema must be a JSON object, not {type(schema).__name__}")
    declared = schema.get("$schema", DRAFT_2020_12)
    if not isinstance(declared, str) or declared.rstrip("#") != DRAFT_2020_12:
        raise ConfigError(f"input schema must be draft 2020-12, not $schema {declared!r}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise ConfigError(f"invalid input schema at {where}: {exc.message}") from exc
    return InputSchema(schema)


def _compile_gate(schema: Mapping[str, Any]) -> tuple[Callable[[Any], Any] | None, str | None]:
    """fastjsonschema's validator of ``schema`` and None, or None and why there is none:
    the schema uses a keyword outside the gate's list, or fastjsonschema cannot compile it."""
    why = _why_ungated(schema)
    if why is not None:
        return None, why
    definition = _plain(schema)
    definition["$schema"] = _GATE_DRAFT
    try:
        gate = fastjsonschema.compile(
            definition, handlers=_NO_REMOTE_REFS, use_default=False, use_formats=False
        )
    except Exception as exc:  # a definition it rejects, or a bug in its code generation
        return None, f"fastjsonschema cannot compile it ({type(exc).__name__}: {exc})"
    return gate, None


def _refuse_remote_ref(uri: str) -> Any:
    raise fastjsonschema.JsonSchemaDefinitionException(f"remote $ref {uri!r} not fetched")


#: Never fetched (only local "#/..." references reach fastjsonschema); against its urllib
#: fallback all the same.
_NO_REMOTE_REFS: Final = {
    scheme: _refuse_remote_ref for scheme in ("", "http", "https", "file", "ftp", "urn", "data")
}


def _why_ungated(schema: Mapping[str, Any]) -> str | None:
    """None if every keyword of ``schema`` means the same to the gate (fastjsonschema,
    draft-07) as to jsonschema (2020-12); else the first that does not, as a reason."""
    seen: set[tuple[str, ...]] = set()
    refs: list[tuple[tuple[str, ...], str]] = []
    why = _why_ungated_at(schema, (), seen, refs)
    if why is not None:
        return why
    for where, ref in refs:
        # A local JSON pointer ("#/$defs/resume") to a subschema scanned above: anything
        # else (another document, an anchor, a list entry, a non-schema) is not gated.
        if ref != "#" and not ref.startswith("#/"):
            return f"$ref {ref!r} at {_pointer(where)} is not a local JSON pointer"
        target = tuple(
            token.replace("~1", "/").replace("~0", "~") for token in unquote(ref[1:]).split("/")[1:]
        )
        if target not in seen:
            return f"$ref {ref!r} at {_pointer(where)} does not point at a scanned subschema"
    return None


def _why_ungated_at(
    node: Any,
    where: tuple[str, ...],
    seen: set[tuple[str, ...]],
    refs: list[tuple[tuple[str, ...], str]],
) -> str | None:
    if isinstance(node, bool):
        seen.add(where)
        return None
    if not isinstance(node, Mapping):
        return f"the subschema at {_pointer(where)} is not an object or a boolean"
    seen.add(where)
    ref = node.get("$ref")
    if ref is not None:
        # draft-07 ignores the siblings of "$ref"; 2020-12 applies them.
        siblings = [
            k for k in node if k not in _GATE_ANNOTATIONS and k not in ("$ref", "$defs", "$schema")
        ]
        if siblings:
            return f"$ref at {_pointer(where)} has sibling keywords {siblings}"
        if not isinstance(ref, str):
            return f"$ref at {_pointer(where)} is not a string"
        refs.append((where, ref))
    for keyword, value in node.items():
        at = (*where, keyword)
        if (
            keyword in _GATE_ANNOTATIONS
            or keyword == "$ref"
            or (keyword == "$schema" and not where)
        ):
            continue
        if keyword == "pattern":
            if (
                isinstance(value, str)
                and "$" in value
                and any(construct in value for construct in _NON_MONOTONE_REGEX)
            ):
                return f"pattern {value!r} at {_pointer(where)}: $ under a negation"
            continue
        if keyword in _GATE_ASSERTIONS:
            continue
        if keyword in _GATE_SUBSCHEMA_MAPS and isinstance(value, Mapping):
            for name, subschema in value.items():
                why = _why_ungated_at(subschema, (*at, name), seen, refs)
                if why is not None:
                    return why
            continue
        if keyword in _GATE_SUBSCHEMAS and not isinstance(value, list):
            why = _why_ungated_at(value, at, seen, refs)
            if why is not None:
                return why
            continue
        return f"keyword {keyword!r} at {_pointer(where)}"
    return None


def _pointer(where: Sequence[str]) -> str:
    return "#" + "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in where)


def _plain(value: Any) -> Any:
    """A deep copy as plain dicts and lists: fastjsonschema rewrites ``$ref``s in place."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _doc_flags(value: Any) -> int:
    """``_NULL_MEMBER`` if an object member anywhere in ``value`` is null, ``_TUPLE`` if a
    tuple is anywhere; one walk, on every validation (valid documents have neither). ~5 us
    for the benchmark's cv_tailoring input: plain leaves are skipped by exact type, and
    containers told by a tuple of types (``isinstance`` with ``dict | list`` is 2-3x slower)."""
    flags = 0
    if isinstance(value, dict):
        for member in value.values():
            if type(member) in _LEAVES:
                continue
            if member is None:
                flags |= _NULL_MEMBER
            elif isinstance(member, _CONTAINERS):
                flags |= _doc_flags(member)
    elif isinstance(value, list):
        for item in value:
            if type(item) not in _LEAVES and isinstance(item, _CONTAINERS):
                flags |= _doc_flags(item)
    elif isinstance(value, tuple):
        return _TUPLE
    return flags


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _violations(errors: Iterator[ValidationError]) -> Iterator[tuple[_Path, int, str]]:
    """(instance path, rank, wording) for each error; ``required`` and
    ``additionalProperties`` name the member concerned rather than its parent object."""
    missing_seen: set[_Path] = set()
    for error in errors:
        where: _Path = tuple(error.absolute_path)
        keyword = error.validator
        if keyword in ("required", "dependentRequired"):
            for name in _missing_members(error):
                member = (*where, name)
                if member not in missing_seen:
                    missing_seen.add(member)
                    yield member, 0, "is required"
        elif keyword == "additionalProperties" and error.validator_value is False:
            for name in _unexpected_members(error):
                yield (*where, name), 0, "is not allowed"
        else:
            rank, why = _describe(error)
            yield where, rank, why


def _missing_members(error: ValidationError) -> list[str]:
    instance = error.instance
    if not isinstance(instance, Mapping):
        return []
    if error.validator == "required":
        wanted: Any = error.validator_value
    else:  # dependentRequired: {"a": ["b", "c"]}: with a, b and c are required
        needs_of: Any = error.validator_value
        wanted = [
            name for present, needs in needs_of.items() if present in instance for name in needs
        ]
    return [name for name in wanted if isinstance(name, str) and name not in instance]


def _unexpected_members(error: ValidationError) -> list[str]:
    instance = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if not isinstance(instance, Mapping):
        return []
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        name
        for name in instance
        if name not in known and not any(re.search(p, name) for p in patterns)
    ]


def _describe(error: ValidationError) -> tuple[int, str]:
    """Rank and wording of one failed keyword."""
    keyword = error.validator if isinstance(error.validator, str) else None
    value: Any = error.validator_value
    rank = _RANK.get(keyword or "", _OTHER_RANK)
    match keyword:
        case "type":
            types = [value] if isinstance(value, str) else list(value)
            return rank, "must be " + " or ".join(
                dict.fromkeys(_TYPE_NAMES.get(t, t) for t in types)
            )
        case "minLength" if value == 1:
            return _RANK["blank"], "must not be empty"
        case "pattern" if value == NON_BLANK:
            return _RANK["blank"], "must not be empty"
        case "minimum":
            return rank, f"must be at least {_number(value)}"
        case "maximum":
            return rank, f"must be at most {_number(value)}"
        case "exclusiveMinimum":
            return rank, f"must be more than {_number(value)}"
        case "exclusiveMaximum":
            return rank, f"must be less than {_number(value)}"
        case "multipleOf":
            return rank, f"must be a multiple of {_number(value)}"
        case "minLength":
            return rank, f"must be at least {value} characters"
        case "maxLength":
            return rank, f"must be at most {value} characters"
        case "minItems":
            return rank, f"must have at least {_count(value, 'entry', 'entries')}"
        case "maxItems":
            return rank, f"must have at most {_count(value, 'entry', 'entries')}"
        case "minProperties":
            return rank, f"must have at least {_count(value, 'field', 'fields')}"
        case "maxProperties":
            return rank, f"must have at most {_count(value, 'field', 'fields')}"
        case "uniqueItems":
            return rank, "must not repeat an entry"
        case "pattern":
            return rank, f"must match the pattern {value}"
        case "format":
            return rank, f"must be a valid {value}"
        case "const":
            return rank, f"must be {_json(value)}"
        case "enum":
            return rank, "must be one of " + ", ".join(_json(v) for v in value)
        case None:  # the schema `false`
            return rank, "is not allowed"
    return rank, f'does not satisfy the schema\'s "{keyword}" rule'


def _number(value: float) -> str:
    """1000000 for 1e6 and 1.0, 0.5 for 0.5: a bound as a person writes it."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _field_name(root: str, where: Sequence[str | int]) -> str:
    return root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)


def _order_key(schema: Mapping[str, Any], where: _Path) -> list[tuple[int, str]]:
    """Sorts fields as the old validator listed them: by the schema's ``properties`` order
    at each level (through local ``$ref``s), list entries by index, members the schema
    does not list after the rest."""
    key: list[tuple[int, str]] = []
    node: Any = schema
    for part in where:
        if isinstance(part, int):
            key.append((part, ""))
            node = _follow(schema, node, "items")
            continue
        properties = _follow(schema, node, "properties")
        if isinstance(properties, Mapping) and part in properties:
            key.append((list(properties).index(part), part))
            node = properties[part]
        else:
            key.append((1 << 30, part))
            node = None
    return key


def _follow(root: Mapping[str, Any], node: Any, keyword: str) -> Any:
    """``node[keyword]``, looked up through local ``$ref``s ("#/$defs/resume"); None if
    there is none."""
    for _ in range(16):  # a bound, against a reference cycle
        if not isinstance(node, Mapping):
            return None
        if keyword in node:
            return node[keyword]
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            return None
        node = root
        for token in filter(None, ref[1:].split("/")):
            token = token.replace("~1", "/").replace("~0", "~")
            node = node.get(token) if isinstance(node, Mapping) else None
    return None
