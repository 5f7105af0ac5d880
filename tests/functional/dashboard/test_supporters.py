"""The supporters area of the dashboard: finding supporters, one supporter's story,
staff edits (audited), the CSV export, and hostile data rendered harmless."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from supporters.giving import lifecycle
from supporters.models import (
    AuditEvent,
    Campaign,
    Consent,
    GiftKind,
    GiftMethod,
    GiftStatus,
    PlanStatus,
    Supporter,
    SupporterNote,
    SupporterTag,
    utcnow,
)
from supporters.people import consent as people_consent
from supporters.people import edits
from tests import factories

LIST = "/dashboard/supporters/"
EXPORT = "/dashboard/supporters/export.csv"


def page_url(person: Supporter, action: str = "") -> str:
    return f"/dashboard/supporters/{person.id}" + (f"/{action}" if action else "")


def tagged(tag: str, **fields: Any) -> Supporter:
    """A supporter carrying `tag`, so a test can look at its own supporters only."""
    person = factories.supporter(**fields)
    person.tags.append(SupporterTag(tag=tag))
    return person


def listed_ids(client: Any, **args: Any) -> list[int]:
    """The ids of the supporters on the list page for `args`, in their order."""
    response = client.get(LIST, query_string=args)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    return [
        int(found) for found in re.findall(r'class="supporter-name">\s*<a href="/dashboard/supporters/(\d+)"', html)
    ]


def paid(person: Supporter, when: datetime, amount: int = 5000, **fields: Any) -> Any:
    """A paid gift, with the supporter's totals brought up to date."""
    from supporters.giving.totals import refresh_supporter_totals

    gift = factories.paid_gift(person, paid_at=when, amount_minor=amount, amount_base_minor=amount, **fields)
    refresh_supporter_totals(person)
    return gift


def consent(person: Supporter, granted: bool, when: datetime, purpose: str = "newsletter") -> Consent:
    from supporters.extensions import db

    row = Consent(
        supporter_id=person.id,
        purpose=purpose,
        granted=granted,
        recorded_at=when,
        source="donation form",
        wording="Send me news.",
    )
    db.session.add(row)
    db.session.flush()
    return row


def activate(plan: Any) -> Any:
    plan.status = PlanStatus.ACTIVE
    plan.started_at = utcnow()
    return plan


def audit_events(db: Any, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).filter_by(action=action).order_by(AuditEvent.id)))


def read_csv(response: Any) -> list[dict[str, str]]:
    text = response.get_data(as_text=True).lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


# --- Search -----------------------------------------------------------------------


def test_search_finds_a_name_by_its_start_ignoring_case_and_accents(db: Any, client: Any, fundraiser: Any) -> None:
    lukasz = factories.supporter(name="Łukasz Żak")
    factories.supporter(name="Anna Nowak")
    assert listed_ids(client, q="lukasz") == [lukasz.id]
    assert listed_ids(client, q="ŁUKASZ Ż") == [lukasz.id]
    assert listed_ids(client, q="Luk") == [lukasz.id]


def test_search_finds_the_start_of_any_word_of_the_name(db: Any, client: Any, fundraiser: Any) -> None:
    lukasz = factories.supporter(name="Łukasz Żak")
    factories.supporter(name="Anna Kozak")
    assert listed_ids(client, q="ZAK") == [lukasz.id]
    assert listed_ids(client, q="akasz") == [], "only the start of a word matches, not its middle"


def test_search_finds_an_email_by_its_start(db: Any, client: Any, fundraiser: Any) -> None:
    kasia = factories.supporter(name="K. L.", email="Kasia.Lis+gifts@Example.org")
    factories.supporter(name="Other", email="lis.kasia@example.org")
    assert listed_ids(client, q="KASIA.LIS+") == [kasia.id]
    assert listed_ids(client, q="gifts@") == [], "the middle of an address's own part is not a start"


def test_search_finds_the_second_half_of_a_double_barrelled_surname(db: Any, client: Any, fundraiser: Any) -> None:
    anna = factories.supporter(name="Anna Śliwińska-Kowalczyk")
    factories.supporter(name="Jan Kowal")
    factories.supporter(name="Ewa Nowak")
    assert listed_ids(client, q="Kowalczyk") == [anna.id]
    assert listed_ids(client, q="sliwinska") == [anna.id]
    assert listed_ids(client, q="śliwińska-kow") == [anna.id]
    assert listed_ids(client, q="alczyk") == [], "still only the start of a word, not its middle"


def test_search_finds_everyone_at_an_email_domain(db: Any, client: Any, fundraiser: Any) -> None:
    kasia = factories.supporter(name="Kasia Lis", email="kasia@Example.org")
    jan = factories.supporter(name="Jan Wiśniewski", email="jan.w@example.org")
    factories.supporter(name="Ola Bąk", email="ola@example.com")
    factories.supporter(name="Example Org", email="eo@elsewhere.pl")
    assert sorted(listed_ids(client, q="example.org")) == sorted([kasia.id, jan.id]) != []
    assert sorted(listed_ids(client, q="@example.org")) == sorted([kasia.id, jan.id])
    assert len(listed_ids(client, q="@EXAMPLE.")) == 3


