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

Library: ``jsonschema`` (``Draft202012Validator``, ``iter_errors``), chosen by measurement
over ``fastjsonschema``: ``python -m bench.schema_validation`` on a cv_tailoring input of 5
roles x 5 bullets and a 3,000-character posting, CPython 3.11, best of 7, five runs on a
shared (busy) 2-CPU machine. One validation, valid / invalid (9 violations) document:

- jsonschema with this module's mapping: 510-760 us / 650-740 us, all 9 reported
- fastjsonschema 2.22.3: 16-18 us / 3-3.5 us, the first violation only
- the hand-rolled ``Field`` validator it replaces: 38-44 us / 45-53 us, all 9

Compiling: jsonschema 7-10 ms (nearly all of it the meta-schema check), fastjsonschema
7-8 ms (code generation, no meta-schema check). A noop input ``{"sleep_ms": 100}``: 9 us
here, 0.8 us hand-rolled. fastjsonschema is ~35x faster but stops at the first violation
(CreateJob has always reported every field at once), has no 2020-12 support (a 2020-12
``$schema`` falls back to its 2019-09 code) and no meta-schema check, so jsonschema is the
one kept: ~0.5-0.75 ms of job_api CPU per cv_tailoring CreateJob, against ~0.04 ms before.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

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


class InputSchema:
    """A compiled JSON Schema of a job's input (made by ``compile_schema``); immutable, safe
    to share between tasks."""

    __slots__ = ("_schema", "_validator")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema = schema
        self._validator = Draft202012Validator(schema)

    @property
    def schema(self) -> Mapping[str, Any]:
        """The JSON Schema itself, e.g. to publish in ``JobType.input_schema``."""
        return self._schema

    def validate(self, doc: Any, root: str = "input") -> list[FieldViolation]:
        """Every violation of ``doc``, each naming its field under ``root``; [] if valid."""
        found: dict[_Path, tuple[int, str]] = {}
        for where, rank, why in _violations(self._validator.iter_errors(_without_nulls(doc))):
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


def _without_nulls(value: Any) -> Any:
    """``value`` with every object member whose value is null left out; ``value`` itself
    (no copy) when it has none, the usual case."""
    return _pruned(value) if _has_null_member(value) else value


def _has_null_member(value: Any) -> bool:
    if isinstance(value, dict):
        for member in value.values():
            if member is None or (isinstance(member, dict | list) and _has_null_member(member)):
                return True
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and _has_null_member(item):
                return True
    return False


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
