"""Bookkeeping written after the request's commit (lib/transactions.write_after_commit):
written when the answer succeeds, never when it is an error, and a write that fails
leaves the answer as it was."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort
from sqlalchemy import text, update

from supporters.extensions import db
from supporters.lib import transactions
from supporters.models import Supporter
from tests import factories


def city_of(app: Flask, supporter_id: int) -> str | None:
    with app.app_context():
        db.session.expire_all()
        return db.session.get(Supporter, supporter_id).city


def test_written_after_a_success_and_never_after_an_error(committed_app: Flask) -> None:
    app = committed_app
    with app.app_context():
        supporter_id = factories.supporter(city="Łódź").id
        db.session.commit()

    @app.get("/_test/bookkeeping/<city>/<int:status>")
    def bookkeeping(city: str, status: int) -> Any:
        transactions.write_after_commit(update(Supporter).where(Supporter.id == supporter_id).values(city=city))
        if status != 200:
            abort(status)
        return "ok"

    client = app.test_client()
    assert client.get("/_test/bookkeeping/Gdańsk/404").status_code == 404
    assert city_of(app, supporter_id) == "Łódź"
    assert client.get("/_test/bookkeeping/Gdańsk/200").status_code == 200
    assert city_of(app, supporter_id) == "Gdańsk"


def test_a_write_that_fails_is_left_and_the_answer_stands(committed_app: Flask, caplog: Any) -> None:
    app = committed_app
    with app.app_context():
        supporter_id = factories.supporter(city="Łódź").id
        db.session.commit()

    @app.get("/_test/failing-bookkeeping")
    def failing_bookkeeping() -> Any:
        transactions.write_after_commit(update(Supporter).where(Supporter.id == supporter_id).values(city="Gdańsk"))
        transactions.write_after_commit(text("UPDATE no_such_table SET x = 1"))
        return "ok"

    response = app.test_client().get("/_test/failing-bookkeeping")
    assert response.status_code == 200 and response.get_data(as_text=True) == "ok"
    assert city_of(app, supporter_id) == "Łódź", "the writes after a commit are all or nothing"
    assert "left for a later request" in caplog.text
    with app.app_context():
        assert db.session.get(Supporter, supporter_id) is not None, "the session works after the failed write"
