"""A NUL character in a query string is dropped before any view reads it.

PostgreSQL refuses NUL (U+0000) in a text parameter, so a NUL that reached a
filter's query used to be a server error; the app's request class removes it
from every query-string key and value, once, for every page. Other control
characters are left as they came: the database takes them, and the views'
own checks report them (see supporters/web.py for why).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask, request
from werkzeug.datastructures import ImmutableMultiDict

from supporters.lib import web
from supporters.models import Article, AuditEvent, Campaign, Frequency
from supporters.people import edits
from tests import factories

# --- Every page with filters, with NUL in its query values ---------------------------------------

#: (path, query) asked by a signed-in admin; each is a page that reads the query string
DASHBOARD_QUERIES = [
    ("/dashboard/", "months=%00"),
    ("/dashboard/supporters/", "q=%00"),
    ("/dashboard/supporters/", "q=Ada%00"),
    ("/dashboard/supporters/", "q=ada%00%40example.org"),
    ("/dashboard/supporters/", "tag=%00"),
    ("/dashboard/supporters/", "tag=donor%00"),
    ("/dashboard/supporters/", "country=%00"),
    ("/dashboard/supporters/", "country=P%00L"),
    ("/dashboard/supporters/", "recurring=%00&newsletter=%00&sort=%00&dir=%00"),
    ("/dashboard/supporters/", "gave_from=%00&gave_to=2026-01-0%001"),
    ("/dashboard/supporters/", "page=%00"),
    ("/dashboard/supporters/export.csv", "q=Ada%00&tag=donor%00&country=P%00L"),
    ("/dashboard/gifts/", "article=%00"),
    ("/dashboard/gifts/", "article=energy%00"),
    ("/dashboard/gifts/", "status=%00"),
    ("/dashboard/gifts/", "status=succeeded%00&status=%00pending"),
    ("/dashboard/gifts/", "method=%00&kind=%00"),
    ("/dashboard/gifts/", "campaign=%00&supporter_id=1%00"),
    ("/dashboard/gifts/", "currency=PL%00N&amount_min=1%00&amount_max=%00"),
    ("/dashboard/gifts/", "date_from=%00&date_to=2026-01-0%001"),
    ("/dashboard/gifts/", "page=%00"),
    ("/dashboard/gifts/export.csv", "article=energy%00&status=%00&currency=PL%00N"),
    ("/dashboard/gifts/new", "supporter_id=%00"),
    ("/dashboard/audit/", "person=%00"),
    ("/dashboard/audit/", "person=cli%00"),
    ("/dashboard/audit/", "person=1%00"),
    ("/dashboard/audit/", "action=%00"),
    ("/dashboard/audit/", "action=staff.%00"),
    ("/dashboard/audit/", "action=staff%00*"),
    ("/dashboard/audit/", "action=staff.login%00"),
    ("/dashboard/audit/", "from=%00&to=%00&page=%00"),
    ("/dashboard/plans/", "status=%00"),
    ("/dashboard/plans/", "status=active%00&page=%00"),
    ("/dashboard/campaigns/", "q=%00&page=%00"),
    ("/dashboard/articles/", "from=%00&to=%00"),
    ("/dashboard/articles/", "from=2026-01-0%001"),
    ("/dashboard/staff/", "q=%00"),
    ("/dashboard/exports/", "q=%00"),
    # NUL in keys, a key of NUL alone, a raw (unescaped) NUL byte
    ("/dashboard/supporters/", "q%00=Ada&%00=%00&t%00ag=donor"),
    ("/dashboard/audit/", "per%00son=%00cli"),
]

DONATE_FORM = "<h1>Support our work</h1>"
TO_SIGN_IN = "/login?next="

#: (path, query, status, shows) asked by someone not signed in: the status the page answers
#: and a text of its own it shows (in the Location of a redirect), so a path that has gone
#: missing is not taken for a page that coped
PUBLIC_QUERIES = [
    ("/", "lang=%00", 200, "<h1>Independent analysis, paid for by its readers</h1>"),
    ("/articles/", "tag=%00", 200, "<h1>Articles</h1>"),
    ("/articles/", "tag=energy%00", 200, "<h1>Articles tagged “energy”</h1>"),
    # "" is no page number: the list's own 404 (page=0 and page=two are too, see test_articles)
    ("/articles/", "page=%00&tag=%00", 404, "<h1>Page not found</h1>"),
    ("/donate/", "amount=%00", 200, DONATE_FORM),
    ("/donate/", "amount=5%000&currency=PL%00N", 200, DONATE_FORM),
    ("/donate/", "amount=50&currency=%00&frequency=%00", 200, DONATE_FORM),
    ("/donate/", "campaign=%00&src=%00&article=%00&variant=%00", 200, DONATE_FORM),
    ("/donate/", "campaign=gen%00eral&utm_source=%00&utm_medium=%00&utm_campaign=%00&lang=%00", 200, DONATE_FORM),
    # no such session: the thank-you page's own 404, not the router's
    ("/donate/thanks", "session_id=%00", 404, "We could not find this gift."),
    ("/donate/cancelled", "session_id=cs%00x", 303, "/donate/"),
    ("/widget/frame/general", "article=%00&theme=%00&lang=p%00l", 200, 'data-campaign="general"'),
    ("/widget/config/general.json", "lang=%00", 200, '"presets"'),
    ("/login", "next=%00", 200, "<h1>Staff sign-in</h1>"),
    # the dashboard sends visitors to sign in, whatever the query holds
    ("/dashboard/supporters/", "q=%00&tag=%00", 302, TO_SIGN_IN),
    ("/dashboard/gifts/", "article=%00", 302, TO_SIGN_IN),
    ("/dashboard/audit/", "person=%00&action=%00", 302, TO_SIGN_IN),
]


@pytest.fixture
def rows(db: Any) -> dict[str, Any]:
    """Something for each list to show: a tagged supporter with a gift and a plan, a campaign,
    an article and audit events, so the filters run real queries over real rows."""
    campaign = Campaign(
        slug="general",
        name="General support",
        goal_currency="PLN",
        preset_amounts={"PLN": [2000, 5000]},
        default_frequency=Frequency.ONE_TIME,
    )
    db.session.add(campaign)
    db.session.flush()
    ada = factories.supporter(name="Ada Lovelace", email="ada@example.org", country="PL")
    edits.set_tags(None, ada, ["donor"])
    gift = factories.paid_gift(ada, campaign_id=campaign.id, source_article="energy")
    plan = factories.plan(ada)
    article = Article(slug="energy", title="Energy", published_on=datetime(2026, 1, 1).date())
    db.session.add(article)
    db.session.add(AuditEvent(action="staff.login", actor="cli", created_at=datetime(2026, 1, 2, 12, tzinfo=UTC)))
    db.session.flush()
    return {"ada": ada, "campaign": campaign, "gift": gift, "plan": plan, "article": article}


def _ids(cases: list[tuple[Any, ...]]) -> list[str]:
    return [f"{path}?{query}" for path, query, *_ in cases]


@pytest.mark.parametrize(("path", "query"), DASHBOARD_QUERIES, ids=_ids(DASHBOARD_QUERIES))
def test_nul_in_a_dashboard_query_is_never_a_server_error(client: Any, rows: Any, path: str, query: str) -> None:
    assert factories.sign_in(client, factories.staff("admin")).status_code == 303

    # The exports are POST forms (with the filters in their address); the rest are pages.
    response = client.open(f"{path}?{query}", method="POST" if path.endswith(".csv") else "GET")

    assert response.status_code < 500, response.get_data(as_text=True)[-2000:]
    assert response.status_code not in (302, 401, 403), "the admin should have been let in"
    # The page itself answered (a 404 means the path above is wrong), in the dashboard's layout or as its CSV.
    assert response.status_code in (200, 400), response.status_code
    assert response.mimetype == "text/csv" or '<div class="staff-bar">' in response.get_data(as_text=True)


@pytest.mark.parametrize(("path", "query", "status", "shows"), PUBLIC_QUERIES, ids=_ids(PUBLIC_QUERIES))
def test_nul_in_a_public_query_is_never_a_server_error(
    client: Any, rows: Any, path: str, query: str, status: int, shows: str
) -> None:
    response = client.get(f"{path}?{query}")

    assert response.status_code < 500, response.get_data(as_text=True)[-2000:]
    assert response.status_code == status
    answer = response.headers.get("Location", "") if status in (302, 303) else response.get_data(as_text=True)
    assert shows in answer
    # and the path is one of the app's pages (a bare 404 above could otherwise be a path that has gone)
    assert "There is no page at this address" not in client.get(path).get_data(as_text=True)


def test_a_raw_nul_byte_in_the_query_string_is_dropped_too(client: Any, rows: Any) -> None:
    factories.sign_in(client, factories.staff("admin"))

    response = client.get("/dashboard/supporters/", environ_overrides={"QUERY_STRING": "q=Ada\x00"})

    assert response.status_code == 200
    assert "ada@example.org" in response.get_data(as_text=True)


#: every query-string name some page reads (and one none does)
QUERY_NAMES = [
    "q",
    "tag",
    "country",
    "recurring",
    "gave_from",
    "gave_to",
    "newsletter",
    "sort",
    "dir",
    "page",
    "status",
    "date_from",
    "date_to",
    "method",
    "kind",
    "campaign",
    "supporter_id",
    "currency",
    "amount_min",
    "amount_max",
    "article",
    "person",
    "action",
    "from",
    "to",
    "months",
    "bom",
    "amount",
    "frequency",
    "src",
    "variant",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "lang",
    "session_id",
    "next",
    "theme",
    "x",
]
JUNK = "&".join(f"{name}=a%00b&{name}=%00" for name in QUERY_NAMES)


def _get_routes(app: Flask, ids: dict[str, Any]) -> list[str]:
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
            continue
        paths.append(re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: str(ids.get(m.group(2), "x")), rule.rule))
    return sorted(paths)


@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_every_page_takes_nul_in_every_query_name(app: Flask, client: Any, rows: Any, who: str) -> None:
    """A sweep: new pages and new filters are covered without being listed here."""
    ids = {
        "supporter_id": rows["ada"].id,
        "gift_id": rows["gift"].id,
        "plan_id": rows["plan"].id,
        "campaign_id": rows["campaign"].id,
        "article_id": rows["article"].id,
        "staff_id": 1,
        "slug": "general",
        "session_id": "cs_none",
    }
    if who == "admin":
        user = factories.staff("admin")
        ids["staff_id"] = user.id
        factories.sign_in(client, user)
    failures = []
    answered = {}
    for path in _get_routes(app, ids):
        status = client.get(f"{path}?{JUNK}").status_code
        answered[path] = status
        if status >= 500:
            failures.append(f"{path}: {status}")
    assert not failures
    # The sweep really reached pages, and they read the junk as if it were not there.
    shown = {path for path, status in answered.items() if status == 200}
    expected = {"/donate/", "/widget/frame/general", "/widget/config/general.json"}
    if who == "admin":
        expected |= {
            "/dashboard/supporters/",
            f"/dashboard/supporters/{rows['ada'].id}",
            "/dashboard/gifts/",
            "/dashboard/plans/",
            "/dashboard/staff/",
        }
    else:
        expected |= {"/login"}
    assert expected <= shown, sorted(expected - shown)


def test_the_filters_read_the_value_without_its_nul(client: Any, rows: Any) -> None:
    """Dropped, not refused: what is left filters as if it had been typed alone."""
    factories.sign_in(client, factories.staff("admin"))

    assert "ada@example.org" in client.get("/dashboard/supporters/?q=Ada%00").get_data(as_text=True)
    assert "ada@example.org" in client.get("/dashboard/supporters/?tag=do%00nor").get_data(as_text=True)
    gifts = client.get("/dashboard/gifts/?article=energy%00").get_data(as_text=True)
    assert "PLN50.00" in gifts and "gift-filter-notes" not in gifts
    audit = client.get("/dashboard/audit/?person=cli%00&action=staff.log%00in").get_data(as_text=True)
    assert "staff.login" in audit


# --- The request class itself ----------------------------------------------------------------------


def test_the_app_uses_the_request_class(app: Flask) -> None:
    assert app.request_class is web.Request


def test_args_drop_nul_from_keys_and_values_and_keep_a_multidict(app: Flask) -> None:
    with app.test_request_context("/?status=paid%00&st%00atus=%00refunded&%00=x&q=a%00%00b&empty="):
        args = request.args

        assert isinstance(args, ImmutableMultiDict)
        assert args.getlist("status") == ["paid", "refunded"]
        assert args.get("") == "x"
        assert args["q"] == "ab"
        assert args["empty"] == ""
        assert list(args.items(multi=True)) == [
            ("status", "paid"),
            ("status", "refunded"),
            ("", "x"),
            ("q", "ab"),
            ("empty", ""),
        ]
        assert request.args is args, "parsed once per request"
        assert request.values.getlist("status") == ["paid", "refunded"]
        with pytest.raises(TypeError):
            args["q"] = "changed"  # type: ignore[index]


def test_other_control_characters_and_spacing_are_kept(app: Flask) -> None:
    """Tab, line breaks and the rest reach the views as sent: their checks decide (and say so)."""
    with app.test_request_context("/?q=a%09b%0Ac%0Dd&x=%01%1B%7F&y=%C2%85&nul=%00%01"):
        assert request.args["q"] == "a\tb\nc\rd"
        assert request.args["x"] == "\x01\x1b\x7f"
        assert request.args["y"] == "\x85"
        assert request.args["nul"] == "\x01"


def test_a_query_without_nul_is_not_rebuilt(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(_args: Any) -> Any:
        raise AssertionError("rebuilt a query that held no NUL")

    monkeypatch.setattr(web, "_without_nul", fail)
    with app.test_request_context("/?q=Ada+Lovelace&status=a&status=b&pct=%2500&odd=%zz"):
        assert request.args.getlist("status") == ["a", "b"]
        assert request.args["q"] == "Ada Lovelace"
        assert request.args["pct"] == "%00", "an escaped percent sign is text, not a NUL"
        assert request.args["odd"] == "%zz"


def test_bytes_that_are_no_utf8_stay_percent_encoded(app: Flask, client: Any, rows: Any) -> None:
    """Sent raw (browsers escape them), they used to fail even the error page."""
    with app.test_request_context("/", environ_overrides={"QUERY_STRING": "tag=\xff&q=a%00\xfe%ff"}):
        assert request.args["tag"] == "%FF"
        assert request.args["q"] == "a%FE%FF"

    assert client.get("/articles/", environ_overrides={"QUERY_STRING": "tag=\xff"}).status_code == 200


def test_form_values_are_left_to_the_form_checks(client: Any, rows: Any) -> None:
    """Forms say what is wrong with a field rather than changing what was typed."""
    factories.sign_in(client, factories.staff("admin"))
    ada = rows["ada"]

    response = client.post(f"/dashboard/supporters/{ada.id}/notes", data={"body": "Called\x00 her"})

    assert response.status_code == 400
    assert "This contains characters we cannot accept." in response.get_data(as_text=True)
