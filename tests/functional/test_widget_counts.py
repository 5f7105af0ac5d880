"""Beacons are added up in each process and written in batches (supporters/widget/counts.py):
every beacon answered 204 is counted once, whichever process writes it and whenever."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from supporters import PROJECT_ROOT
from supporters.extensions import db as _db
from supporters.models import AppealVariant, Article, Campaign, WidgetStat
from supporters.widget import counts as widget_counts
from supporters.widget import stats
from supporters.widget.counts import Counts, counts, flush_counts
from tests.conftest import wait_for
from tests.functional.test_widget import fresh_widget_cache  # noqa: F401  (autouse: no state from another test)

TODAY = date(2026, 12, 2)


@pytest.fixture
def campaign(db: Any) -> Campaign:
    row = Campaign(
        slug="baltic",
        name="Baltic programme",
        goal_currency="PLN",
        variants=[AppealVariant(key="a", heading="A", text="", weight=1)],
    )
    db.session.add(row)
    db.session.add(Article(slug="grid-story", title="Grid", published_on=date(2026, 11, 1), published=True))
    db.session.flush()
    return row


def send(client: Any, kind: str, article: str = "grid-story", variant: str = "a", campaign: str = "baltic") -> int:
    event = json.dumps({"type": kind, "campaign": campaign, "article": article, "variant": variant})
    return int(client.post("/widget/event", data=event, content_type="text/plain").status_code)


def totals(db: Any) -> tuple[int, int]:
    impressions, clicks = db.session.execute(
        select(func.coalesce(func.sum(WidgetStat.impressions), 0), func.coalesce(func.sum(WidgetStat.clicks), 0))
    ).one()
    return int(impressions), int(clicks)


def test_beacons_wait_in_the_process_and_all_are_counted_after_a_flush(
    db: Any, client: Any, campaign: Campaign
) -> None:
    answered = {"impression": 0, "click": 0}
    for number in range(30):
        kind = "click" if number % 3 == 2 else "impression"
        article = ("grid-story", "elsewhere-1", "")[number % 3]
        assert send(client, kind, article=article) == 204
        answered[kind] += 1
    assert totals(db) == (0, 0), "nothing is written per beacon"
    assert flush_counts() == 30
    assert totals(db) == (answered["impression"], answered["click"])
    assert counts().pending() == {}
    assert flush_counts() == 0 and totals(db) == (20, 10), "a second flush adds nothing"


def test_the_json_content_type_of_fetch_beacons_is_taken_too(db: Any, client: Any, campaign: Campaign) -> None:
    body = json.dumps({"type": "impression", "campaign": "baltic", "variant": "a"})
    for content_type in ("application/json", "text/plain;charset=UTF-8", None):
        assert client.post("/widget/event", data=body, content_type=content_type).status_code == 204
    flush_counts()
    assert totals(db) == (3, 0)


def test_a_beacon_costs_no_query_once_the_campaigns_are_known(db: Any, client: Any, campaign: Campaign) -> None:
    assert send(client, "impression") == 204  # reads the campaigns and articles once
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(_db.engine, "before_cursor_execute", seen)
    try:
        for kind in ("impression", "click", "impression"):
            assert send(client, kind) == 204
        assert send(client, "impression", campaign="nope") == 400, "still refused at once, per request"
        assert send(client, "impression", variant="zzz") == 400
    finally:
        event.remove(_db.engine, "before_cursor_execute", seen)
    assert [s for s in statements if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))] == []


def test_a_campaign_variant_or_article_changed_in_the_process_is_known_at_once(
    db: Any, client: Any, campaign: Campaign
) -> None:
    assert send(client, "impression", campaign="fresh", variant="default") == 400
    db.session.add(Campaign(slug="fresh", name="Fresh", goal_currency="PLN"))
    db.session.add(Article(slug="new-story", title="New", published_on=date(2026, 12, 1), published=True))
    campaign.variants[0].active = False
    campaign.variants.append(AppealVariant(key="b", heading="B", text="", weight=1))
    db.session.flush()
    assert send(client, "impression", campaign="fresh", variant="default") == 204
    assert send(client, "impression", variant="a") == 400, "a variant switched off is refused"
    assert send(client, "impression", article="new-story", variant="b") == 204
    flush_counts()
    rows = {(row.article, row.variant) for row in db.session.scalars(select(WidgetStat))}
    assert rows == {("grid-story", "default"), ("new-story", "b")}


def test_a_click_and_its_impression_in_one_batch_count_but_clicks_never_outnumber_impressions(
    db: Any, campaign: Campaign
) -> None:
    tally = counts()
    key = (campaign.id, "grid-story", "a", TODAY)
    for kind in ("click", "click", "click", "impression", "impression"):
        tally.add(key, kind)
    tally.flush()
    row = db.session.scalars(select(WidgetStat)).one()
    assert (row.impressions, row.clicks) == (2, 2)
    tally.flush()  # the extra click's second chance: still no impression for it
    db.session.refresh(row)
    assert (row.impressions, row.clicks) == (2, 2) and tally.pending() == {}, "then it is dropped"


def test_a_click_alone_makes_no_row_and_is_dropped_after_its_second_chance(db: Any, campaign: Campaign) -> None:
    tally = counts()
    tally.add((campaign.id, "grid-story", "a", TODAY), "click")
    assert tally.flush() == 0 and len(tally.pending()) == 1
    assert tally.flush() == 1 and tally.pending() == {}
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 0


def test_a_click_flushed_before_its_impression_is_counted_at_the_next_flush(
    db: Any, app: Flask, campaign: Campaign
) -> None:
    """Two processes: the reader's impression went to one, the click to the other, which writes first."""
    key = (campaign.id, "grid-story", "a", TODAY)
    first, second = Counts(app), Counts(app)
    second.add(key, "click")
    second.flush()
    assert db.session.scalar(select(func.count()).select_from(WidgetStat)) == 0
    first.add(key, "impression")
    first.flush()
    second.flush()
    row = db.session.scalars(select(WidgetStat)).one()
    assert (row.impressions, row.clicks) == (1, 1)


