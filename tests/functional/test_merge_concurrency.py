"""Two staff members merging the same two supporters at the same moment, each keeping a
different one: one merge happens, the other is refused, and nothing moves twice (the
gifts, then the supporters, are locked in id order; SQLite lets one writer in at a time)."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from flask import Flask

from supporters.extensions import db
from supporters.giving.totals import refresh_supporter_totals
from supporters.lib.errors import Refused
from supporters.models import Gift, GiftStatus, Supporter, SupporterMerge, utcnow
from supporters.people import merging


def two_people(app: Flask) -> tuple[int, int]:
    with app.app_context():
        people = [Supporter(email=f"twin{n}@example.org", name="Anna Nowak") for n in (1, 2)]
        db.session.add_all(people)
        db.session.flush()
        for person in people:
            gift = Gift(supporter_id=person.id, amount_minor=1000, currency="PLN", amount_base_minor=1000)
            db.session.add(gift)
            gift.status = GiftStatus.SUCCEEDED
            gift.paid_at = utcnow()
            refresh_supporter_totals(person)
        db.session.commit()
        return people[0].id, people[1].id


def test_two_merges_of_the_same_people_at_once_make_one_merge(committed_app: Flask) -> None:
    app = committed_app
    first, second = two_people(app)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def merge_keeping(survivor: int) -> None:
        with app.app_context():
            start.wait(10)
            try:
                merging.merge(None, [first, second], survivor)
                db.session.commit()
                outcomes.append("merged")
            except Refused as refused:
                db.session.rollback()
                outcomes.append(f"refused {refused.status}")
            except sa.exc.OperationalError:  # SQLite: the database was locked by the other writer
                db.session.rollback()
                outcomes.append("busy")

    threads = [threading.Thread(target=merge_keeping, args=(survivor,)) for survivor in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes)[0] == "merged" and len(outcomes) == 2
    assert sorted(outcomes)[1] in ("refused 409", "busy")
    with app.app_context():
        [entry] = db.session.scalars(sa.select(SupporterMerge)).all()
        survivor = db.session.get(Supporter, entry.survivor_id)
        gone = db.session.get(Supporter, entry.merged_ids[0])
        assert survivor is not None and gone is not None
        assert survivor.merged_into_id is None and gone.merged_into_id == survivor.id
        assert (survivor.gift_count, survivor.lifetime_total_minor) == (2, 2000)
        assert (gone.gift_count, gone.lifetime_total_minor) == (0, 0)
        owners: Any = set(db.session.scalars(sa.select(Gift.supporter_id)))
        assert owners == {survivor.id}
