"""A large, plausible data set for the dashboard benchmarks, bulk-loaded.

    .venv/bin/python bench/dashboard_data.py sqlite:////tmp/big.db
    .venv/bin/python bench/dashboard_data.py postgresql+psycopg://postgres@127.0.0.1:5432/bench_big

The database must already be migrated (`flask db upgrade`) and empty; bench/dashboard.py
does both. Defaults: 100,000 supporters and 1,000,000 gifts over three years, with
recurring plans, consents, tags, campaigns and articles, all from a fixed seed so two
runs build the same data.

The rows are made as plain tuples and written without the ORM: SQLite through
sqlite3's executemany in one transaction, PostgreSQL through COPY. The values follow
the app's own rules, so the dashboard reads them as it would real ones: statuses and
their timestamps agree, refunds stay within the amount, Stripe ids and receipt numbers
are unique, each supporter's aggregates (first and last gift, count, lifetime total)
are what donations.refresh_supporter_totals() would compute. What the app keeps from
other rows (giving totals, search keys, newsletter flags) is then made by
supporters.derived.rebuild, what `flask derived rebuild` runs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from supporters.models import (  # noqa: E402
    derived,
    net_base,
    normalise_email,
    sort_key,
)

FIRST = (
    "Anna Maria Katarzyna Małgorzata Agnieszka Barbara Ewa Krystyna Elżbieta Zofia Joanna Magdalena "
    "Piotr Krzysztof Andrzej Tomasz Paweł Jan Michał Marcin Grzegorz Józef Łukasz Adam Zbigniew "
    "Jerzy Tadeusz Mateusz Dariusz Mariusz Wojciech Ryszard Jakub Henryk Robert Kazimierz Marek "
    "Emma Olivia Sophie Charlotte Amelia Isla James Oliver Harry George Noah Jack Leo "
    "Lukas Jonas Felix Lena Mia Hannah Léa Chloé Zoë Søren Åsa Björn Ingrid Núria Iñaki"
).split()
LAST = (
    "Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański Woźniak "
    "Dąbrowski Kozłowski Jankowski Mazur Kwiatkowski Krawczyk Piotrowski Grabowski Nowakowski "
    "Pawłowski Michalski Nowicki Adamczyk Dudek Zając Wieczorek Jabłoński Król Majewski Olszewski "
    "Jaworski Wróbel Malinowski Pawlak Witkowski Walczak Stępień Górski Rutkowski Michalak Sikora "
    "Ostrowski Baran Duda Szewczyk Tomaszewski Pietrzak Marciniak Wróblewski Zalewski Jakubowski "
    "Żak Łuczak Smith Jones Taylor Brown Williams Wilson Johnson Davies Müller Schmidt Schneider "
    "Fischer Weber Meyer Wagner Becker Dubois Martin Bernard Thomas Petit Larsen Nielsen Öberg "
    "García Fernández López Rossi Russo Ferrari Esposito Bianchi Novák Svoboda"
).split()
COUNTRIES = ("PL",) * 14 + ("DE", "GB", "FR", "CZ", "LT", "SE", "US", "NL", "UA", None)
DOMAINS = ("example.org", "example.com", "example.net", "mail.example.pl", "poczta.example.pl")
CURRENCIES = ("PLN",) * 18 + ("EUR", "USD")
RATE = {"PLN": 1.0, "EUR": 4.3, "USD": 4.0}
ONE_TIME = (2000, 3000, 5000, 5000, 10000, 10000, 20000, 25000, 50000, 100000)
MONTHLY = (1000, 1500, 2000, 2000, 3000, 5000, 10000)
TAGS = ("board", "major donor", "volunteer", "press", "legacy", "event 2025", "founding supporter")
SUCCEEDED, PARTIAL, REFUNDED = "succeeded", "partially_refunded", "refunded"
COUNTED = {SUCCEEDED, PARTIAL}
#: (status, weight) of one attempt; paid ones carry paid_at
OUTCOMES = (
    (SUCCEEDED, 900),
    ("failed", 40),
    ("canceled", 20),
    (REFUNDED, 15),
    (PARTIAL, 10),
    ("disputed", 5),
    ("pending", 10),
)
CAMPAIGNS = 12
ARTICLES = 300
YEARS = 3


@dataclass
class Tables:
    supporter: list[tuple[Any, ...]] = field(default_factory=list)
    gift: list[tuple[Any, ...]] = field(default_factory=list)
    recurring_plan: list[tuple[Any, ...]] = field(default_factory=list)
    consent: list[tuple[Any, ...]] = field(default_factory=list)
    supporter_tag: list[tuple[Any, ...]] = field(default_factory=list)


COLUMNS = {
    "campaign": (
        "id",
        "slug",
        "name",
        "goal_minor",
        "goal_currency",
        "preset_amounts",
        "default_frequency",
        "appeal_heading",
        "appeal_text",
        "active",
        "is_demo",
        "created_at",
        "updated_at",
    ),
    "supporter": (
        "id",
        "email",
        "email_normalised",
        "name",
        "name_sort",
        "country",
        "language",
        "first_gift_at",
        "last_gift_at",
        "gift_count",
        "lifetime_total_minor",
        "is_demo",
        "created_at",
        "updated_at",
    ),
    "recurring_plan": (
        "id",
        "supporter_id",
        "amount_minor",
        "currency",
        "interval",
        "status",
        "campaign_id",
        "stripe_subscription_id",
        "started_at",
        "current_period_end",
        "canceled_at",
        "cancel_reason",
        "is_demo",
        "created_at",
        "updated_at",
    ),
    "gift": (
        "id",
        "supporter_id",
        "amount_minor",
        "currency",
        "amount_base_minor",
        "status",
        "kind",
        "method",
        "recurring_plan_id",
        "campaign_id",
        "source_article",
        "source_variant",
        "stripe_payment_intent_id",
        "stripe_invoice_id",
        "refunded_minor",
        "covers_fee",
        "anonymous",
        "receipt_number",
        "offline_reference",
        "paid_at",
        "refunded_at",
        "is_demo",
        "created_at",
        "updated_at",
    ),
    "consent": ("id", "supporter_id", "purpose", "granted", "recorded_at", "source", "wording"),
    "supporter_tag": ("supporter_id", "tag"),
}
WORDING = "Send me the newsletter about new analysis and how my support is used."


def generate(
    supporters: int,
    gifts: int,
    now: datetime,
    seed: int = 20261127,
    gift_sink: Callable[[tuple[Any, ...]], None] | None = None,
) -> Tables:
    """Every row, in memory (about 1 GB of Python tuples for the default size).

    With `gift_sink`, each gift goes to it as it is made, numbered in the order made,
    not in time, and the returned tables hold no gifts: ten million gifts would take
    about 9 GB as tuples, twice that while they are sorted. The sink's owner then
    renumbers them in time as chronological() does (write_postgres does it in SQL).
    """
    rng = random.Random(seed)
    out = Tables()
    add = gift_sink or out.gift.append
    start = now - timedelta(days=365 * YEARS)
    span = (now - start).total_seconds()
    # About one supporter in six gives monthly; the others give now and then, as many
    # times as it takes to reach the gift count asked for on average.
    monthly_share = 1 / 6
    per_monthly = 12 * YEARS / 2  # instalments of an average plan (it starts half way on average)
    per_one_time = max(1.0, (gifts / supporters - monthly_share * per_monthly) / (1 - monthly_share))
    gift_id = plan_id = consent_id = 0
    for sid in range(1, supporters + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if rng.random() < 0.05:
            last = f"{last}-{rng.choice(LAST)}"
        name = f"{first} {last}"
        email = f"{sort_key(first).replace(' ', '')}.{sort_key(last).replace(' ', '')}.{sid}@{rng.choice(DOMAINS)}"
        joined = start + timedelta(seconds=rng.random() * span * 0.95)
        counted: list[tuple[datetime, int]] = []  # (paid_at, net base) of the gifts whose money counts
        campaign = rng.randint(1, CAMPAIGNS) if rng.random() < 0.3 else None

        def add_gift(
            when: datetime, amount: int, currency: str, kind: str, plan: int | None, status: str | None = None
        ) -> None:
            nonlocal gift_id
            gift_id += 1
            status = status or rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
            if status == "pending" and (now - when).days > 2:
                status = "failed"  # only recent gifts are still waiting
            paid = status in COUNTED or status in (REFUNDED, "disputed")
            refunded = amount if status == REFUNDED else amount // 2 if status == PARTIAL else 0
            base = round(amount * RATE[currency])
            method = (
                "stripe"
                if kind == "recurring" or rng.random() < 0.95
                else rng.choice(("bank_transfer", "cheque", "cash"))
            )
            offline = method != "stripe"
            article = f"article-{rng.randint(1, ARTICLES):03d}" if not plan and rng.random() < 0.25 else None
            add(
                (
                    gift_id,
                    sid,
                    amount,
                    currency,
                    base,
                    status,
                    kind,
                    method,
                    plan,
                    campaign,
                    article,
                    rng.choice(("a", "b")) if article else None,
                    None if offline else f"pi_bench{gift_id:08d}",
                    f"in_bench{gift_id:08d}" if plan else None,
                    refunded,
                    False,
                    rng.random() < 0.03,
                    f"{when.year}-{gift_id:06d}" if paid else None,
                    f"Transfer {gift_id}" if offline else None,
                    when if paid else None,
                    when + timedelta(days=3) if refunded else None,
                    False,
                    when - timedelta(minutes=2),
                    when,
                )
            )
            if status in COUNTED:
                counted.append((when, net_base(base, amount, refunded)))

        if rng.random() < monthly_share:
            plan_id += 1
            currency = rng.choice(CURRENCIES)
            amount = rng.choice(MONTHLY)
            began = joined
            fate = rng.random()
            ended = began + timedelta(days=rng.randint(60, 900)) if fate < 0.35 else None
            if ended and ended > now:
                ended = None
            status = "canceled" if ended else "past_due" if fate > 0.95 else "active"
            month, paid_through = began, began
            while month < (ended or now) and gift_id < gifts:
                add_gift(month, amount, currency, "recurring", plan_id, SUCCEEDED if rng.random() < 0.97 else "failed")
                paid_through = month
                month += timedelta(days=30, hours=10)
            out.recurring_plan.append(
                (
                    plan_id,
                    sid,
                    amount,
                    currency,
                    "month",
                    status,
                    campaign,
                    f"sub_bench{plan_id:07d}",
                    began,
                    paid_through + timedelta(days=30),
                    ended,
                    "Donor asked to stop" if ended else None,
                    False,
                    began,
                    ended or paid_through,
                )
            )
        else:
            count = min(1 + int(rng.expovariate(1 / (per_one_time - 1))) if per_one_time > 1 else 1, 200)
            moments = sorted(
                joined + timedelta(seconds=rng.random() * (now - joined).total_seconds()) for _ in range(count)
            )
            for when in moments:
                if gift_id >= gifts:
                    break
                add_gift(when, rng.choice(ONE_TIME), rng.choice(CURRENCIES), "one_time", None)

        first_gift = min((w for w, _ in counted), default=None)
        last_gift = max((w for w, _ in counted), default=None)
        if rng.random() < 0.45:
            consent_id += 1
            out.consent.append((consent_id, sid, "newsletter", True, joined, "donation form", WORDING))
            if rng.random() < 0.1:
                consent_id += 1
                out.consent.append(
                    (
                        consent_id,
                        sid,
                        "newsletter",
                        False,
                        joined + timedelta(days=rng.randint(1, 300)),
                        "dashboard",
                        WORDING,
                    )
                )
        out.supporter.append(
            (
                sid,
                email,
                normalise_email(email),
                name,
                sort_key(name),
                rng.choice(COUNTRIES),
                "pl" if rng.random() < 0.7 else "en",
                first_gift,
                last_gift,
                len(counted),
                sum(net for _, net in counted),
                False,
                joined,
                last_gift or joined,
            )
        )
        if rng.random() < 0.04:
            for tag in rng.sample(TAGS, rng.randint(1, 2)):
                out.supporter_tag.append((sid, tag))
    # Top up with one-time gifts until the count asked for is reached exactly.
    while gift_id < gifts:
        sid = rng.randint(1, supporters)
        gift_id += 1
        when = start + timedelta(seconds=rng.random() * span)
        add(
            (
                gift_id,
                sid,
                5000,
                "PLN",
                5000,
                "failed",
                "one_time",
                "stripe",
                None,
                None,
                None,
                None,
                f"pi_bench{gift_id:08d}",
                None,
                0,
                False,
                False,
                None,
                None,
                None,
                None,
                False,
                when,
                when,
            )
        )
    if gift_sink is None:
        out.gift = chronological(out.gift)
    return out


def chronological(gifts: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The gifts numbered in the order they were made, as a real database numbers them
    (so the table's physical order follows time, which matters to every range read),
    with the ids derived from the gift id renumbered alike."""
    column = {name: index for index, name in enumerate(COLUMNS["gift"])}
    numbered = []
    for gift_id, row in enumerate(sorted(gifts, key=lambda row: row[column["created_at"]]), 1):
        values = list(row)
        values[column["id"]] = gift_id
        for name, text in (
            ("stripe_payment_intent_id", "pi_bench{:08d}"),
            ("stripe_invoice_id", "in_bench{:08d}"),
            ("offline_reference", "Transfer {}"),
        ):
            if values[column[name]]:
                values[column[name]] = text.format(gift_id)
        if values[column["receipt_number"]]:
            values[column["receipt_number"]] = f"{values[column['paid_at']].year}-{gift_id:06d}"
        numbered.append(tuple(values))
    return numbered


