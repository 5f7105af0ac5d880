"""The widget config's kept answers (supporters/widget/answers.py): each one is the answer
Flask gave, given again byte for byte (but its Date) to the requests that would get the
same, and every other request still goes to Flask."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.http import parse_date

from supporters.widget import service
from supporters.widget.answers import KeptConfigAnswers
from tests.conftest import DatabaseFactory, make_app

PATH = "/widget/config/baltic.json"


class FlaskCalls:
    """How many requests reached Flask behind the kept answers."""

    def __init__(self, answers: KeptConfigAnswers) -> None:
        self.count = 0
        self.flask = answers.wsgi_app

    def __call__(self, environ: Any, start_response: Any) -> Any:
        self.count += 1
        return self.flask(environ, start_response)


def answers_of(app: Flask) -> KeptConfigAnswers:
    answers = app.extensions["widget_answers"]
    assert isinstance(answers, KeptConfigAnswers)
    return answers


@pytest.fixture
def flask_calls(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskCalls]:
    """No kept config or answer from another test; the requests that reach Flask, counted."""
    answers = answers_of(app)
    calls = FlaskCalls(answers)
    monkeypatch.setattr(answers, "wsgi_app", calls)
    service.clear_cache()
    answers.kept.clear()
    yield calls
    service.clear_cache()
    answers.kept.clear()


@pytest.fixture
def campaign(db: Any) -> None:
    from supporters.models import Campaign

    db.session.add(
        Campaign(
            slug="baltic",
            name="Baltic programme",
            goal_minor=100_000,
            goal_currency="PLN",
            preset_amounts={"PLN": [2000, 5050]},
            appeal_heading="Fund the Baltic desk",
        )
    )
    db.session.flush()


def without_date(response: Any) -> tuple[str, list[tuple[str, str]], bytes]:
    headers = [(name, value) for name, value in response.headers.items() if name != "Date"]
    return response.status, headers, response.data


def assert_same_answer(kept: Any, flask: Any) -> None:
    """Status, every header in its order and the body, and a Date of its own (or none, like Flask's)."""
    assert without_date(kept) == without_date(flask)
    assert [name for name, _value in kept.headers.items()] == [name for name, _value in flask.headers.items()]
    if "Date" in flask.headers:
        assert parse_date(kept.headers["Date"]) is not None


def twice(client: Any, calls: FlaskCalls, method: str = "GET", path: str = PATH, **kwargs: Any) -> tuple[Any, Any]:
    """The same request twice: Flask's answer, then the kept one (each asserted to come from there)."""
    before = calls.count
    flask = client.open(path, method=method, **kwargs)
    assert calls.count == before + 1, "the first request is Flask's"
    kept = client.open(path, method=method, **kwargs)
    assert calls.count == before + 1, "the second is given from the kept answer"
    return flask, kept


# --- The answers kept are Flask's --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "query", "headers"),
    [
        ("GET", "", {}),
        ("GET", "?lang=pl", {}),
        ("GET", "?lang=en", {"Accept-Language": "pl"}),
        ("GET", "?lang=de", {"Accept-Language": "pl-PL,pl;q=0.9,en;q=0.5"}),
        ("GET", "", {"Accept-Language": "pl-PL,pl;q=0.9"}),
        ("GET", "", {"Origin": "https://blog.example.org"}),
        ("GET", "", {"Origin": "https://evil.example"}),
        ("HEAD", "", {}),
        ("HEAD", "?lang=pl", {}),
    ],
)
def test_a_kept_answer_is_flasks_answer_again(
    client: Any, campaign: None, flask_calls: FlaskCalls, method: str, query: str, headers: dict[str, str]
) -> None:
    flask, kept = twice(client, flask_calls, method, PATH + query, headers=headers)
    assert flask.status_code == 200
    assert_same_answer(kept, flask)