def test_a_supporter_found_by_two_keys_is_counted_once(db: Any, client: Any, fundraiser: Any) -> None:
    """A search alone is counted in the keys' index (people.queries.count_supporters):
    "example" starts both the name and the domain of the first supporter."""
    both = factories.supporter(name="Example Person", email="someone@example.net")
    domain = factories.supporter(name="Ola Nowak", email="ola@example.com")
    html = client.get(LIST, query_string={"q": "example"}).get_data(as_text=True)
    assert sorted(listed_ids(client, q="example")) == sorted([both.id, domain.id])
    assert "Showing 1–2 of 2 supporters" in html
    html = client.get(LIST, query_string={"q": "example", "country": "PL"}).get_data(as_text=True)
    assert "No supporters match." in html


@pytest.mark.parametrize(
    "query,expected",
    [("100%", "100% Fan"), ("a_b", "a_b Corp"), ("ac/dc", "AC/DC Fan"), ("back\\sl", "back\\slash Ltd")],
)
def test_like_wildcards_in_the_search_are_taken_literally(
    db: Any, client: Any, fundraiser: Any, query: str, expected: str
) -> None:
    people = {
        name: factories.supporter(name=name)
        for name in (
            "100% Fan",
            "1000 Club",
            "a_b Corp",
            "axb Corp",
            "AC/DC Fan",
            "ACxDC Fan",
            "back\\slash Ltd",
            "backxslash",
        )
    }
    assert listed_ids(client, q=query) == [people[expected].id]


def test_a_search_of_only_spaces_or_a_very_long_one_is_harmless(db: Any, client: Any, fundraiser: Any) -> None:
    person = tagged("spaces")
    assert listed_ids(client, q="   ", tag="spaces") == [person.id]
    assert listed_ids(client, q="x" * 5000, tag="spaces") == []


# --- Filters ----------------------------------------------------------------------


def test_recurring_filter_keeps_supporters_with_an_active_plan(db: Any, client: Any, fundraiser: Any) -> None:
    giving = tagged("rec")
    activate(factories.plan(giving))
    stopped = tagged("rec")
    plan = activate(factories.plan(stopped))
    plan.status = PlanStatus.CANCELED
    not_started = tagged("rec")
    factories.plan(not_started)
    db.session.flush()
    assert listed_ids(client, tag="rec", recurring="active") == [giving.id]
    assert set(listed_ids(client, tag="rec")) == {giving.id, stopped.id, not_started.id}


def test_the_list_marks_who_gives_every_month_or_year(db: Any, client: Any, fundraiser: Any) -> None:
    giving = tagged("badge", name="Regular Giver")
    activate(factories.plan(giving))
    tagged("badge", name="Once Giver")
    html = client.get(LIST, query_string={"tag": "badge", "sort": "name"}).get_data(as_text=True)
    rows = html.split("<tbody>")[1].split("</tr>")
    assert "badge-ok" in rows[1] and "Regular Giver" in rows[1]
    assert "badge-ok" not in rows[0] and "Once Giver" in rows[0]


def test_period_filter_keeps_supporters_with_a_paid_gift_in_it_in_the_organisations_time_zone(
    db: Any, client: Any, fundraiser: Any
) -> None:
    march = tagged("period")
    paid(march, datetime(2025, 3, 10, 12, tzinfo=UTC))
    # 22:30 UTC on 31 March is already 1 April in Warsaw (the default time zone)
    april_in_warsaw = tagged("period")
    paid(april_in_warsaw, datetime(2025, 3, 31, 22, 30, tzinfo=UTC))
    failed = tagged("period")
    factories.gift(failed, status=GiftStatus.PENDING, created_at=datetime(2025, 3, 5, tzinfo=UTC))
    refunded = tagged("period")
    gift = paid(refunded, datetime(2025, 3, 12, tzinfo=UTC))
    lifecycle.apply_refund_total(gift, gift.amount_minor)  # as a refund does: the totals follow
    assert listed_ids(client, tag="period", gave_from="2025-03-01", gave_to="2025-03-31") == [march.id]
    assert listed_ids(client, tag="period", gave_from="2025-04-01") == [april_in_warsaw.id]
    assert set(listed_ids(client, tag="period", gave_to="2025-03-31")) == {march.id}


def test_country_filter_takes_an_iso_code_in_any_case(db: Any, client: Any, fundraiser: Any) -> None:
    polish = tagged("ctry", country="PL")
    tagged("ctry", country="DE")
    tagged("ctry")
    assert listed_ids(client, tag="ctry", country="pl") == [polish.id]