def campaigns(now: datetime) -> list[tuple[Any, ...]]:
    presets = json.dumps({"PLN": [2000, 5000, 10000]})
    return [
        (
            i,
            f"campaign-{i:02d}",
            f"Campaign {i:02d}",
            5_000_000,
            "PLN",
            presets,
            "one_time",
            "",
            "",
            True,
            False,
            now,
            now,
        )
        for i in range(1, CAMPAIGNS + 1)
    ]


# --- writing ------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):  # SQLAlchemy's SQLite DATETIME storage format, in UTC
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def write_sqlite(path: str, tables: dict[str, Sequence[tuple[Any, ...]]]) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("BEGIN")
        for table, rows in tables.items():
            columns = COLUMNS[table]
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            connection.executemany(sql, ([_sqlite_value(v) for v in row] for row in rows))
        connection.execute("COMMIT")
    finally:
        connection.close()


def _padded(width: int) -> str:
    """SQL for the gift's new number `n` as Python's f"{n:0{width}d}" writes it."""
    return f"lpad(n::text, greatest({width}, length(n::text)), '0')"


#: what chronological() renumbers, as SQL over `n`, the gift's place in time
RENUMBERED = {
    "id": "n",
    "stripe_payment_intent_id": f"CASE WHEN stripe_payment_intent_id <> '' THEN 'pi_bench' || {_padded(8)} END",
    "stripe_invoice_id": f"CASE WHEN stripe_invoice_id <> '' THEN 'in_bench' || {_padded(8)} END",
    "offline_reference": "CASE WHEN offline_reference <> '' THEN 'Transfer ' || n END",
    "receipt_number": (
        "CASE WHEN receipt_number <> '' THEN "
        f"extract(year FROM paid_at AT TIME ZONE 'UTC')::int || '-' || {_padded(6)} END"
    ),
}