def test_a_failing_flush_keeps_every_count_for_the_next(db: Any, campaign: Campaign, monkeypatch: Any) -> None:
    db.session.commit()  # the campaign outlives the failed flush's rollback
    tally = counts()
    key = (campaign.id, "grid-story", "a", TODAY)
    for kind in ("impression", "impression", "click"):
        tally.add(key, kind)
    real = stats.add_counts

    def written_then_failing(offered: Any) -> Any:
        real(offered)  # the statements ran; the transaction is lost
        raise OperationalError("UPDATE widget_stat", {}, Exception("server closed the connection"))

    monkeypatch.setattr(stats, "add_counts", written_then_failing)
    with pytest.raises(OperationalError):
        tally.flush()
    tally.add(key, "impression")  # a beacon taken meanwhile
    assert totals(db) == (0, 0)
    monkeypatch.setattr(stats, "add_counts", real)
    assert tally.flush() == 4
    assert totals(db) == (3, 1)


def test_the_counts_of_a_campaign_deleted_before_the_flush_are_dropped_not_retried_for_ever(
    db: Any, campaign: Campaign
) -> None:
    gone = Campaign(slug="gone", name="Gone", goal_currency="PLN")
    db.session.add(gone)
    db.session.flush()
    tally = counts()
    tally.add((gone.id, "", "default", TODAY), "impression")
    tally.add((campaign.id, "", "a", TODAY), "impression")
    db.session.delete(gone)
    db.session.flush()
    tally.flush()
    assert tally.pending() == {}
    assert [(row.campaign_id, row.impressions) for row in db.session.scalars(select(WidgetStat))] == [(campaign.id, 1)]


def seed(app: Flask) -> tuple[int, int]:
    with app.app_context():
        campaign = Campaign(slug="general", name="G", goal_currency="PLN")
        other = Campaign(slug="other", name="O", goal_currency="PLN")
        _db.session.add_all([campaign, other])
        _db.session.commit()
        return campaign.id, other.id


