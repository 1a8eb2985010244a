"""Development tooling, not the product: the whole system on one machine (``make dev``,
the end-to-end tests, the chaos suite, the benchmarks) with real Postgres, nats-server
and SeaweedFS processes. It lives outside ``jobkit`` so the wheel and the image leave it out
(``tests/unit/test_packaging.py`` checks that); nothing under ``libs/``, ``services/`` or
``jobctl/`` may import it.
"""

from devstack.servers import (
    NatsCluster,
    NatsServer,
    PostgresPair,
    PostgresServer,
    SeaweedServer,
    free_port,
)
from devstack.stack import SERVICES, ServiceProcess, Stack

__all__ = [
    "SERVICES",
    "NatsCluster",
    "NatsServer",
    "PostgresPair",
    "PostgresServer",
    "SeaweedServer",
    "ServiceProcess",
    "Stack",
    "free_port",
]
