"""The app shell: home page, health check, error pages, headers and language."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from flask import abort

from supporters import create_app
from tests.conftest import make_app


def test_home_page_renders_in_the_base_layout(client: Any) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Skip to content" in page


def test_healthz_reports_the_database_answered(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_is_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    broken = make_app(f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite'}")
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "error"


@pytest.fixture
def failing_app(databases: Any) -> Any:
    """An app with routes that fail on purpose, to see each error page."""
    app = make_app(databases.create(), PROPAGATE_EXCEPTIONS=False)
    for code in (400, 403, 429):
        app.add_url_rule(f"/fail/{code}", f"fail_{code}", lambda code=code: abort(code))

    def boom() -> str:
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/fail/500", "fail_500", boom)
    return app


@pytest.mark.parametrize(
    ("path", "method", "code", "title"),
    [
        ("/fail/400", "get", 400, "Bad request"),
        ("/fail/403", "get", 403, "Not allowed"),
        ("/no-such-page", "get", 404, "Page not found"),
        ("/", "delete", 405, "Method not allowed"),
        ("/fail/429", "get", 429, "Too many requests"),
        ("/fail/500", "get", 500, "Something went wrong"),
    ],
)
def test_error_pages_are_friendly_and_in_the_layout(
    failing_app: Any, path: str, method: str, code: int, title: str
) -> None:
    response = getattr(failing_app.test_client(), method)(path)
    assert response.status_code == code
    page = response.get_data(as_text=True)
    assert f"<h1>{title}</h1>" in page
    assert "Skip to content" in page
    assert "Traceback" not in page and "secret internal detail" not in page


def test_machine_endpoints_get_json_errors(client: Any) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.get_json()["error"] == "Method not allowed"


def test_every_page_forbids_framing_and_sets_a_content_security_policy(client: Any) -> None:
    for path in ("/", "/healthz", "/missing"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"


def test_language_comes_from_the_url_and_is_remembered(client: Any) -> None:
    page = client.get("/?lang=pl").get_data(as_text=True)
    assert '<html lang="pl">' in page
    assert "Przejdź do treści" in page, "the Polish catalogue is compiled (make translations)"
    assert '<html lang="pl">' in client.get("/").get_data(as_text=True)


def test_language_comes_from_the_browser(client: Any) -> None:
    page = client.get("/", headers={"Accept-Language": "pl-PL,pl;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="pl">' in page


def test_unknown_language_falls_back_to_the_default(client: Any) -> None:
    page = client.get("/?lang=xx", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="en">' in page


def test_dotenv_file_in_the_working_directory_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(
        f"DATABASE_URL=sqlite:///{tmp_path / 'from-dotenv.db'}\nSUPPORTERS_BASE_CURRENCY=EUR\nSECRET_KEY={'k' * 40}\n"
    )
    for name in ("DATABASE_URL", "SUPPORTERS_BASE_CURRENCY", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    try:
        app = create_app()
        assert app.config["SUPPORTERS_BASE_CURRENCY"] == "EUR"
        assert "from-dotenv.db" in app.config["SQLALCHEMY_DATABASE_URI"]
    finally:
        for name in ("DATABASE_URL", "SUPPORTERS_BASE_CURRENCY", "SECRET_KEY"):
            os.environ.pop(name, None)


def test_wsgi_module_only_builds_the_app() -> None:
    source = (Path(__file__).parents[2] / "wsgi.py").read_text().strip().splitlines()
    assert [line for line in source if line] == ["from supporters import create_app", "app = create_app()"]
