"""What the database benchmarks share: the app they drive and a database of their own.

Each benchmark runs against an empty database it makes and drops: a file in its work
folder on SQLite, or a new database on the PostgreSQL server given with `--postgres`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

SECRET_KEY = "bench-only-secret-key-not-for-production"


def make_app(url: str) -> Any:
    """The app on `url`, with CSRF and rate limits off (the benchmark is the only client)."""
    from supporters import create_app

    environ = {"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url}
    return create_app({"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "ENVIRON": environ})


def fresh_database(server: str | None, workdir: Path, label: str) -> tuple[str, Callable[[], None]]:
    """A new, empty database: its URL and a function that drops it. Without a server,
    a SQLite file `<label>.db` in `workdir` (gone with the folder)."""
    if not server:
        return f"sqlite:///{workdir / f'{label}.db'}", lambda: None
    name = f"bench_{label}_{secrets.token_hex(4)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return sa.make_url(server).set(database=name).render_as_string(hide_password=False), drop