def load_postgres(url: str, supporters: int, gifts: int, now: datetime) -> dict[str, int]:
    """Generate and write every row with COPY, the gifts streamed as they are made.

    The gifts go first to a temporary table, in the order made; one INSERT … SELECT then
    numbers them in time (as chronological() does in memory) into the gift table, whose
    secondary indexes are dropped before and built again after: building an index over
    ten million sorted rows is much faster than keeping it up to date row by row.
    Returns the row count of each table.
    """
    import psycopg

    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    columns = COLUMNS["gift"]
    began = time.monotonic()
    with psycopg.connect(conninfo) as connection, connection.cursor() as cursor:
        cursor.execute("SET work_mem = '512MB'")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("CREATE TEMPORARY TABLE gift_made (LIKE gift)")
        with cursor.copy(f"COPY gift_made ({', '.join(columns)}) FROM STDIN") as copy:
            data = generate(supporters, gifts, now, gift_sink=copy.write_row)
        print(f"gifts made and copied: {time.monotonic() - began:.0f} s", file=sys.stderr)
        counts: dict[str, int] = {}
        for table, rows in (
            ("campaign", campaigns(now)),
            ("supporter", data.supporter),
            ("recurring_plan", data.recurring_plan),
            ("gift", None),
            ("consent", data.consent),
            ("supporter_tag", data.supporter_tag),
        ):
            if rows is None:
                counts[table] = _insert_gifts_in_time(cursor)
            else:
                with cursor.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                counts[table] = len(rows)
            if "id" in COLUMNS[table]:  # later inserts by the app must not collide with ours
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            print(f"{table} written: {time.monotonic() - began:.0f} s", file=sys.stderr)
        connection.commit()
    return counts


