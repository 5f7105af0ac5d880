"""Shared fixtures: the app is built through the factory; each test runs in a transaction
that is rolled back, on SQLite or, with TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask_babel
import pytest
import requests
import sqlalchemy as sa
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import orm

from supporters import PROJECT_ROOT, create_app
from supporters.config import normalise_database_url
from supporters.extensions import db as _db

MIGRATIONS = str(PROJECT_ROOT / "migrations")


class DatabaseFactory:
    """Creates empty databases of the kind under test, and drops them afterwards."""

    def __init__(self, tmp_dir: Path) -> None:
        self.server_url = normalise_database_url(os.environ.get("TEST_DATABASE_URL", "").strip())
        self.tmp_dir = tmp_dir
        self.created: list[str] = []

    @property
    def is_postgres(self) -> bool:
        return self.server_url.startswith("postgresql")

    def create(self) -> str:
        """A URL of a new, empty database."""
        name = f"supporters_test_{uuid.uuid4().hex[:12]}"
        if not self.is_postgres:
            return f"sqlite:///{self.tmp_dir / (name + '.db')}"
        admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        self.created.append(name)
        return sa.make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in self.created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("db"))
    yield factory
    factory.drop_all()


class RequestScopedClient(FlaskClient):
    """A test client whose every request starts with no cached signed-in user or locale.

    Tests keep an app context pushed (for the rolled-back session), so requests
    share its `g` and its session; in production each request has an app context,
    and `g`, of its own. Dropping Flask-Login's cached user makes each request
    load it anew. What the test built is committed first (into the test's outer
    transaction, still rolled back at its end), as rows a real request finds are
    committed: a request that rolls its own work back cannot take them with it.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            g.pop("_login_user", None)
            g.pop("language_from_header", None)  # nor where its language came from (lib/caching.py)
            flask_babel.refresh()  # nor the locale a request before it chose
            _db.session.commit()
        return super().open(*args, **kwargs)


def make_app(database_url: str, **overrides: object) -> Flask:
    """An app for tests: settings only from what is passed here, never from the shell."""
    environ = {"SECRET_KEY": "test-secret-key-" + "x" * 32, "DATABASE_URL": database_url}
    environ.update({k: str(v) for k, v in overrides.pop("ENVIRON", {}).items()})  # type: ignore[union-attr]
    config = {"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "ENVIRON": environ}
    config.update(overrides)
    application = create_app(config)
    application.test_client_class = RequestScopedClient
    return application


@pytest.fixture(autouse=True)
def limiter_off_again() -> Iterator[None]:
    """The rate limiter is one object shared by every app in the process: a test that
    builds an app with it on turns it on for all of them. Turn it off again after each
    test, as every other app here (the session's first) was built with it."""
    from supporters.extensions import limiter

    yield
    limiter.enabled = False


@pytest.fixture(scope="session")
def app(databases: DatabaseFactory) -> Flask:
    """The app under test, on a database migrated once for the whole run."""
    application = make_app(databases.create())
    with application.app_context():
        upgrade(directory=MIGRATIONS)
    return application


@pytest.fixture
def db(app: Flask) -> Iterator[object]:
    """The database, inside a transaction rolled back after the test.

    Code under test may commit: its commits release savepoints of the outer
    transaction, so nothing outlives the test.
    """
    with app.app_context():
        connection = _db.engine.connect()
        transaction = connection.begin()
        real_session = _db.session
        # Flask-SQLAlchemy's own Session always picks the engine; a plain one uses `bind`.
        _db.session = orm.scoped_session(
            orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint"),
            scopefunc=_app_ctx_id,
        )
        try:
            yield _db
        finally:
            _db.session.remove()
            _db.session = real_session
            transaction.rollback()
            connection.close()


@pytest.fixture
def client(app: Flask, db: object):
    return app.test_client()


@pytest.fixture
def cli(app: Flask, db: object):
    return app.test_cli_runner()


@pytest.fixture
def committed_app(databases: DatabaseFactory) -> Iterator[Flask]:
    """An app on a fresh database of its own, for tests that commit from several
    connections at once (concurrency) or from another thread (a live server)."""
    application = make_app(databases.create())
    with application.app_context():
        upgrade(directory=MIGRATIONS)
    yield application
    with application.app_context():
        _db.engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], object], timeout: float = 15.0, interval: float = 0.1) -> object:
    """Poll until `condition()` is truthy; fail the test with a clear message if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """A real localstripe server on 127.0.0.1 (through the app's wrapper), for the whole run."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "supporters.payments.localstripe_server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(f"{url}/v1/customers", auth=("sk_test_x", ""), timeout=1).ok:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(
                "localstripe did not start: " + (process.stderr.read() if process.stderr else b"").decode()[-2000:]
            )
        time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


class LiveServer:
    """The app served over real HTTP from a thread, so localstripe can deliver webhooks to it."""

    def __init__(self, app: Flask) -> None:
        from werkzeug.serving import make_server

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Every absolute link the app hands out (checkout returns, widget data) leads back here.
        app.config["SUPPORTERS_PUBLIC_URL"] = self.url
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture
def live_app(databases: DatabaseFactory, localstripe: str) -> Iterator[LiveServer]:
    """The app on a fresh database, served over HTTP, its webhooks registered with localstripe."""
    from supporters.payments import gateway

    application = make_app(databases.create(), ENVIRON={"LOCALSTRIPE_URL": localstripe}, WTF_CSRF_ENABLED=True)
    with application.app_context():
        upgrade(directory=MIGRATIONS)
    with LiveServer(application) as server:
        with application.app_context():
            gateway().register_webhook(f"{server.url}/webhooks/stripe")  # type: ignore[attr-defined]
        yield server
    with application.app_context():
        _db.engine.dispose()


@pytest.fixture
def fake_stripe(app: Flask) -> Iterator[Any]:
    """The app's gateway swapped for a FakeGateway (tests/fakes.py) for one test."""
    from tests.fakes import FakeGateway

    fake, real = FakeGateway(), app.extensions["payments"]
    app.extensions["payments"] = fake
    try:
        yield fake
    finally:
        app.extensions["payments"] = real