def test_the_tag_filter_suggests_each_tag_in_use_once_in_order(db: Any, client: Any, fundraiser: Any) -> None:
    """The suggestions are read from the tag index a tag at a time (people.queries.tags_in_use),
    not from every supporter's tags: the same list, each tag once."""
    for tag in ("volunteer", "board", "volunteer", "major donor", "press", "board"):
        tagged(tag)
    html = client.get(LIST).get_data(as_text=True)
    suggested = re.findall(
        r'<option value="([^"]*)">', html.split('<datalist id="known-tags">')[1].split("</datalist>")[0]
    )
    assert suggested == ["board", "major donor", "press", "volunteer"]


def test_tag_filter_ignores_case(db: Any, client: Any, fundraiser: Any) -> None:
    board = factories.supporter()
    board.tags.append(SupporterTag(tag="Board Member"))
    other = factories.supporter()
    other.tags.append(SupporterTag(tag="Board"))
    db.session.flush()
    assert listed_ids(client, tag="board member") == [board.id]


def test_newsletter_filter_follows_the_newest_decision(db: Any, client: Any, fundraiser: Any) -> None:
    now = utcnow()
    subscribed = tagged("news")
    consent(subscribed, False, now - timedelta(days=10))
    consent(subscribed, True, now - timedelta(days=1))
    withdrew = tagged("news")
    consent(withdrew, True, now - timedelta(days=10))
    consent(withdrew, False, now - timedelta(days=1))
    other_purpose = tagged("news")
    consent(other_purpose, True, now, purpose="surveys")
    never_asked = tagged("news")
    assert listed_ids(client, tag="news", newsletter="yes") == [subscribed.id]
    assert set(listed_ids(client, tag="news", newsletter="no")) == {withdrew.id, other_purpose.id, never_asked.id}


def test_filters_combine(db: Any, client: Any, fundraiser: Any) -> None:
    wanted = tagged("combo", name="Ewa Lis", country="PL")
    paid(wanted, datetime(2025, 6, 1, tzinfo=UTC))
    tagged("combo", name="Ewa Lis", country="DE")
    paid(tagged("combo", name="Ewa Nowak", country="PL"), datetime(2024, 6, 1, tzinfo=UTC))
    assert listed_ids(client, tag="combo", q="lis", country="PL", gave_from="2025-01-01") == [wanted.id]


@pytest.mark.parametrize(
    "arg,value",
    [
        ("country", "POL"),
        ("gave_from", "yesterday"),
        ("gave_to", "2025-02-30"),
        ("gave_from", "0001-01-01"),
        ("newsletter", "maybe"),
        ("recurring", "sometimes"),
        ("sort", "email; DROP TABLE supporter"),
        ("dir", "up"),
        ("page", "-1"),
        ("page", "9999999"),
        ("tag", "t" * 51),
    ],
)
def test_an_invalid_filter_value_is_ignored_with_a_visible_note(
    db: Any, client: Any, fundraiser: Any, arg: str, value: str
) -> None:
    person = tagged("invalid")
    args = {"tag": "invalid", arg: value}
    response = client.get(LIST, query_string=args)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'class="supporters-notes"' in html
    if arg != "tag":
        assert listed_ids(client, **args) == [person.id]


def test_a_period_typed_backwards_is_swapped_with_a_note(db: Any, client: Any, fundraiser: Any) -> None:
    """The same on every list (lib.dates.in_order): April to May, whichever end came first."""
    inside = tagged("backwards")
    paid(inside, datetime(2025, 4, 15, 12, tzinfo=UTC))
    outside = tagged("backwards")
    paid(outside, datetime(2025, 6, 15, 12, tzinfo=UTC))
    html = client.get(
        LIST, query_string={"tag": "backwards", "gave_from": "2025-05-01", "gave_to": "2025-04-01"}
    ).get_data(as_text=True)
    assert "The dates were the wrong way round; they were swapped." in html
    assert listed_ids(client, tag="backwards", gave_from="2025-05-01", gave_to="2025-04-01") == [inside.id]


# --- Sorting and pages --------------------------------------------------------------


@pytest.fixture
def sortable(db: Any) -> dict[str, Supporter]:
    """Four supporters: one who never gave, and three with different last gifts and totals."""
    people = {
        "never": tagged("sort", name="Zofia Never"),
        "old": tagged("sort", name="Łukasz Old"),
        "recent": tagged("sort", name="Karol Recent"),
        "middle": tagged("sort", name="Marek Middle"),
    }
    paid(people["old"], datetime(2024, 1, 1, tzinfo=UTC), amount=90000)
    paid(people["recent"], datetime(2025, 6, 1, tzinfo=UTC), amount=1000)
    paid(people["middle"], datetime(2025, 1, 1, tzinfo=UTC), amount=5000)
    return people


def ids(people: dict[str, Supporter], *keys: str) -> list[int]:
    return [people[key].id for key in keys]


