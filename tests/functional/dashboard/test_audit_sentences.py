"""The audit log reads as sentences with links to the records, in the organisation's time
zone; every action the code records has its sentence, and the raw details stay at hand."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from supporters.models import AuditEvent, StaffUser, utcnow
from supporters.staff.staff_audit_log import FILLED, SENTENCES, placeholders
from tests import factories

SOURCE = Path(__file__).resolve().parents[3] / "supporters"


def recorded_actions() -> dict[str, set[str] | None]:
    """Every action name the code records (audit.record's second argument, and the plan
    changes' _done third), with the detail names it records; None where it also passes
    **details, whose names the source does not show."""
    found: dict[str, set[str] | None] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if (owner, name) == ("audit", "record"):
                position = 1
            elif name == "_done":
                position = 2
            else:
                continue
            if len(node.args) <= position:
                continue
            argument = node.args[position]
            choices = [argument.body, argument.orelse] if isinstance(argument, ast.IfExp) else [argument]
            keywords = {keyword.arg for keyword in node.keywords if keyword.arg}
            spread = any(keyword.arg is None for keyword in node.keywords)
            for choice in choices:
                if isinstance(choice, ast.Constant) and isinstance(choice.value, str):
                    known = found.get(choice.value, set())
                    found[choice.value] = None if spread or known is None else known | keywords
    return found


def test_the_scan_finds_the_actions_it_should() -> None:
    actions = recorded_actions()
    assert {"gift.refund", "consent.granted", "consent.withdrawn", "plan.pause", "supporter.edit_note"} <= set(actions)
    assert len(actions) > 50


def test_every_action_the_code_records_has_a_sentence() -> None:
    missing = sorted(set(recorded_actions()) - set(SENTENCES))
    assert missing == [], f"add a line to staff_audit_log.SENTENCES for: {missing}"


def test_each_sentence_uses_only_what_its_action_records() -> None:
    for action, keywords in recorded_actions().items():
        unknown = placeholders(SENTENCES[action]) - FILLED - (keywords or set())
        if keywords is not None:
            assert unknown == set(), f"{action}: the sentence uses {unknown}, which the code does not record"


@pytest.fixture
def admin(client: Any, db: Any) -> StaffUser:
    user = factories.staff("admin", email="anna.nowak@example.org")
    factories.sign_in(client, user)
    db.session.execute(delete(AuditEvent))  # the sign-in's own event
    db.session.flush()
    return user


def record(db: Any, action: str, who: StaffUser | None, target: tuple[str, Any] | None = None, **details: Any) -> Any:
    row = AuditEvent(
        staff_user_id=who.id if who else None,
        actor=who.email if who else "cli",
        action=action,
        target_type=target[0] if target else None,
        target_id=str(target[1]) if target else None,
        created_at=datetime(2026, 3, 10, 12, tzinfo=UTC),
        details=details,
    )
    db.session.add(row)
    db.session.flush()
    return row


def log(client: Any, query: str = "") -> str:
    response = client.get(f"/dashboard/audit/{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_refund_reads_as_a_sentence_linking_the_staff_member_the_gift_and_the_supporter(
    db: Any, client: Any, admin: StaffUser
) -> None:
    jan = factories.supporter(name="Jan Kowalski")
    gift = factories.paid_gift(jan)
    record(
        db, "gift.refund", admin, ("gift", gift.id), amount_minor=5000, currency="PLN", reason="requested_by_customer"
    )
    page = log(client)
    assert (
        f'<a href="/dashboard/audit/?person={admin.id}"><bdi>anna.nowak@example.org</bdi></a> (staff) refunded' in page
    )
    assert "50.00" in page
    assert f'of <a href="/dashboard/gifts/{gift.id}"><bdi>gift #{gift.id}</bdi></a>' in page
    assert f'to <a href="/dashboard/supporters/{jan.id}"><bdi>Jan Kowalski</bdi></a>' in page


def test_what_staff_do_reads_back_as_sentences(db: Any, client: Any, admin: StaffUser) -> None:
    person = factories.supporter(name="Ewa Lis")
    assert client.post(f"/dashboard/supporters/{person.id}/notes", data={"body": "Call on Monday."}).status_code == 303
    page = log(client)
    assert "(staff) added a note to" in page and f'href="/dashboard/supporters/{person.id}"><bdi>Ewa Lis</bdi>' in page


@pytest.mark.parametrize(
    "target,link",
    [
        (("plan", "{plan}"), "/dashboard/plans/{plan}"),
        (("campaign", "{campaign}"), "/dashboard/campaigns/{campaign}"),
        (("staff_user", "{staff}"), "/dashboard/audit/?person={staff}"),
    ],
)
def test_plans_campaigns_and_staff_are_linked(
    db: Any, client: Any, admin: StaffUser, target: tuple[str, str], link: str
) -> None:
    from supporters.models import Campaign

    campaign = Campaign(slug="winter", name="Winter appeal", goal_currency="PLN", goal_minor=100)
    db.session.add(campaign)
    plan = factories.plan()
    other = factories.staff("viewer")
    db.session.flush()
    ids = {"plan": plan.id, "campaign": campaign.id, "staff": other.id}
    record(db, "test.anything", admin, (target[0], target[1].format(**ids)))
    assert f'href="{link.format(**ids)}"' in log(client)


def test_an_unknown_action_reads_as_a_generic_sentence(db: Any, client: Any, admin: StaffUser) -> None:
    person = factories.supporter(name="Olga Nowak")
    record(db, "something.new", admin, ("supporter", person.id), what="x")
    record(db, "other.new", None)
    page = log(client)
    assert "(staff): something.new on" in page and "Olga Nowak" in page
    assert "cli: other.new" in page


def test_the_raw_details_stay_in_a_collapsed_details(db: Any, client: Any, admin: StaffUser) -> None:
    record(db, "gift.void", admin, ("gift", 7), reason="entered twice", original={"amount_minor": 100})
    page = log(client)
    assert '<details class="adm-raw">' in page and "<summary><code>gift.void</code></summary>" in page
    assert "&#34;original&#34;" in page and "voided" in page and "entered twice" in page


def test_hostile_details_are_escaped_inside_the_sentence(db: Any, client: Any, admin: StaffUser) -> None:
    record(db, "gift.void", admin, ("gift", 7), reason="<script>alert(1)</script>")
    page = log(client)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_erased_supporter_is_named_by_number_only(db: Any, client: Any, admin: StaffUser) -> None:
    person = factories.supporter(name="Hidden Person")
    person.anonymised_at = utcnow()
    record(db, "supporter.edit_profile", admin, ("supporter", person.id), changes={"name": {"old": "a", "new": "b"}})
    page = log(client)
    assert f"Erased supporter #{person.id}" in page and "Hidden Person" not in page


def test_a_donor_acting_on_their_own_page_is_linked_to_their_record(db: Any, client: Any, admin: StaffUser) -> None:
    person = factories.supporter(name="Donor Self")
    plan = factories.plan(person)
    db.session.add(
        AuditEvent(
            actor=f"donor #{person.id}",
            action="plan.pause",
            target_type="plan",
            target_id=str(plan.id),
            created_at=utcnow(),
            details={"months": 2, "until": "2026-05-01T00:00:00+00:00"},
        )
    )
    db.session.flush()
    page = log(client)
    assert f'The donor <a href="/dashboard/supporters/{person.id}"><bdi>Donor Self</bdi></a> paused' in page
    assert "Paused for 2 month(s)" in page


def test_times_and_days_are_the_organisations(db: Any, client: Any, admin: StaffUser) -> None:
    late = record(db, "gift.void", admin, ("gift", 7), reason="late")
    late.created_at = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)  # 00:30 on 2 July in Warsaw
    db.session.flush()
    page = log(client)
    assert "2026-07-02 00:30:00" in page and "Europe/Warsaw" in page
    assert "voided" in log(client, "?from=2026-07-02&to=2026-07-02")
    assert "voided" not in log(client, "?from=2026-07-01&to=2026-07-01")


def test_a_merge_names_each_person_merged_and_links_its_record(db: Any, client: Any, admin: StaffUser) -> None:
    kept = factories.supporter(name="Jan Kowalski")
    gone = factories.supporter(name="Jan Kowalsky")
    record(db, "supporter.merge", admin, ("supporter", kept.id), merge_id=7, merged=[gone.id], changes={}, moved={})
    page = log(client)
    assert f'merged <a href="/dashboard/supporters/{gone.id}"><bdi>Jan Kowalsky</bdi></a> into' in page
    assert f'<a href="/dashboard/supporters/{kept.id}"><bdi>Jan Kowalski</bdi></a>' in page
    assert '(<a href="/dashboard/duplicates/merges/7"><bdi>merge #7</bdi></a>)' in page


def test_a_privacy_export_links_its_request_and_an_import_its_run(db: Any, client: Any, admin: StaffUser) -> None:
    person = factories.supporter(name="Ewa Lis")
    record(db, "privacy.export", admin, ("supporter", person.id), request_id=3, rows={"gifts": 2})
    record(db, "import.uploaded", admin, ("import_run", 5), file_name="crm.csv", sha256="ab")
    page = log(client)
    assert "exported the personal data of" in page
    assert '(<a href="/dashboard/privacy/3"><bdi>privacy request #3</bdi></a>)' in page
    assert 'uploaded <a href="/dashboard/imports/5"><bdi>import #5</bdi></a> (crm.csv)' in page
