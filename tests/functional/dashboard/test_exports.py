"""Exports are POST requests with the CSRF token: a link (in an e-mail, on another site,
in an <img>) cannot make a signed-in staff member's browser download personal data, and
no export is written to the audit log that staff did not ask for.

The filters travel in the form's address, as the list shows them; the body carries the
token and the choice of a BOM.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from supporters.models import AuditEvent
from tests import factories

EXPORTS = ["/dashboard/supporters/export.csv", "/dashboard/gifts/export.csv"]
LISTS = {
    "/dashboard/supporters/export.csv": "/dashboard/supporters/",
    "/dashboard/gifts/export.csv": "/dashboard/gifts/",
}


def exports_audited(db: Any) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("%.export"))))


@pytest.fixture
def csrf(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """CSRF protection as in production (the tests' app turns it off)."""
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)


def token_from(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.mark.parametrize("export", EXPORTS)
def test_an_export_by_get_is_refused_and_not_audited(client: Any, db: Any, fundraiser: Any, export: str) -> None:
    factories.paid_gift()
    response = client.get(export + "?bom=1")
    response.get_data()  # read to the end (a streamed export holds the request open)
    assert response.status_code == 405
    assert response.mimetype != "text/csv"
    assert exports_audited(db) == []


@pytest.mark.parametrize("export", EXPORTS)
def test_an_export_without_the_csrf_token_is_refused_and_not_audited(
    client: Any, db: Any, fundraiser: Any, csrf: None, export: str
) -> None:
    factories.paid_gift()
    for data in ({}, {"csrf_token": "forged"}, {"bom": "1"}):
        response = client.post(export, data=data)
        response.get_data()
        assert response.status_code == 400, data
        assert response.mimetype != "text/csv"
    assert exports_audited(db) == []


@pytest.mark.parametrize("export", EXPORTS)
def test_the_lists_export_form_posts_its_filters_with_the_token(
    client: Any, db: Any, fundraiser: Any, csrf: None, export: str
) -> None:
    factories.paid_gift()
    query = "country=PL" if "supporters" in export else "currency=PLN"
    page = client.get(f"{LISTS[export]}?{query}").get_data(as_text=True)
    form = re.search(rf'<form[^>]*method="post"[^>]*action="{re.escape(export)}\?([^"]*)"', page)
    assert form, "the list offers its export as a form that posts"
    assert form.group(1) == query

    response = client.post(f"{export}?{query}", data={"csrf_token": token_from(page), "bom": "1"})

    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.get_data(as_text=True).startswith("\ufeff")
    [event] = exports_audited(db)
    assert event.details["bom"] is True


def test_the_exports_page_offers_each_export_as_a_form(client: Any, db: Any, fundraiser: Any, csrf: None) -> None:
    page = client.get("/dashboard/exports/").get_data(as_text=True)
    for export in EXPORTS:
        assert re.search(rf'<form[^>]*method="post"[^>]*action="{re.escape(export)}"', page), export
    assert 'href="/dashboard/supporters/export.csv' not in page and 'href="/dashboard/gifts/export.csv' not in page
    response = client.post(EXPORTS[1], data={"csrf_token": token_from(page)})
    assert response.status_code == 200 and response.get_data(as_text=True).startswith("id,")
