"""The handlers this worker runs: one per (job type, step) of the catalogue, each from
its job type's ``jobtypes/<name>/steps.py``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import cast

from jobkit.catalog import Catalog
from stepkit import ChatProvider, Handler

#: What a ``steps`` module provides: its handlers by step name, writing through ``provider``.
StepsFactory = Callable[[ChatProvider], Mapping[str, Handler]]


class Registry:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._handlers: dict[tuple[str, str], Handler] = {}

    @classmethod
    def of(cls, catalog: Catalog, provider: ChatProvider) -> Registry:
        """Every handler of every job type in ``catalog``; refuses a catalogue with a step
        no handler runs, so a worker never starts unable to finish a job."""
        registry = cls(catalog)
        for name in catalog:
            factory = cast(StepsFactory, import_module(f"jobtypes.{name}.steps").handlers)
            registry.register_steps(name, factory(provider))
        if missing := registry.missing():
            raise RuntimeError(f"no handler for: {', '.join(missing)}")
        return registry

    def register_steps(self, job_type: str, handlers: Mapping[str, Handler]) -> None:
        """Register a job type's handlers, by step name."""
        for step, handler in handlers.items():
            self.register(job_type, step, handler)

    def register(self, job_type: str, step: str, handler: Handler) -> None:
        spec = self._catalog.get(job_type)
        if spec is None or step not in spec.every_step_name:
            raise ValueError(f"{job_type}.{step} is not in the job-type catalogue")
        self._handlers[(job_type, step)] = handler

    def get(self, job_type: str, step: str) -> Handler | None:
        return self._handlers.get((job_type, step))

    def missing(self) -> list[str]:
        """Catalogue steps without a handler."""
        return [
            f"{t.name}.{s}"
            for t in self._catalog.values()
            for s in t.every_step_name
            if (t.name, s) not in self._handlers
        ]
