"""Who may open which dashboard page: every route, every role, and objects by id."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from supporters.dashboard.access import PERMISSIONS, ROLE_PERMISSIONS
from supporters.models import StaffRole
from tests import factories

ROLES = ["anonymous", "viewer", "fundraiser", "admin"]


def dashboard_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, rule, method) of every dashboard page."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("dashboard."):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((rule.endpoint, rule.rule, method))
    return sorted(found)


def sample_ids(db: Any) -> dict[str, int]:
    """Real objects for every kind of id a dashboard address may hold."""
    from datetime import date

    from supporters.models import (
        Article,
        BankLine,
        BankStatement,
        Campaign,
        ImportMapping,
        ImportRun,
        PrivacyRequest,
        RequestKind,
    )

    person = factories.supporter()
    plan = factories.plan(person)
    gift = factories.paid_gift(person)
    cash = factories.paid_gift(person, method="cash")
    campaign = Campaign(slug="matrix", name="Matrix", goal_currency="PLN")
    db.session.add(campaign)
    db.session.flush()
    article = Article(slug="matrix-article", title="T", published_on=date(2026, 1, 1))
    db.session.add(article)
    statement = BankStatement(
        uploaded_by="cli",
        file_name="s.csv",
        format="csv",
        preset="generic",
        sha256="0" * 64,
        content=b"date,amount,currency,name,account,title,reference\n",
    )
    db.session.add(statement)
    db.session.flush()
    line = BankLine(
        statement_id=statement.id,
        identity_key="matrix-line",
        booked_on=date(2026, 1, 2),
        amount_minor=1000,
        currency="PLN",
        direction="credit",
        match="nothing",
        status="open",
    )
    db.session.add(line)
    asked = PrivacyRequest(
        kind=RequestKind.ACCESS,
        received_on=date(2026, 1, 2),
        due_on=date(2026, 2, 2),
        supporter_id=person.id,
        created_by="cli",
    )
    db.session.add(asked)
    source = ImportMapping(name="Matrix", supporter_columns={"name": "name", "email": "email"}, updated_by="cli")
    db.session.add(source)
    db.session.flush()
    run = ImportRun(
        uploaded_by="cli", file_name="m.csv", sha256="0" * 64, content=b"name,email\n", mapping_id=source.id
    )
    db.session.add(run)
    db.session.flush()
    from supporters.people import merging

    kept, gone = factories.supporter(), factories.supporter()
    merged = merging.merge(None, [kept.id, gone.id], kept.id)
    return {
        "supporter_id": person.id,
        "gift_id": gift.id,
        "offline_gift_id": cash.id,
        "plan_id": plan.id,
        "campaign_id": campaign.id,
        "article_id": article.id,
        "staff_id": factories.staff("viewer").id,
        "statement_id": statement.id,
        "line_id": line.id,
        "request_id": asked.id,
        "run_id": run.id,
        "merge_id": merged.id,
    }


def url_for_rule(rule: str, ids: dict[str, int]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        assert name in ids, f"give the matrix a sample for <{name}> in {rule}"
        return str(ids[name])

    return re.sub(r"<(?:(\w+):)?(\w+)>", fill, rule)


def test_every_dashboard_view_declares_its_permission(app: Flask) -> None:
    routes = dashboard_routes(app)
    for endpoint, _rule, _method in routes:
        view = app.view_functions[endpoint]
        assert getattr(view, "permission", None) in PERMISSIONS, endpoint
    # The routes above are the dashboard's: its pages of each permission are among them.
    assert {
        "dashboard.overview",
        "dashboard.supporters.edit_profile",
        "dashboard.gifts.export",
        "dashboard.staff.index",
    } <= {endpoint for endpoint, _rule, _method in routes}


@pytest.mark.parametrize("role", ROLES)
def test_role_route_matrix(app: Flask, db: Any, client: Any, role: str) -> None:
    ids = sample_ids(db)
    if role != "anonymous":
        assert factories.sign_in(client, factories.staff(role)).status_code == 303
    checked = 0
    for endpoint, rule, method in dashboard_routes(app):
        url = url_for_rule(rule, ids)
        response = client.open(url, method=method, data={})
        needed = app.view_functions[endpoint].permission
        if role == "anonymous":
            expected = "redirect to the sign-in page"
            ok = response.status_code == 302 and "/login" in response.headers["Location"]
        elif needed not in ROLE_PERMISSIONS[StaffRole(role)]:
            expected = "403"
            ok = response.status_code == 403
        else:
            expected = "allowed (not 403, not a sign-in redirect, no server error)"
            ok = (response.status_code not in (302, 403) and response.status_code < 500) or (
                response.status_code in (302, 303) and "/login" not in response.headers.get("Location", "")
            )
        assert ok, f"{role} {method} {url}: expected {expected}, got {response.status_code}"
        if expected.startswith("allowed") and method == "GET":
            # the sample objects are real: the page itself is shown, not a 404
            assert response.status_code == 200, f"{role} GET {url}: expected the page, got {response.status_code}"
        checked += 1
    assert checked >= 1


def test_a_viewer_cannot_reach_write_export_or_staff_pages_by_guessing(app: Flask, db: Any, client: Any) -> None:
    ids = sample_ids(db)
    factories.sign_in(client, factories.staff("viewer"))
    guarded = set()
    for endpoint, rule, method in dashboard_routes(app):
        if app.view_functions[endpoint].permission != "view":
            assert client.open(url_for_rule(rule, ids), method=method).status_code == 403, rule
            guarded.add(rule)
    assert {
        "/dashboard/staff/",
        "/dashboard/gifts/export.csv",
        "/dashboard/supporters/<int:supporter_id>/notes",
        "/dashboard/gifts/<int:gift_id>/refund",
        "/dashboard/gifts/<int:offline_gift_id>/void",
        "/dashboard/gifts/<int:offline_gift_id>/correct",
    } <= guarded


def test_unknown_ids_are_404_for_those_allowed_and_403_for_the_rest(app: Flask, db: Any, client: Any) -> None:
    missing = dict.fromkeys(
        [
            "supporter_id",
            "gift_id",
            "offline_gift_id",
            "plan_id",
            "campaign_id",
            "article_id",
            "staff_id",
            "statement_id",
            "line_id",
            "request_id",
            "run_id",
            "merge_id",
        ],
        999_999,
    )
    ids = sample_ids(db)
    factories.sign_in(client, factories.staff("admin"))
    for _endpoint, rule, method in dashboard_routes(app):
        if "<" in rule and method == "GET":
            assert client.get(url_for_rule(rule, missing)).status_code == 404, rule
            assert client.get(url_for_rule(rule, ids)).status_code == 200, f"{rule} with an object that exists"


@pytest.mark.parametrize(
    "role,hidden",
    [
        ("viewer", ["/dashboard/exports/", "/dashboard/staff/", "/dashboard/audit/"]),
        ("fundraiser", ["/dashboard/staff/", "/dashboard/audit/"]),
    ],
)
def test_the_menu_offers_only_pages_the_role_may_open(db: Any, client: Any, role: str, hidden: list[str]) -> None:
    factories.sign_in(client, factories.staff(role))
    page = client.get("/dashboard/").get_data(as_text=True)
    assert 'href="/dashboard/supporters/"' in page
    for path in hidden:
        assert f'href="{path}"' not in page
