"""``replace`` for the frozen, slotted dataclasses the step path decides on.

``dataclasses.replace`` goes through the class's ``__init__``, which on a frozen class sets
every field with ``object.__setattr__``: about 6.5 µs for a ``JobRecord``. Deciding one
three-step job makes some forty copies of jobs, steps and decisions, so the orchestrator
spent about a sixth of its CPU in it. This one copies the slots through their descriptors
and sets the changed ones: half the time, and the same object.

Only for classes whose ``__init__`` does nothing but assign: every field in ``__init__``,
no ``__post_init__``, slots. Anything else goes to ``dataclasses.replace``, so a class
changed later never gets a copy its constructor would not have made.

For mypy this *is* ``dataclasses.replace``, whose calls it checks field by field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

_Getter = Callable[[object], Any]
_Setter = Callable[[object, Any], None]


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    #: Each slot's getter and setter, in field order.
    copy: tuple[tuple[_Getter, _Setter], ...]
    #: The setter of each field by name.
    setters: dict[str, _Setter]


#: Per class: its plan, or ``None`` when only ``dataclasses.replace`` is right for it.
_PLANS: dict[type, _Plan | None] = {}


def _plan(cls: type) -> _Plan | None:
    fields = dataclasses.fields(cls)
    simple = (
        "__slots__" in cls.__dict__
        and not hasattr(cls, "__post_init__")
        and all(f.init for f in fields)
        and {f.name for f in fields} == set(cls.__dict__["__slots__"])
    )
    plan = None
    if simple:
        descriptors = [(f.name, cls.__dict__[f.name]) for f in fields]
        plan = _Plan(
            copy=tuple((d.__get__, d.__set__) for _, d in descriptors),
            setters={name: d.__set__ for name, d in descriptors},
        )
    _PLANS[cls] = plan
    return plan


def _replace(obj: Any, /, **changes: Any) -> Any:
    cls = type(obj)
    plan = _PLANS[cls] if cls in _PLANS else _plan(cls)
    if plan is None:
        return dataclasses.replace(obj, **changes)
    new = object.__new__(cls)
    for get, set_ in plan.copy:
        set_(new, get(obj))
    for name, value in changes.items():
        try:
            set_ = plan.setters[name]
        except KeyError:
            raise TypeError(f"{cls.__name__} has no field {name!r}") from None
        set_(new, value)
    return new


if TYPE_CHECKING:
    from dataclasses import replace as replace
else:
    replace = _replace
