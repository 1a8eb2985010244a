"""``replace`` for the frozen, slotted dataclasses the step path decides on.

``dataclasses.replace`` goes through the class's ``__init__``, which on a frozen class sets
every field with ``object.__setattr__``: about 8 µs for a ``JobRecord`` (27 fields).
Deciding one three-step job makes some forty copies of jobs, steps and decisions, so the
orchestrator spent about a sixth of its CPU in it. This one makes, once per class, a
function that copies each slot through its descriptor in straight-line code (as
``dataclasses`` writes ``__init__``), then sets the changed ones: 1.7 µs for a
``JobRecord``, where a loop over the descriptors took 3.8 (9 % of the orchestrator's
samples in the bench's throughput run).

Only for classes whose ``__init__`` does nothing but assign: every field in ``__init__``,
no ``__post_init__``, slots. Anything else goes to ``dataclasses.replace``, so a class
changed later never gets a copy its constructor would not have made.

For mypy this *is* ``dataclasses.replace``, whose calls it checks field by field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

_Copier = Callable[[Any, dict[str, Any]], Any]

#: Per class: its copier, or ``None`` when only ``dataclasses.replace`` is right for it.
_COPIERS: dict[type, _Copier | None] = {}


def _copier(cls: type) -> _Copier | None:
    fields = dataclasses.fields(cls)
    simple = (
        "__slots__" in cls.__dict__
        and not hasattr(cls, "__post_init__")
        and all(f.init for f in fields)
        and {f.name for f in fields} == set(cls.__dict__["__slots__"])
    )
    copier = _compile(cls, [f.name for f in fields]) if simple else None
    _COPIERS[cls] = copier
    return copier


def _compile(cls: type, names: list[str]) -> _Copier:
    """``copy(obj, changes)``: a new ``cls`` with ``obj``'s slots, then ``changes``."""
    setters = {name: cls.__dict__[name].__set__ for name in names}
    scope: dict[str, Any] = {"cls": cls, "new_object": object.__new__, "setters": setters}
    lines = ["def copy(obj, changes):", "    new = new_object(cls)"]
    for i, name in enumerate(names):
        # Names are the class's own fields: identifiers, checked by dataclasses.
        scope[f"set_{i}"] = setters[name]
        lines.append(f"    set_{i}(new, obj.{name})")
    lines += [
        "    for name, value in changes.items():",
        "        try:",
        "            set_ = setters[name]",
        "        except KeyError:",
        "            raise TypeError(f'{cls.__name__} has no field {name!r}') from None",
        "        set_(new, value)",
        "    return new",
    ]
    exec("\n".join(lines), scope)  # noqa: S102 - code made from field names only
    copy: _Copier = scope["copy"]
    return copy


def _replace(obj: Any, /, **changes: Any) -> Any:
    cls = type(obj)
    copy = _COPIERS[cls] if cls in _COPIERS else _copier(cls)
    if copy is None:
        return dataclasses.replace(obj, **changes)
    return copy(obj, changes)


if TYPE_CHECKING:
    from dataclasses import replace as replace
else:
    replace = _replace