def test_the_kept_answers_keep_cors_cache_control_the_etag_and_the_security_headers(
    client: Any, campaign: None, flask_calls: FlaskCalls
) -> None:
    flask, kept = twice(client, flask_calls)
    for name in ("Access-Control-Allow-Origin", "Cache-Control", "ETag", "Content-Security-Policy", "X-Frame-Options"):
        assert kept.headers[name] == flask.headers[name]
    assert kept.headers["Access-Control-Allow-Origin"] == "*" and "public" in kept.headers["Cache-Control"]
    assert "Set-Cookie" not in kept.headers and "Cookie" not in kept.headers.get("Vary", "")
    assert kept.get_json()["campaign"] == "baltic"


def test_the_304_to_the_etag_is_kept_too(client: Any, campaign: None, flask_calls: FlaskCalls) -> None:
    etag = client.get(PATH).headers["ETag"]
    flask, kept = twice(client, flask_calls, headers={"If-None-Match": etag})
    assert flask.status_code == 304 and kept.data == b""
    assert_same_answer(kept, flask)
    head_flask, head_kept = twice(client, flask_calls, "HEAD", headers={"If-None-Match": etag})
    assert head_flask.status_code == 304
    assert_same_answer(head_kept, head_flask)


def test_the_language_of_the_header_and_of_the_address_are_kept_apart(
    client: Any, campaign: None, flask_calls: FlaskCalls
) -> None:
    """The same Polish JSON, but only the answer chosen by the header says Vary: Accept-Language."""
    by_header, _kept = twice(client, flask_calls, headers={"Accept-Language": "pl"})
    asked, kept = twice(client, flask_calls, path=PATH + "?lang=pl")
    assert by_header.data == asked.data == kept.data
    assert "Accept-Language" in by_header.headers["Vary"] and "Vary" not in kept.headers
    english, _kept = twice(client, flask_calls, headers={"Accept-Language": "de"})
    assert english.data != asked.data


def test_a_change_to_the_campaign_shows_at_once(db: Any, client: Any, campaign: None, flask_calls: FlaskCalls) -> None:
    """Kept answers last as long as the config they were made from: a change that clears it
    (campaigns/operations.py, after its commit) reaches Flask again."""
    from supporters.models import Campaign

    first, _kept = twice(client, flask_calls)
    row = db.session.query(Campaign).filter_by(slug="baltic").one()
    row.appeal_heading = "A new heading"
    db.session.commit()
    assert client.get(PATH).get_json() == first.get_json(), "kept, like the config, until cleared"
    service.clear_cache()
    changed, kept = twice(client, flask_calls)
    assert changed.get_json()["variants"][0]["heading"] == "A new heading"
    assert_same_answer(kept, changed)
    stale = client.get(PATH, headers={"If-None-Match": first.headers["ETag"]})
    assert stale.status_code == 200 and stale.headers["ETag"] == changed.headers["ETag"]


def test_the_kept_answers_are_bounded_by_campaigns_and_languages(
    client: Any, campaign: None, flask_calls: FlaskCalls, app: Flask
) -> None:
    for number in range(30):
        client.get(PATH, headers={"Accept-Language": f"x{number}, pl;q=0.{number % 9 + 1}"})
        client.get(PATH + f"?lang={'abcdefgh'[: number % 8]}")
        client.get(f"/widget/config/no-such-campaign-{number}.json")
    # (campaign, language, language from the header?, method, scheme)
    assert set(answers_of(app).kept) == {
        ("baltic", "pl", True, "GET", "http"),
        ("baltic", "en", True, "GET", "http"),
    }