def test_the_list_starts_with_the_latest_gift_and_who_never_gave_comes_last(
    client: Any, fundraiser: Any, sortable: dict[str, Supporter]
) -> None:
    assert listed_ids(client, tag="sort") == ids(sortable, "recent", "middle", "old", "never")


def test_sorting_by_last_gift_ascending_still_puts_who_never_gave_last(
    client: Any, fundraiser: Any, sortable: dict[str, Supporter]
) -> None:
    assert listed_ids(client, tag="sort", sort="last_gift", dir="asc") == ids(
        sortable, "old", "middle", "recent", "never"
    )


def test_sorting_by_lifetime_total_both_ways(client: Any, fundraiser: Any, sortable: dict[str, Supporter]) -> None:
    assert listed_ids(client, tag="sort", sort="total") == ids(sortable, "old", "middle", "recent", "never")
    assert listed_ids(client, tag="sort", sort="total", dir="asc") == ids(sortable, "never", "recent", "middle", "old")


def test_sorting_by_name_ignores_accents_and_defaults_to_a_to_z(
    client: Any, fundraiser: Any, sortable: dict[str, Supporter]
) -> None:
    assert listed_ids(client, tag="sort", sort="name") == ids(sortable, "recent", "old", "middle", "never")
    assert listed_ids(client, tag="sort", sort="name", dir="desc") == ids(sortable, "never", "middle", "old", "recent")


def test_column_headers_link_to_the_other_direction_and_keep_the_filters(
    client: Any, fundraiser: Any, sortable: dict[str, Supporter]
) -> None:
    html = client.get(LIST, query_string={"tag": "sort", "sort": "name"}).get_data(as_text=True)
    assert 'aria-sort="ascending"' in html
    assert "/dashboard/supporters/?tag=sort&amp;sort=name&amp;dir=desc" in html


def test_pages_hold_fifty_supporters_and_show_the_total(db: Any, client: Any, fundraiser: Any) -> None:
    everyone = [tagged("pages", name=f"Page Person {n:03d}") for n in range(120)]
    first = listed_ids(client, tag="pages", sort="name")
    third = listed_ids(client, tag="pages", sort="name", page=3)
    assert first == [person.id for person in everyone[:50]]
    assert third == [person.id for person in everyone[100:]]
    html = client.get(LIST, query_string={"tag": "pages", "sort": "name", "page": 2}).get_data(as_text=True)
    assert "Showing 51–100 of 120 supporters" in html
    assert 'rel="next"' in html and 'rel="prev"' in html


