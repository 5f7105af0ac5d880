"""Rate limits that hold in parallel.

Each test serves the app over real HTTP from a threaded server and sends its
attempts from as many threads at once, lined up on a barrier: the limits must let
through at most their number, with no 5xx, whatever the database, and whether the
counters live in this process (memory://) or in Redis.

The limiter is one object shared by every app in the process, and building an app
re-binds it: each test builds its app and uses it at once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from supporters.extensions import db as _db
from supporters.models import Campaign, Gift, StaffSession
from supporters.models import staff as staff_model
from tests import factories
from tests.conftest import MIGRATIONS, DatabaseFactory, LiveServer, make_app
from tests.functional.test_donate import seed_campaigns, valid_form

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_reachable() -> str | None:
    """None when Redis answers at REDIS_URL, else why not."""
    try:
        import redis
    except ImportError:
        return "the redis client is not installed (pip install -e '.[dev]')"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"Redis does not answer at {REDIS_URL} ({exc}); .ci/run starts it"
    return None


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings for where the counters live; Redis keys under a prefix of this test's own."""
    if request.param == "memory":
        yield {"ENVIRON": {"RATELIMIT_STORAGE_URI": "memory://"}}
        return
    reason = _redis_reachable()
    if reason and os.environ.get("CI"):
        pytest.fail(reason)  # CI starts Redis: the shared counters of production are tested there
    if reason:
        pytest.skip(reason)
    import redis

    prefix = f"supporters-test-{uuid.uuid4().hex}"
    # the storage's own prefix: Flask-Limiter keeps the first RATELIMIT_KEY_PREFIX it was given for good
    yield {"ENVIRON": {"RATELIMIT_STORAGE_URI": REDIS_URL}, "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": prefix}}
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def serve(databases: DatabaseFactory, storage: dict[str, Any]) -> Iterator[Callable[..., LiveServer]]:
    """Builds an app on a fresh, migrated database with campaigns and one staff account, and serves it."""
    started: list[tuple[Flask, LiveServer]] = []

    def build(environ: dict[str, str], **overrides: Any) -> LiveServer:
        application = make_app(
            databases.create(),
            RATELIMIT_ENABLED=True,
            ENVIRON={**storage["ENVIRON"], **environ},
            **{k: v for k, v in storage.items() if k != "ENVIRON"},
            **overrides,
        )
        with application.app_context():
            upgrade(directory=MIGRATIONS)
            seed_campaigns()
            factories.staff("admin", email="ewa@example.org")
            _db.session.commit()
        server = LiveServer(application).__enter__()
        started.append((application, server))
        return server

    yield build
    for application, server in started:
        server.__exit__(None, None, None)
        with application.app_context():
            _db.engine.dispose()