# --- Every other request is Flask's --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        ({"path": "/widget/config/no-such-campaign.json"}, 404),
        ({"path": "/widget/config/Baltic.json"}, 404),
        ({"path": PATH + "/"}, 404),
        ({"path": PATH, "method": "POST"}, 405),
        ({"path": PATH, "method": "OPTIONS"}, 200),
        ({"path": PATH + "?lang=pl&theme=dark"}, 200),
        ({"path": PATH + "?lang=PL"}, 200),
        ({"path": PATH + "?lang=pl%00"}, 200),
        ({"path": PATH, "headers": {"If-None-Match": '"another-etag"'}}, 200),
        ({"path": PATH, "headers": {"If-None-Match": "*"}}, 304),
        ({"path": PATH, "headers": {"If-Modified-Since": "Wed, 02 Dec 2026 05:00:00 GMT"}}, 200),
        ({"path": PATH, "headers": {"Range": "bytes=0-10"}}, 200),
        ({"path": PATH, "data": "x" * 100}, 200),
        ({"path": PATH, "data": "x" * (65 * 1024)}, 413),
    ],
)
def test_a_request_that_may_get_another_answer_reaches_flask(
    client: Any, campaign: None, flask_calls: FlaskCalls, app: Flask, request_: dict[str, Any], status: int
) -> None:
    client.get(PATH)  # the plain answer kept
    flask_calls.count = 0
    answers = [client.open(**request_) for _ in range(2)]
    assert flask_calls.count == 2
    assert [answer.status_code for answer in answers] == [status, status]
    assert without_date(answers[0]) == without_date(answers[1])
    assert set(answers_of(app).kept) == {("baltic", "en", True, "GET", "http")}, "and nothing more is kept"


def test_a_signed_in_reader_gets_flasks_answer_and_keeps_their_session(
    client: Any, campaign: None, flask_calls: FlaskCalls, app: Flask
) -> None:
    client.get(PATH)
    with client.session_transaction() as session:
        session["donor"] = 7
    answers = [client.get(PATH) for _ in range(2)]
    assert flask_calls.count == 3
    assert all("Set-Cookie" not in answer.headers and answer.status_code == 200 for answer in answers)
    with client.session_transaction() as session:
        assert session["donor"] == 7


# --- Hosts and schemes ---------------------------------------------------------------------------------------------

PUBLIC = "https://give.example.org"
ALIAS = "www.example.org"


@pytest.fixture
def production(databases: DatabaseFactory) -> Iterator[Flask]:
    """An app with production's headers (HSTS on https) and one alias host, behind one proxy."""
    from flask_migrate import upgrade

    from supporters.extensions import db
    from supporters.models import Campaign
    from tests.conftest import MIGRATIONS

    app = make_app(
        databases.create(),
        ENVIRON={"SUPPORTERS_PUBLIC_URL": PUBLIC, "SUPPORTERS_TRUSTED_HOSTS": ALIAS, "SUPPORTERS_PROXIES": "1"},
        SUPPORTERS_ENV="production",
        SUPPORTERS_HSTS_SECONDS=31_536_000,
    )
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        db.session.add(Campaign(slug="baltic", name="Baltic", goal_currency="PLN", preset_amounts={"PLN": [2000]}))
        db.session.commit()
    service.clear_cache()
    yield app
    service.clear_cache()
    with app.app_context():
        db.engine.dispose()


def test_https_and_http_answers_are_kept_apart(production: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = FlaskCalls(answers_of(production))
    monkeypatch.setattr(answers_of(production), "wsgi_app", calls)
    client = production.test_client()
    secure, kept_secure = twice(client, calls, headers={"X-Forwarded-Proto": "https", "Host": PUBLIC[8:]})
    plain, kept_plain = twice(client, calls, headers={"X-Forwarded-Proto": "http", "Host": PUBLIC[8:]})
    assert secure.headers["Strict-Transport-Security"] and "Strict-Transport-Security" not in plain.headers
    assert_same_answer(kept_secure, secure)
    assert_same_answer(kept_plain, plain)


def test_a_host_we_do_not_serve_is_refused_though_an_answer_is_kept(
    production: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = FlaskCalls(answers_of(production))
    monkeypatch.setattr(answers_of(production), "wsgi_app", calls)
    client = production.test_client()
    twice(client, calls, headers={"X-Forwarded-Host": ALIAS, "X-Forwarded-Proto": "https"})
    refused = client.get(PATH, headers={"X-Forwarded-Host": "evil.example.org", "X-Forwarded-Proto": "https"})
    assert refused.status_code == 400 and calls.count == 2
    assert "evil.example.org" not in refused.get_data(as_text=True)
    kept = client.get(PATH, headers={"X-Forwarded-Proto": "https"})
    assert kept.status_code == 200 and calls.count == 2
    assert kept.get_json()["donate_url"] == f"{PUBLIC}/donate/"