def test_a_long_list_says_more_than_the_cap_and_still_pages_on(
    db: Any, client: Any, fundraiser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past COUNT_CAP matching supporters the list stops counting (an exact count of a
    million would read every one on every page): it says "more than", pages on, and the
    last page, once reached, knows the total."""
    from supporters.people import staff_supporters as supporter_views

    monkeypatch.setattr(supporter_views, "COUNT_CAP", 3)
    monkeypatch.setattr(supporter_views, "PER_PAGE", 2)
    everyone = [tagged("capped", name=f"Capped Person {n}") for n in range(5)]
    html = client.get(LIST, query_string={"tag": "capped", "sort": "name"}).get_data(as_text=True)
    assert "Showing 1–2 of more than 3 supporters" in html
    assert "Page 1</span>" in html and 'rel="next"' in html
    assert "Add or remove a tag for the more than 3 supporters that match…" in html
    assert listed_ids(client, tag="capped", sort="name", page=2) == [person.id for person in everyone[2:4]]
    last = client.get(LIST, query_string={"tag": "capped", "sort": "name", "page": 3}).get_data(as_text=True)
    assert "Showing 5–5 of 5 supporters" in last and "Page 3 of 3" in last and 'rel="next"' not in last
    past = client.get(LIST, query_string={"tag": "capped", "page": 9}).get_data(as_text=True)
    assert "Page 9 is past the end: more than 3 supporters match." in past
    few = client.get(LIST, query_string={"tag": "capped", "q": "capped person 1"}).get_data(as_text=True)
    assert "Showing 1–1 of 1 supporters" in few and 'rel="next"' not in few


def test_a_page_past_the_end_is_empty_not_an_error(db: Any, client: Any, fundraiser: Any) -> None:
    tagged("end")
    response = client.get(LIST, query_string={"tag": "end", "page": 7})
    assert response.status_code == 200
    assert "Page 7 is past the end: 1 supporters match." in response.get_data(as_text=True)


@pytest.fixture
def statements(db: Any) -> Iterator[list[str]]:
    """The SQL statements run while the test runs."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(db.engine, "before_cursor_execute", count)


def test_the_list_runs_the_same_few_queries_however_many_supporters_a_page_holds(
    db: Any, client: Any, fundraiser: Any, statements: list[str]
) -> None:
    def queries_for(tag: str, how_many: int) -> int:
        for _ in range(how_many):
            person = tagged(tag)
            activate(factories.plan(person))
            paid(person, utcnow())
        db.session.flush()
        statements.clear()
        assert len(listed_ids(client, tag=tag)) == how_many
        return len([s for s in statements if "supporter" in s or "recurring_plan" in s])

    assert queries_for("few", 2) == queries_for("many", 50)


# --- One supporter -------------------------------------------------------------------


def test_a_supporters_page_shows_profile_gifts_plans_consents_notes_and_tags(
    db: Any, client: Any, fundraiser: Any
) -> None:
    person = factories.supporter(
        name="Ewa Lis",
        email="ewa@example.org",
        country="PL",
        language="pl",
        address_line1="ul. Długa 5",
        postal_code="00-001",
        city="Warszawa",
    )
    campaign = Campaign(slug="winter", name="Winter appeal", goal_currency="PLN")
    db.session.add(campaign)
    db.session.flush()
    paid(
        person,
        datetime(2025, 3, 1, 10, tzinfo=UTC),
        amount=12345,
        campaign_id=campaign.id,
        source_article="why-we-count",
        method=GiftMethod.BANK_TRANSFER,
    )
    factories.gift(person, amount_minor=700, currency="EUR", amount_base_minor=None, kind=GiftKind.RECURRING)
    plan = activate(factories.plan(person, amount_minor=2500, interval="year"))
    ended = factories.plan(person)
    ended.status = PlanStatus.CANCELED
    ended.cancel_reason = "Moved abroad"
    consent(person, True, datetime(2025, 3, 1, tzinfo=UTC))
    db.session.add(
        SupporterNote(
            supporter_id=person.id,
            staff_user_id=fundraiser.id,
            body="Met at the conference",
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
        )
    )
    db.session.add(SupporterNote(supporter_id=person.id, staff_user_id=fundraiser.id, body="Prefers post"))
    person.tags.append(SupporterTag(tag="major donor"))
    db.session.flush()

    response = client.get(page_url(person))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for expected in (
        "Ewa Lis",
        "ewa@example.org",
        "Poland",
        "ul. Długa 5",
        "00-001 Warszawa",
        "PLN123.45",
        "€7.00",
        "Winter appeal",
        "why-we-count",
        "bank transfer",
        "pending",
        "PLN25.00",
        "yearly",
        "Moved abroad",
        "canceled",
        "Granted",
        "Send me news.",
        "donation form",
        "major donor",
        fundraiser.email,
        "Recurring gift active",
        "Newsletter: subscribed",
    ):
        assert expected in html, expected
    assert html.index("Prefers post") < html.index("Met at the conference"), "newest note first"
    assert plan.id


def test_an_unknown_supporter_is_404(db: Any, client: Any, fundraiser: Any) -> None:
    known = factories.supporter(name="Known Person")
    assert client.get("/dashboard/supporters/999999").status_code == 404
    response = client.get(f"/dashboard/supporters/{known.id}")
    assert response.status_code == 200 and "Known Person" in response.get_data(as_text=True)


# --- Edits -----------------------------------------------------------------------------


def profile(person: Supporter, **changes: Any) -> dict[str, Any]:
    data = {
        "name": person.name,
        "email": person.email,
        "country": person.country or "",
        "language": person.language,
        "address_line1": person.address_line1 or "",
        "address_line2": person.address_line2 or "",
        "postal_code": person.postal_code or "",
        "city": person.city or "",
    }
    data.update(changes)
    return data


def test_editing_the_profile_changes_it_and_audits_old_and_new_values(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter(name="Jan Kowalski", email="jan@example.org", language="en")
    response = client.post(
        page_url(person, "profile"),
        data=profile(person, name="  Jan Żółw ", email="Jan.K@Example.org", country="PL", city="Kraków"),
    )
    assert response.status_code == 303 and response.headers["Location"] == page_url(person)
    db.session.refresh(person)
    assert (person.name, person.email, person.email_normalised, person.country, person.city) == (
        "Jan Żółw",
        "Jan.K@Example.org",
        "jan.k@example.org",
        "PL",
        "Kraków",
    )
    assert person.name_sort == "jan zolw"
    [event] = audit_events(db, "supporter.edit_profile")
    assert (event.staff_user_id, event.actor, event.target_type, event.target_id) == (
        fundraiser.id,
        fundraiser.email,
        "supporter",
        str(person.id),
    )
    assert event.details["changes"] == {
        "name": {"old": "Jan Kowalski", "new": "Jan Żółw"},
        "email": {"old": "jan@example.org", "new": "Jan.K@Example.org"},
        "country": {"old": None, "new": "PL"},
        "city": {"old": None, "new": "Kraków"},
    }
    assert "The profile was saved." in client.get(page_url(person)).get_data(as_text=True)
    assert listed_ids(client, q="zolw") == [person.id]


def test_saving_an_unchanged_profile_writes_no_audit_event(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter()
    assert client.post(page_url(person, "profile"), data=profile(person)).status_code == 303
    assert audit_events(db, "supporter.edit_profile") == []
    # a save that changes something is audited under that very action
    assert client.post(page_url(person, "profile"), data=profile(person, city="Gdańsk")).status_code == 303
    [event] = audit_events(db, "supporter.edit_profile")
    assert event.details["changes"] == {"city": {"old": None, "new": "Gdańsk"}}


def test_an_email_another_supporter_has_is_refused(db: Any, client: Any, fundraiser: Any) -> None:
    factories.supporter(email="taken@example.org")
    person = factories.supporter(email="mine@example.org")
    response = client.post(page_url(person, "profile"), data=profile(person, email=" TAKEN@example.org"))
    assert response.status_code == 400
    assert "Another supporter already has this e-mail address." in response.get_data(as_text=True)
    db.session.refresh(person)
    assert person.email == "mine@example.org"
    assert audit_events(db, "supporter.edit_profile") == []


def test_changing_only_the_case_of_ones_own_email_is_allowed(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter(email="mine@example.org")
    assert client.post(page_url(person, "profile"), data=profile(person, email="Mine@Example.org")).status_code == 303
    db.session.refresh(person)
    assert person.email == "Mine@Example.org"


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"name": "   "}, "This field is required."),
        ({"email": "not an address"}, "Enter a valid e-mail address."),
        ({"country": "XX"}, "Not a valid choice"),
        ({"language": "xx"}, "Not a valid choice"),
        ({"postal_code": "1" * 21}, "Field cannot be longer than 20 characters."),
        ({"city": "Kraków\x07"}, "This contains characters we cannot accept."),
    ],
)
def test_an_invalid_profile_is_refused_with_the_reason_shown(
    db: Any, client: Any, fundraiser: Any, changes: dict[str, str], message: str
) -> None:
    person = factories.supporter(name="Unchanged")
    response = client.post(page_url(person, "profile"), data=profile(person, **changes))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'class="error-summary"' in html
    db.session.refresh(person)
    assert person.name == "Unchanged"