class PasswordChecks:
    """Stands in for the argon2 hasher and remembers every check: right or wrong."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.results: list[bool] = []
        self.lock = threading.Lock()
        self.on_verify: Callable[[], None] | None = None

    def verify(self, hash: str, password: str) -> bool:
        if self.on_verify:
            self.on_verify()
        try:
            result = bool(self.real.verify(hash, password))
        except Exception:
            with self.lock:
                self.results.append(False)
            raise
        with self.lock:
            self.results.append(result)
        return result

    def hash(self, password: str) -> str:
        return str(self.real.hash(password))

    @property
    def wrong(self) -> int:
        return self.results.count(False)

    @property
    def right(self) -> int:
        return self.results.count(True)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> PasswordChecks:
    spy = PasswordChecks(staff_model._hasher)
    monkeypatch.setattr(staff_model, "_hasher", spy)
    return spy


def all_at_once(url: str, bodies: list[dict[str, Any]]) -> list[int]:
    """POST every body to `url` at the same moment, each from its own thread and connection."""
    barrier = threading.Barrier(len(bodies))

    def send(body: dict[str, Any]) -> int:
        with requests.Session() as session:
            barrier.wait(timeout=60)
            response = session.post(url, allow_redirects=False, timeout=120, **body)
            return response.status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def number_of(server: LiveServer, model: type) -> int:
    with server.app.app_context():
        return int(_db.session.scalar(select(func.count()).select_from(model)) or 0)


def no_server_errors(statuses: list[int]) -> None:
    assert not [status for status in statuses if status >= 500], Counter(statuses)


# --- the donation form ---------------------------------------------------------


def test_sixty_simultaneous_gifts_from_one_address_start_at_most_ten(serve: Callable[..., LiveServer]) -> None:
    server = serve({"DONATE_LIMIT_PER_IP": "10 per hour", "DONATE_LIMIT_PER_EMAIL": "1000 per hour"})
    bodies = [{"data": valid_form(submission_id=f"s{n}", email=f"donor{n}@example.org")} for n in range(60)]

    statuses = all_at_once(f"{server.url}/donate/", bodies)

    no_server_errors(statuses)
    assert set(statuses) <= {303, 429}, Counter(statuses)
    assert 1 <= statuses.count(303) <= 10, Counter(statuses)
    assert number_of(server, Gift) == statuses.count(303)


def test_sixty_simultaneous_gifts_with_one_email_start_at_most_ten(serve: Callable[..., LiveServer]) -> None:
    server = serve(
        {"DONATE_LIMIT_PER_IP": "1000 per hour", "DONATE_LIMIT_PER_EMAIL": "10 per hour"}, SUPPORTERS_PROXIES=1
    )
    bodies = [
        {"data": valid_form(submission_id=f"s{n}"), "headers": {"X-Forwarded-For": f"10.0.0.{n + 1}"}}
        for n in range(60)
    ]

    statuses = all_at_once(f"{server.url}/donate/", bodies)

    no_server_errors(statuses)
    assert set(statuses) <= {303, 429}, Counter(statuses)
    assert 1 <= statuses.count(303) <= 10, Counter(statuses)
    assert number_of(server, Gift) == statuses.count(303)


def test_forms_sent_back_at_once_leave_the_allowance_as_it_was(serve: Callable[..., LiveServer]) -> None:
    """The friendly rule survives the atomic count: a form sent back with errors gives its hit back."""
    server = serve({"DONATE_LIMIT_PER_IP": "10 per hour", "DONATE_LIMIT_PER_EMAIL": "10 per hour"})
    refused = all_at_once(
        f"{server.url}/donate/", [{"data": valid_form(submission_id=f"bad{n}", name=None)} for n in range(10)]
    )
    started = [
        requests.post(f"{server.url}/donate/", data=valid_form(submission_id=f"ok{n}"), allow_redirects=False)
        for n in range(10)
    ]

    assert refused == [400] * 10
    assert [response.status_code for response in started] == [303] * 10
    assert number_of(server, Gift) == 10


# --- staff sign-in -------------------------------------------------------------


def guesses(count: int, right_at: int | None = None, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "data": {
                "email": "ewa@example.org",
                "password": factories.STAFF_PASSWORD if n == right_at else f"guess number {n}",
            },
            **({"headers": {"X-Forwarded-For": f"10.1.{n // 250}.{n % 250 + 1}"}} if extra.get("spread") else {}),
        }
        for n in range(count)
    ]


def test_sixty_simultaneous_guesses_from_one_address_check_at_most_ten_passwords(
    serve: Callable[..., LiveServer], checks: PasswordChecks
) -> None:
    server = serve({"LOGIN_LIMIT": "10 per 15 minutes"})

    statuses = all_at_once(f"{server.url}/login", guesses(60, right_at=30))

    no_server_errors(statuses)
    assert set(statuses) <= {303, 401, 429}, Counter(statuses)
    assert checks.wrong <= 10 and statuses.count(401) == checks.wrong, (Counter(statuses), checks.results)
    # the right password is one attempt among the sixty: it is checked only if it was let through
    assert checks.right == statuses.count(303) <= 1
    assert statuses.count(429) >= 49
    assert number_of(server, StaffSession) == statuses.count(303)


def test_sixty_simultaneous_guesses_at_one_account_from_many_addresses_check_at_most_ten(
    serve: Callable[..., LiveServer], checks: PasswordChecks
) -> None:
    server = serve({"LOGIN_LIMIT": "10 per 15 minutes"}, SUPPORTERS_PROXIES=1)

    statuses = all_at_once(f"{server.url}/login", guesses(60, spread=True))

    no_server_errors(statuses)
    assert set(statuses) <= {401, 429}, Counter(statuses)
    assert 1 <= checks.wrong <= 10 and statuses.count(401) == checks.wrong, Counter(statuses)


def test_successful_sign_ins_do_not_use_up_the_allowance(serve: Callable[..., LiveServer]) -> None:
    server = serve({"LOGIN_LIMIT": "3 per 15 minutes"})
    right = {"email": "ewa@example.org", "password": factories.STAFF_PASSWORD}

    signed_in = [requests.post(f"{server.url}/login", data=right, allow_redirects=False) for _ in range(6)]
    wrong = [
        requests.post(f"{server.url}/login", data={**right, "password": "nope"}, allow_redirects=False)
        for _ in range(4)
    ]

    assert [response.status_code for response in signed_in] == [303] * 6
    assert [response.status_code for response in wrong] == [401, 401, 401, 429]


# --- the widget's beacons --------------------------------------------------------


def test_simultaneous_beacons_count_at_most_the_limit(serve: Callable[..., LiveServer]) -> None:
    server = serve({})
    event = json.dumps({"type": "impression", "campaign": "general", "variant": "default"})

    statuses = all_at_once(
        f"{server.url}/widget/event", [{"data": event, "headers": {"Content-Type": "text/plain"}}] * 130
    )

    no_server_errors(statuses)
    assert statuses.count(429) >= 10 and len(statuses) - statuses.count(429) <= 120, Counter(statuses)


# --- the password is checked with no transaction open ------------------------------


@pytest.fixture
def committed(databases: DatabaseFactory) -> Iterator[Flask]:
    application = make_app(databases.create())
    with application.app_context():
        upgrade(directory=MIGRATIONS)
        factories.staff("admin", email="ewa@example.org")
        _db.session.add(Campaign(slug="general", name="General", goal_currency="PLN"))
        _db.session.commit()
    yield application
    with application.app_context():
        _db.engine.dispose()


@pytest.mark.parametrize("password", [factories.STAFF_PASSWORD, "a wrong one"])
@pytest.mark.parametrize("email", ["ewa@example.org", "nobody@example.org"])
def test_the_password_is_checked_outside_any_transaction(
    committed: Flask, checks: PasswordChecks, email: str, password: str
) -> None:
    """On SQLite a POST holds the write lock from its first query: a password hash
    computed inside it would stall every other write for its whole length."""
    seen: list[tuple[bool, str | None]] = []

    def probe() -> None:
        blocked: str | None = None
        url = committed.config["SQLALCHEMY_DATABASE_URI"]
        if url.startswith("sqlite"):
            other = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # another writer takes the lock at once, or is refused
                other.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                blocked = str(exc)
            finally:
                other.close()
        seen.append((_db.session().in_transaction(), blocked))

    checks.on_verify = probe
    response = committed.test_client().post("/login", data={"email": email, "password": password})

    assert response.status_code == (303 if password == factories.STAFF_PASSWORD and "ewa" in email else 401)
    assert seen == [(False, None)]


# --- the storages ----------------------------------------------------------------------


class ReadDuringCount(dict):  # type: ignore[type-arg]
    """The storage's expiry table: as a count writes a key's expiry, another thread reads the key."""

    def __init__(self, storage: Any) -> None:
        super().__init__()
        self.storage = storage
        self.reader: threading.Thread | None = None

    def __setitem__(self, key: str, value: float) -> None:
        if self.reader is None:
            self.reader = threading.Thread(target=self.storage.get, args=(key,))
            self.reader.start()
            self.reader.join(timeout=1)  # unlocked, the read runs now; locked, it waits for the count
        super().__setitem__(key, value)


def test_memory_counts_are_not_lost_to_a_read_in_another_thread() -> None:
    """limits' own MemoryStorage drops a key's first count when another thread reads the
    key before its expiry is written: under a burst, more than the limit got through."""
    from limits.storage import storage_from_string

    import supporters.lib.limits  # noqa: F401 - registers the storage for memory://

    storage = storage_from_string("memory://")
    storage.expirations = table = ReadDuringCount(storage)

    storage.incr("key", 60)
    assert table.reader is not None
    table.reader.join()

    assert storage.get("key") == 1
    assert storage.incr("key", 60) == 2


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_hit_given_back_never_goes_below_zero_nor_outlives_its_window(kind: str) -> None:
    from flask_limiter import RequestLimit
    from limits import parse

    from supporters.extensions import limiter
    from supporters.lib import limits

    if kind == "redis" and (reason := _redis_reachable()):
        pytest.skip(reason)
    prefix = f"supporters-test-{uuid.uuid4().hex}"
    app = Flask(__name__)
    app.config.update(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://" if kind == "memory" else REDIS_URL,
        RATELIMIT_STORAGE_OPTIONS={"key_prefix": prefix} if kind == "redis" else {},
    )
    limits.init_app(app)
    storage = limiter.storage
    assert isinstance(storage, limits.SerialMemoryStorage) or kind == "redis"
    item = parse("3 per hour")
    hit = RequestLimit(limiter, item, ["who", "where"], False, False)

    limiter.limiter.hit(item, "who", "where")
    limits.give_back([hit, hit])  # twice: the second finds nothing to give back
    assert storage.get(hit.key) == 0
    storage.clear(hit.key)
    limits.give_back([hit])  # the window is over: no counter below zero waits for the next one
    assert limiter.limiter.hit(item, "who", "where") and storage.get(hit.key) == 1
    assert storage.get_expiry(hit.key) > 0
    breached = RequestLimit(limiter, item, ["who", "where"], True, False)
    limits.give_back([breached])  # a limit that refused the request gives nothing back
    assert storage.get(hit.key) == 1
    storage.clear(hit.key)


# --- the donor's sign-in (/my) ----------------------------------------------------


def test_twenty_simultaneous_sign_ins_for_one_address_send_at_most_three(serve: Callable[..., LiveServer]) -> None:
    from supporters.models import DonorSignIn

    server = serve({"DONOR_SIGN_IN_LIMIT_PER_EMAIL": "3 per hour", "DONOR_SIGN_IN_LIMIT_PER_IP": "100 per hour"})
    with server.app.app_context():
        factories.supporter(email="ada@example.org")
        _db.session.commit()

    statuses = all_at_once(server.url + "/my/", [{"data": {"email": "ada@example.org"}}] * 20)

    no_server_errors(statuses)
    assert statuses.count(200) == 3 and statuses.count(429) == 17, Counter(statuses)
    assert number_of(server, DonorSignIn) == 3


def test_twenty_simultaneous_codes_from_one_connection_try_at_most_five(serve: Callable[..., LiveServer]) -> None:
    server = serve({"DONOR_SIGN_IN_LIMIT_PER_EMAIL": "100 per hour", "DONOR_SIGN_IN_LIMIT_PER_IP": "5 per hour"})
    bodies = [{"data": {"email": f"p{n}@example.org", "code": "123456"}} for n in range(20)]

    statuses = all_at_once(server.url + "/my/code", bodies)

    no_server_errors(statuses)
    assert statuses.count(400) == 5 and statuses.count(429) == 15, Counter(statuses)