def test_processes_flushing_at_once_lose_and_double_nothing(committed_app: Flask) -> None:
    """Four tallies (as four processes would hold) of the same keys, new rows and existing
    ones, written at the same moment from four threads, round after round, on one database."""
    general, other = seed(committed_app)
    keys = [(general, "", "default", TODAY), (other, "", "default", TODAY), (general, "", "default", date(2026, 12, 1))]
    tallies = [Counts(committed_app) for _ in range(4)]
    rounds, per_round = 5, 10
    barrier = threading.Barrier(len(tallies))
    failures: list[BaseException] = []

    def process(tally: Counts) -> None:
        with committed_app.app_context():
            for _ in range(rounds):
                for key in keys:
                    for _ in range(per_round):
                        tally.add(key, "impression")
                    tally.add(key, "click")
                barrier.wait(timeout=60)
                try:
                    tally.flush()
                except Exception as error:  # a deadlock one of them lost: kept for the next try
                    failures.append(error)

    threads = [threading.Thread(target=process, args=(tally,)) for tally in tallies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with committed_app.app_context():
        for tally in tallies:
            tally.flush()
            assert tally.pending() == {}
        rows = {(r.campaign_id, r.day): (r.impressions, r.clicks) for r in _db.session.scalars(select(WidgetStat))}
    expected = (len(tallies) * rounds * per_round, len(tallies) * rounds)
    assert rows == {(key[0], key[3]): expected for key in keys}, failures


def test_threads_of_one_process_adding_and_flushing_at_once_lose_nothing(committed_app: Flask) -> None:
    general, _other = seed(committed_app)
    tally = Counts(committed_app)
    key = (general, "", "default", TODAY)

    def worker(_: int) -> None:
        with committed_app.app_context():
            for number in range(200):
                tally.add(key, "impression")
                if number % 50 == 0:
                    tally.flush()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with committed_app.app_context():
        tally.flush()
        assert _db.session.scalars(select(WidgetStat.impressions)).one() == 800


def test_the_flusher_thread_writes_by_itself_and_what_is_left_at_stop(committed_app: Flask) -> None:
    general, _other = seed(committed_app)
    committed_app.config["WIDGET_COUNTS_FLUSH_SECONDS"] = 1
    tally = Counts(committed_app)
    key = (general, "", "default", datetime.now(UTC).date())
    tally.add(key, "impression")
    tally._start()

    def written() -> int:
        with committed_app.app_context():
            return int(_db.session.scalar(select(func.coalesce(func.sum(WidgetStat.impressions), 0))) or 0)

    wait_for(lambda: written() == 1)
    tally.add(key, "impression")
    tally.stop()
    assert written() == 2 and tally.pending() == {}


EXITING_WORKER = """
import json, sys
from supporters import create_app
app = create_app({"ENVIRON": {"SECRET_KEY": "x" * 40, "DATABASE_URL": sys.argv[1],
                              "WIDGET_COUNTS_FLUSH_SECONDS": "60"}, "RATELIMIT_ENABLED": False})
client = app.test_client()
event = json.dumps({"type": "impression", "campaign": "general", "variant": "default"})
codes = [client.post("/widget/event", data=event).status_code for _ in range(7)]
assert codes == [204] * 7, codes
"""


def test_a_process_that_exits_writes_what_it_holds(committed_app: Flask) -> None:
    """A gunicorn worker that is stopped exits through sys.exit: the beacons it took since its
    last flush (here, all: it flushes every 60 s) are written on the way out."""
    seed(committed_app)
    url = committed_app.config["SQLALCHEMY_DATABASE_URI"]
    done = subprocess.run(
        [sys.executable, "-c", EXITING_WORKER, url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT), "FLASK_SKIP_DOTENV": "1"},
    )
    assert done.returncode == 0, done.stderr
    with committed_app.app_context():
        assert _db.session.scalar(select(func.sum(WidgetStat.impressions))) == 7


def test_the_tally_is_one_per_app(app: Flask, committed_app: Flask) -> None:
    assert widget_counts.counts(app) is widget_counts.counts(app)
    assert widget_counts.counts(app) is not widget_counts.counts(committed_app)