def test_adding_a_note_signs_and_audits_it(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter()
    response = client.post(page_url(person, "notes"), data={"body": "  Prefers post.\nCall after 5.  "})
    assert response.status_code == 303
    [note] = db.session.scalars(select(SupporterNote).filter_by(supporter_id=person.id))
    assert (note.body, note.staff_user_id) == ("Prefers post.\nCall after 5.", fundraiser.id)
    [event] = audit_events(db, "supporter.add_note")
    assert event.details["note_id"] == note.id and event.target_id == str(person.id)
    assert "The note was added." in client.get(page_url(person)).get_data(as_text=True)


@pytest.mark.parametrize("body", ["", "   ", "x" * 2001])
def test_an_empty_or_too_long_note_is_refused(db: Any, client: Any, fundraiser: Any, body: str) -> None:
    person = factories.supporter()
    assert client.post(page_url(person, "notes"), data={"body": body}).status_code == 400
    assert db.session.scalar(select(sa.func.count()).select_from(SupporterNote)) == 0


def test_a_note_of_exactly_2000_characters_is_kept(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter()
    assert client.post(page_url(person, "notes"), data={"body": "x" * 2000}).status_code == 303
    assert db.session.scalars(select(SupporterNote.body).filter_by(supporter_id=person.id)).all() == ["x" * 2000]


def test_setting_tags_trims_and_deduplicates_ignoring_case_and_audits_the_change(
    db: Any, client: Any, fundraiser: Any
) -> None:
    person = factories.supporter()
    person.tags.append(SupporterTag(tag="old"))
    person.tags.append(SupporterTag(tag="keep"))
    db.session.flush()
    response = client.post(page_url(person, "tags"), data={"tags": " board, Board ,  major   donor,,keep, KEEP"})
    assert response.status_code == 303
    db.session.expire_all()
    assert sorted(row.tag for row in db.session.get(Supporter, person.id).tags) == ["board", "keep", "major donor"]
    [event] = audit_events(db, "supporter.set_tags")
    assert event.details["added"] == ["board", "major donor"] and event.details["removed"] == ["old"]
    assert event.details["changes"] == {"tags": {"old": ["keep", "old"], "new": ["board", "keep", "major donor"]}}


def test_a_tag_longer_than_50_characters_is_refused(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter()
    response = client.post(page_url(person, "tags"), data={"tags": "fine, " + "t" * 51})
    assert response.status_code == 400
    assert "A tag has at most 50 characters" in response.get_data(as_text=True)
    assert db.session.scalar(select(sa.func.count()).select_from(SupporterTag)) == 0


def test_clearing_all_tags_removes_them(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter()
    person.tags.append(SupporterTag(tag="old"))
    db.session.flush()
    assert db.session.scalar(select(sa.func.count()).select_from(SupporterTag)) == 1, "there was a tag to clear"
    assert client.post(page_url(person, "tags"), data={"tags": ""}).status_code == 303
    assert db.session.scalar(select(sa.func.count()).select_from(SupporterTag)) == 0


def test_an_erased_supporter_cannot_be_edited(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter(anonymised_at=utcnow())
    for action, data in (
        ("profile", profile(person, name="Back again")),
        ("notes", {"body": "x"}),
        ("tags", {"tags": "x"}),
    ):
        assert client.post(page_url(person, action), data=data).status_code == 409
    html = client.get(page_url(person)).get_data(as_text=True)
    assert f"Erased supporter #{person.id}" in html and '<form class="supporter-form' not in html


def test_a_viewer_sees_no_edit_forms_and_gets_403_on_each_edit(db: Any, client: Any, viewer: Any) -> None:
    person = factories.supporter(name="Ewa Lis")
    html = client.get(page_url(person)).get_data(as_text=True)
    assert "Ewa Lis" in html
    for action in ("profile", "notes", "tags"):
        assert page_url(person, action) not in html
        assert (
            client.post(page_url(person, action), data=profile(person) | {"body": "x", "tags": "x"}).status_code == 403
        )
    listing = client.get(LIST)
    assert EXPORT not in listing.get_data(as_text=True)
    assert listing.status_code == 200 and f'href="{page_url(person)}"' in listing.get_data(as_text=True)
    assert audit_events(db, "supporter.edit_profile") == []


# --- Export ------------------------------------------------------------------------------


def test_the_export_streams_only_the_filtered_supporters_in_the_lists_order(
    db: Any, client: Any, fundraiser: Any
) -> None:
    ewa = tagged("exp", name="Ewa Lis", email="ewa@example.org", country="PL", language="pl")
    paid(ewa, datetime(2025, 2, 1, tzinfo=UTC), amount=12345)
    ewa.tags.append(SupporterTag(tag="Board"))
    consent(ewa, True, utcnow())
    jan = tagged("exp", name="Jan Nowak", country="PL")
    tagged("exp", name="Outside", country="DE")
    response = client.post(EXPORT, query_string={"tag": "exp", "country": "PL", "sort": "name"})
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    assert [row["id"] for row in rows] == [str(ewa.id), str(jan.id)]
    first = rows[0]
    # a subscriber's one-click unsubscribe address, for the newsletter tool's List-Unsubscribe
    unsubscribe = re.fullmatch(r"https?://[^/]+/newsletter/unsubscribe/([^/?]+)", first.pop("unsubscribe_url"))
    assert unsubscribe and people_consent.unsubscribing(unsubscribe.group(1)).id == ewa.id
    assert first == {
        "id": str(ewa.id),
        "name": "Ewa Lis",
        "email": "ewa@example.org",
        "country": "PL",
        "language": "pl",
        "gift_count": "1",
        "lifetime_total": "123.45",
        "first_gift_at_utc": "2025-02-01T00:00:00Z",
        "last_gift_at_utc": "2025-02-01T00:00:00Z",
        "newsletter": "yes",
        "tags": "Board, exp",
        "created_at_utc": ewa.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert (rows[1]["newsletter"], rows[1]["lifetime_total"], rows[1]["last_gift_at_utc"]) == ("no", "0.00", "")
    assert rows[1]["unsubscribe_url"] == ""


def test_the_export_is_audited_with_its_filters_before_it_streams(db: Any, client: Any, fundraiser: Any) -> None:
    tagged("audited")
    client.post(EXPORT, query_string={"tag": "audited", "newsletter": "no", "page": "3"})
    [event] = audit_events(db, "supporters.export")
    assert event.staff_user_id == fundraiser.id
    assert event.details["filters"] == {"tag": "audited", "newsletter": "no"}
    assert event.details["rows"] == 1


def test_the_export_neutralises_spreadsheet_formulas_in_names(db: Any, client: Any, fundraiser: Any) -> None:
    tagged("formula", name="=cmd|' /C calc'!A0", email="@evil@example.org")
    [row] = read_csv(client.post(EXPORT, query_string={"tag": "formula"}))
    assert row["name"] == "'=cmd|' /C calc'!A0"
    assert row["email"] == "'@evil@example.org"


def test_the_export_adds_a_bom_only_when_asked(db: Any, client: Any, fundraiser: Any) -> None:
    tagged("bom")
    with_bom = client.post(EXPORT, query_string={"tag": "bom"}, data={"bom": "1"})
    assert with_bom.get_data(as_text=True).startswith("\ufeffid,")
    assert client.post(EXPORT, query_string={"tag": "bom"}).get_data(as_text=True).startswith("id,")


def test_the_export_leaves_an_erased_supporters_personal_fields_empty(db: Any, client: Any, fundraiser: Any) -> None:
    person = tagged("erased", name="Former Name", email="former@example.org", country="PL", anonymised_at=utcnow())
    paid(person, datetime(2025, 1, 1, tzinfo=UTC), amount=1000)
    [row] = read_csv(client.post(EXPORT, query_string={"tag": "erased"}))
    assert (row["name"], row["email"], row["country"], row["language"], row["tags"], row["newsletter"]) == ("",) * 6
    assert (row["id"], row["lifetime_total"]) == (str(person.id), "10.00")


def test_the_export_is_forbidden_to_a_viewer(db: Any, client: Any, viewer: Any) -> None:
    assert client.post(EXPORT).status_code == 403
    assert audit_events(db, "supporters.export") == []


def test_the_list_offers_the_export_of_its_current_filters(db: Any, client: Any, fundraiser: Any) -> None:
    html = client.get(LIST, query_string={"tag": "x", "country": "PL"}).get_data(as_text=True)
    assert f'method="post" action="{EXPORT}?country=PL&amp;tag=x"' in html


# --- Hostile values ------------------------------------------------------------------------

HOSTILE_NAMES = ["<script>alert(1)</script>", '" onmouseover="x', "\u202egnp.exe", "Z" * 200]


@pytest.fixture
def hostile(db: Any) -> list[Supporter]:
    people = [tagged("hostile", name=name, email=f"h{n}@example.org") for n, name in enumerate(HOSTILE_NAMES)]
    people[0].tags.append(SupporterTag(tag="<b>bold</b>"))
    db.session.add(SupporterNote(supporter_id=people[0].id, body="<img src=x onerror=alert(2)>"))
    db.session.flush()
    return people


def assert_escaped(html: str) -> None:
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'onmouseover="x' not in html
    assert "<b>bold</b>" not in html and "<img src=x" not in html


def test_hostile_names_are_escaped_on_the_list(client: Any, fundraiser: Any, hostile: list[Supporter]) -> None:
    html = client.get(LIST, query_string={"tag": "hostile"}).get_data(as_text=True)
    assert_escaped(html)
    assert "&#34; onmouseover=&#34;x" in html
    assert "<bdi>\u202egnp.exe</bdi>" in html, "right-to-left text is isolated from what follows"
    assert "Z" * 200 in html


def test_hostile_names_are_escaped_on_the_supporters_page(
    client: Any, fundraiser: Any, hostile: list[Supporter]
) -> None:
    for person in hostile:
        html = client.get(page_url(person)).get_data(as_text=True)
        assert "<script>alert(1)" not in html and 'onmouseover="x' not in html
    html = client.get(page_url(hostile[0])).get_data(as_text=True)
    assert_escaped(html)
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<bdi>\u202egnp.exe</bdi>" in client.get(page_url(hostile[2])).get_data(as_text=True)


def test_a_5000_character_hostile_name_is_refused_and_shown_back_escaped(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter()
    long_name = "<script>alert(1)</script>" + "x" * 4975
    response = client.post(page_url(person, "profile"), data=profile(person, name=long_name))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert_escaped(html)
    assert "Field cannot be longer than 200 characters." in html


def test_hostile_search_and_filter_values_are_escaped(db: Any, client: Any, fundraiser: Any) -> None:
    html = client.get(
        LIST,
        query_string={
            "q": "<script>alert(1)</script>",
            "country": "<script>alert(1)</script>",
            "tag": '" onmouseover="x',
        },
    ).get_data(as_text=True)
    assert_escaped(html)


def test_a_supporter_seen_on_the_list_can_then_be_edited(db: Any, client: Any) -> None:
    """The list loads supporters without their tags (raiseload); a page opened later in
    the same session must load the supporter afresh, not inherit that option."""
    person = factories.supporter(name="Ann Tagged")
    factories.sign_in(client, factories.staff("fundraiser"))
    assert client.get("/dashboard/supporters/").status_code == 200
    assert client.post(f"/dashboard/supporters/{person.id}/tags", data={"tags": "board"}).status_code == 303


def test_a_renamed_supporter_is_found_by_the_new_name_and_email_only(db: Any, client: Any, fundraiser: Any) -> None:
    person = factories.supporter(name="Olga Stara", email="olga.stara@example.org")
    edits.update_profile(None, person, name="Olga Nowa", email="olga.nowa@example.org")
    db.session.flush()
    assert listed_ids(client, q="nowa") == [person.id]
    assert listed_ids(client, q="olga.nowa") == [person.id]
    assert listed_ids(client, q="stara") == [] and listed_ids(client, q="olga.stara") == []


def test_the_newsletter_filter_follows_the_newest_decision_whatever_order_they_arrive_in(
    db: Any, client: Any, fundraiser: Any
) -> None:
    person = tagged("nl-order")
    consent(person, True, datetime(2026, 5, 2, tzinfo=UTC))
    consent(person, False, datetime(2026, 5, 1, tzinfo=UTC))  # older, recorded late: the grant stands
    assert listed_ids(client, tag="nl-order", newsletter="yes") == [person.id]
    consent(person, False, datetime(2026, 5, 3, tzinfo=UTC))
    assert listed_ids(client, tag="nl-order", newsletter="no") == [person.id]
    db.session.refresh(person)
    assert person.newsletter is False
