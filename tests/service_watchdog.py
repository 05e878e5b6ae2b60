"""The watchdog of a test run's shared services (tests/shared_services.py): started by the first
worker that starts one, in a session of its own, it sleeps until the run's controller process has
exited, then stops every service the run recorded. Run as
`python -m tests.service_watchdog DIRECTORY CONTROLLER_PID`."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.mariadb_instance import LocalMariaDB
from tests.postgres_instance import LocalPostgres
from tests.shared_services import Service, Services, wait_for_exit
from tests.unleash_instance import LocalUnleash

# the services a run shares, by the name each is recorded under
SHARED: dict[str, type[Service]] = {"postgres": LocalPostgres, "mariadb": LocalMariaDB, "unleash": LocalUnleash}


def main(directory: Path, controller: int) -> int:
    wait_for_exit(controller)
    failures = Services(directory, controller).stop_all(SHARED)
    for failure in failures:
        print(failure, file=sys.stderr)  # into watchdog.log
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
