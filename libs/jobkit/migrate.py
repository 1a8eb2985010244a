"""Apply pending schema migrations and exit: the Kubernetes migration Job.

    python -m jobkit.migrate      (DATABASE_URL from the environment)

Services also migrate at start, under the same advisory lock; running this first keeps a
large migration out of the pods' start-up path.
"""

from __future__ import annotations

import os

from jobkit.config import CommonSettings
from jobkit.db import create_pool, migrate
from jobkit.logging import configure_logging, get_logger
from jobkit.runtime import run

log = get_logger("migrate")


async def main() -> None:
    settings = CommonSettings.from_env(os.environ)
    configure_logging("migrate", settings.log_level)
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        applied = await migrate(pool)
        log.info("migrations_done", count=len(applied))
    finally:
        await pool.close()


if __name__ == "__main__":
    run(main())
