"""Many submissions at the same moment: a double click (or fifty) is still one gift.

Each test runs on a database of its own that requests really commit to, with one
test client per thread, all lined up on a barrier and released together.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from supporters.extensions import db as _db
from supporters.models import Gift, GiftStatus, PlanInterval, RecurringPlan, Supporter
from tests.functional.test_donate import parse_page, seed_campaigns


@pytest.fixture
def shop(committed_app: Flask) -> Iterator[Flask]:
    """The committed app with the campaigns in place."""
    with committed_app.app_context():
        seed_campaigns()
        _db.session.commit()
    yield committed_app


def form_from_page(application: Flask, **values: str) -> MultiDict[str, str]:
    """GET the form once, as a donor would, and fill it in."""
    response = application.test_client().get("/donate/")
    assert response.status_code == 200
    form = parse_page(response.get_data(as_text=True)).submitted()
    assert form.get("submission_id")
    for name, value in {"email": "ada@example.org", "name": "Ada Lovelace", **values}.items():
        form[name] = value
    return form


def submit_together(application: Flask, forms: list[MultiDict[str, str]]) -> list[tuple[int, str | None]]:
    """POST every form at the same moment, each from its own thread and client."""
    barrier = threading.Barrier(len(forms))

    def submit(form: MultiDict[str, str]) -> tuple[int, str | None]:
        client = application.test_client()
        barrier.wait(timeout=60)
        response = client.post("/donate/", data=form)
        return response.status_code, response.headers.get("Location")

    with ThreadPoolExecutor(max_workers=len(forms)) as pool:
        return list(pool.map(submit, forms))


def rows(application: Flask, model: type) -> list[Any]:
    with application.app_context():
        return list(_db.session.scalars(select(model).order_by(model.id)))  # type: ignore[attr-defined]


def number_of(application: Flask, model: type) -> int:
    with application.app_context():
        return int(_db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_fifty_identical_one_time_submissions_make_one_gift(shop: Flask) -> None:
    form = form_from_page(shop, frequency="one_time")

    answers = submit_together(shop, [form] * 50)

    assert {status for status, _ in answers} == {303}
    locations = {location for _, location in answers}
    assert len(locations) == 1
    [gift] = rows(shop, Gift)
    assert gift.status is GiftStatus.PENDING and gift.recurring_plan_id is None
    assert locations == {gift.checkout_url}
    assert number_of(shop, Supporter) == 1
    assert number_of(shop, RecurringPlan) == 0


def test_fifty_identical_monthly_submissions_make_one_gift_and_one_plan(shop: Flask) -> None:
    form = form_from_page(shop, frequency="monthly")

    answers = submit_together(shop, [form] * 50)

    assert {status for status, _ in answers} == {303}
    assert len({location for _, location in answers}) == 1
    [gift] = rows(shop, Gift)
    [plan] = rows(shop, RecurringPlan)
    assert gift.recurring_plan_id == plan.id
    assert plan.interval is PlanInterval.MONTH
    assert number_of(shop, Supporter) == 1


def test_twenty_donors_at_once_make_twenty_gifts_and_twenty_supporters(shop: Flask) -> None:
    forms = [form_from_page(shop, email=f"donor{n}@example.org", name=f"Donor {n}") for n in range(20)]

    answers = submit_together(shop, forms)

    assert [status for status, _ in answers] == [303] * 20
    assert len({location for _, location in answers}) == 20
    gifts = rows(shop, Gift)
    assert len(gifts) == 20
    supporters = rows(shop, Supporter)
    assert sorted(s.email for s in supporters) == sorted(f"donor{n}@example.org" for n in range(20))
    assert {g.supporter_id for g in gifts} == {s.id for s in supporters}


def test_ten_different_gifts_at_once_from_one_new_email_make_one_supporter(shop: Flask) -> None:
    # Ten forms (ten tabs, ten submission ids), the same new address written in different ways.
    spellings = ["newcomer@example.org", "Newcomer@Example.org", " NEWCOMER@example.ORG "]
    forms = [
        form_from_page(shop, email=spellings[n % 3], amount_choice="other", custom_amount=str(10 + n))
        for n in range(10)
    ]

    answers = submit_together(shop, forms)

    assert [status for status, _ in answers] == [303] * 10
    [supporter] = rows(shop, Supporter)
    assert supporter.email_normalised == "newcomer@example.org"
    gifts = rows(shop, Gift)
    assert sorted(g.amount_minor for g in gifts) == [(10 + n) * 100 for n in range(10)]
    assert {g.supporter_id for g in gifts} == {supporter.id}
