"""Each route's largest body: refused with a clear 413 before it is read.

The socket tests talk to a real threaded server: a 300 MB body is declared, a little
of it sent, and the 413 must come back without the rest (a server that read on would
wait for bytes that never come, and the test would fail on its socket timeout).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from supporters import PROJECT_ROOT
from supporters.core.request_sizes import DEFAULT_LIMIT, LIMITS, MIB, limit_for
from supporters.extensions import db as _db
from supporters.models import Gift
from tests.conftest import MIGRATIONS, DatabaseFactory, LiveServer, free_port, make_app, wait_for

HUGE = 300 * MIB


def test_every_route_with_a_limit_of_its_own_exists(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(LIMITS) <= endpoints
    # and nothing reads a body without one (Flask's default is no limit)
    assert app.config["MAX_CONTENT_LENGTH"] == DEFAULT_LIMIT


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/webhooks/stripe", "webhooks.stripe_webhook"),
        ("/widget/event", "widget.event"),
        ("/donate/", "donate.start"),
        ("/dashboard/login", "dashboard_auth.login"),
        ("/dashboard/articles/new", "dashboard.articles.new"),
        ("/no-such-page", None),
    ],
)
def test_a_body_over_the_routes_limit_is_refused_with_413(client: Any, path: str, endpoint: str | None) -> None:
    limit = limit_for(endpoint)
    response = client.post(path, data=b"x" * (limit + 1), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413, path


def test_the_limits_fit_each_route(client: Any) -> None:
    # A webhook a little under its limit is read (and refused for what it is, not its size).
    event = client.post("/webhooks/stripe", data=b"{" + b" " * (500 * 1024), content_type="application/json")
    assert event.status_code == 400
    beacon = client.post("/widget/event", data=b'{"type": "view"' + b" " * 1500 + b"}")
    assert beacon.status_code == 400
    # An article of the longest Markdown the form takes, every character percent-encoded (ą: %C4%85).
    article = client.post("/dashboard/articles/new", data={"body": "ą" * 200_000})
    assert article.status_code != 413
    assert LIMITS["dashboard.articles.new"] >= len("body=") + 200_000 * len("%C4%85")


def test_machines_get_the_413_as_json_and_people_as_a_page(client: Any) -> None:
    webhook = client.post("/webhooks/stripe", data=b"x" * (LIMITS["webhooks.stripe_webhook"] + 1))
    assert webhook.status_code == 413
    assert webhook.json == {
        "error": "Too much data",
        "message": "What you sent is larger than this page accepts (at most 512 kB). Please send less and try again.",
    }
    beacon = client.post("/widget/event", data=b"x" * 5000)
    assert beacon.status_code == 413 and "at most 2 kB" in beacon.json["message"]
    page = client.post("/donate/", data={"comment": "x" * DEFAULT_LIMIT})
    assert page.status_code == 413 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "Too much data" in text and "at most 64 kB" in text


def test_a_refused_donation_writes_nothing(client: Any, db: Any) -> None:
    data = {"email": "marta@example.org", "name": "Marta", "amount_choice": "2500", "comment": "x" * DEFAULT_LIMIT}
    assert client.post("/donate/", data=data).status_code == 413
    assert db.session.scalar(select(func.count()).select_from(Gift)) == 0


def test_a_chunked_body_is_held_to_the_same_limit(client: Any) -> None:
    """No Content-Length: read up to the limit, refused there (the server terminates the stream)."""
    import io

    body = io.BytesIO(b"x" * (LIMITS["widget.event"] * 4))
    response = client.post(
        "/widget/event",
        input_stream=body,
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert body.tell() <= LIMITS["widget.event"] + 64 * 1024  # read to the limit (and a buffer), no further


# --- over a real socket -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(databases: DatabaseFactory) -> Iterator[LiveServer]:
    app = make_app(databases.create())
    with app.app_context():
        upgrade(directory=MIGRATIONS)
    with LiveServer(app) as live:
        yield live
    with app.app_context():
        _db.engine.dispose()


def exchange(port: int, head: bytes, body_parts: Iterator[bytes]) -> tuple[bytes, int]:
    """Send `head`, then the parts until the server answers or stops reading;
    the response's first bytes and how many body bytes were sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        connection.setblocking(False)
        for part in body_parts:
            try:
                if connection.recv(1, socket.MSG_PEEK):
                    break  # the server has answered
            except BlockingIOError:
                pass
            try:
                sent += connection.send(part)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        connection.settimeout(30)
        response = b""
        try:
            while b"\r\n\r\n" not in response:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                response += chunk
        except ConnectionResetError:
            pass
    return response, sent


def little(total: int = 64 * 1024, size: int = 16 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def declared(path: str, length: int, content_type: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/webhooks/stripe", "application/json"),
        ("/widget/event", "text/plain"),
        ("/donate/", "application/x-www-form-urlencoded"),
        ("/dashboard/articles/new", "application/x-www-form-urlencoded"),
    ],
)
def test_a_300_mb_body_is_answered_413_without_being_read(server: LiveServer, path: str, content_type: str) -> None:
    response, sent = exchange(server.port, declared(path, HUGE, content_type), little())
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert sent <= 64 * 1024  # the rest of the 300 MB was never sent, and the server did not wait for it


def chunked_head(path: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


def chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"


def test_a_chunked_body_past_the_limit_is_answered_413_without_waiting_for_its_end(server: LiveServer) -> None:
    limit = LIMITS["webhooks.stripe_webhook"]
    # Past the limit, and never ended (no final 0-chunk): only refusing at the limit answers at all.
    response, sent = exchange(server.port, chunked_head("/webhooks/stripe"), chunks(limit + 256 * 1024))
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert sent <= limit + 256 * 1024 + 20 * 1024


# --- under gunicorn, as production runs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn(databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`gunicorn wsgi:app` started the way production starts it: in the project directory,
    which makes gunicorn read ./gunicorn.conf.py."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("SUPPORTERS_", "STRIPE_"))},
        "SECRET_KEY": "gunicorn-test-" + "x" * 32,
        "DATABASE_URL": databases.create(),
        "MAIL_FILE_DIR": str(tmp / "mail"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "wsgi:app"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail("gunicorn did not start: " + (process.stderr.read() if process.stderr else b"").decode())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_for(up, timeout=30)
    yield port
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def raw_get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    return response


def test_gunicorn_does_not_say_what_serves_the_app(gunicorn: int) -> None:
    for path in ("/healthz", "/no-such-page"):
        head = raw_get(gunicorn, path).split(b"\r\n\r\n", 1)[0].decode()
        names = [line.split(":", 1)[0].lower() for line in head.split("\r\n")[1:]]
        assert "server" not in names, head
        assert "gunicorn" not in head.lower() and "werkzeug" not in head.lower() and "python" not in head.lower()


def test_gunicorn_answers_413_to_a_300_mb_body_without_reading_it(gunicorn: int) -> None:
    response, sent = exchange(gunicorn, declared("/webhooks/stripe", HUGE), little())
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert sent <= 64 * 1024