def _insert_gifts_in_time(cursor: Any) -> int:
    cursor.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = 'gift'::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)"
    )
    indexes = cursor.fetchall()
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
    columns = COLUMNS["gift"]
    cursor.execute(
        f"INSERT INTO gift ({', '.join(columns)}) "
        f"SELECT {', '.join(RENUMBERED.get(c, c) for c in columns)} "
        "FROM (SELECT row_number() OVER (ORDER BY created_at, id) AS n, * FROM gift_made) AS made ORDER BY n"
    )
    count = int(cursor.rowcount)
    cursor.execute("DROP TABLE gift_made")
    for _name, definition in indexes:
        cursor.execute(definition)
    return count


def load(url: str, supporters: int, gifts: int, now: datetime | None = None) -> dict[str, int]:
    """Fill the (migrated, empty) database at `url`; returns the row count of each table."""
    now = now or datetime.now(UTC)
    started = time.monotonic()
    if url.startswith("sqlite"):
        data = generate(supporters, gifts, now)
        tables: dict[str, Sequence[tuple[Any, ...]]] = {
            "campaign": campaigns(now),
            "supporter": data.supporter,
            "recurring_plan": data.recurring_plan,
            "gift": data.gift,
            "consent": data.consent,
            "supporter_tag": data.supporter_tag,
        }
        write_sqlite(sa.make_url(url).database or "", tables)
        counts = {table: len(rows) for table, rows in tables.items()}
    else:
        counts = load_postgres(url, supporters, gifts, now)
    written = time.monotonic()
    # The rows went in behind the ORM: what the app keeps from them is made as
    # `flask derived rebuild` makes it, then the planner's statistics are gathered.
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        derived.rebuild(connection)
        for table in ("giving_total", "supporter_search_key"):
            counts[table] = connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    rebuilt = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE" if url.startswith("sqlite") else "VACUUM ANALYZE")
    engine.dispose()
    print(
        f"made and written in {written - started:.1f} s, derived rows in {rebuilt - written:.1f} s, "
        f"analysed in {time.monotonic() - rebuilt:.1f} s: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()),
        file=sys.stderr,
    )
    return counts


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="SQLAlchemy URL of a migrated, empty database")
    parser.add_argument("--supporters", type=int, default=100_000)
    parser.add_argument("--gifts", type=int, default=1_000_000)
    args = parser.parse_args(list(argv) if argv is not None else None)
    load(args.url, args.supporters, args.gifts)


if __name__ == "__main__":
    main()
