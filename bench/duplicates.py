"""Likely duplicates at 100,000 supporters: the scan, and the pages that read what it found.

    .venv/bin/python bench/duplicates.py                        # SQLite in a temporary folder
    .venv/bin/python bench/duplicates.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Loads bench/dashboard_data.py's supporters (about 6,000 distinct names for 100,000 people,
so many share a name: more pairs than real data would have), adds a few hundred Gmail
variants and misspelt names, then times `duplicates.scan()` (what `flask duplicates scan`
runs) and the reads of the review list and the supporter's page.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402


def timed(work: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """The median of `runs` timings in ms, and the last result."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a server URL; a database of its own is made and dropped")
    parser.add_argument("--supporters", type=int, default=100_000)
    args = parser.parse_args()

    from flask_migrate import upgrade

    from bench import dashboard_data
    from bench.databases import fresh_database, make_app
    from supporters.extensions import db
    from supporters.models import Supporter
    from supporters.people import duplicates

    with tempfile.TemporaryDirectory() as folder:
        url, drop = fresh_database(args.postgres, Path(folder), "dups")
        app = make_app(url)
        try:
            with app.app_context():
                upgrade(directory=str(ROOT / "migrations"))
            dashboard_data.load(url, args.supporters, args.supporters)
            with app.app_context():
                rng = random.Random(14)
                ids = list(db.session.scalars(sa.select(Supporter.id)))
                for supporter_id in rng.sample(ids, 300):  # a Gmail twin and a misspelt twin
                    person = db.session.get(Supporter, supporter_id)
                    assert person is not None
                    local = person.email_normalised.split("@")[0]
                    db.session.add(Supporter(email=f"{local.replace('.', '')}+x@googlemail.com", name=person.name))
                    db.session.add(Supporter(email=f"typo.{supporter_id}@example.net", name=person.name + "a"))
                db.session.commit()
                scan_ms, found = timed(duplicates.scan, 1)
                db.session.commit()
                rows = [
                    ("scan (flask duplicates scan)", scan_ms, f"{found:,} pairs"),
                    ("list: first page (25 pairs)", *timed(lambda: len(duplicates.pair_page(25, 0)), 5)),
                    ("list: page 1,000", *timed(lambda: len(duplicates.pair_page(25, 25_000)), 5)),
                    ("list: count", *timed(duplicates.pair_count, 5)),
                    (
                        "supporter page: possible duplicates",
                        *timed(lambda: duplicates.possible_duplicates(ids[500]), 5),
                    ),
                ]
                print(f"| {'step':40} | ms | result |\n|---|---:|---|")
                for label, ms, result in rows:
                    print(f"| {label:40} | {ms:,.0f} | {result} |")
        finally:
            with app.app_context():
                db.engine.dispose()
            drop()


if __name__ == "__main__":
    main()
