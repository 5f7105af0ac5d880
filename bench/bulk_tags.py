"""A tag added to and removed from many supporters at once (people.edits.bulk_tag), on a
database loaded by bench/dashboard.py --keep (100,000 supporters):

    .venv/bin/python bench/dashboard.py --skip-export --keep      # prints the database URL
    .venv/bin/python bench/bulk_tags.py URL

For each case it adds a new tag to every supporter the filters match, then removes it,
and prints the time, how many changed and the process's peak resident memory. It all
runs in one transaction, rolled back at the end: the database is left as it was.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import make_app  # noqa: E402

CASES = [
    ("every supporter", {}),
    ("country PL", {"country": "PL"}),
    ("search “kowal”", {"q": "kowal"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="a database loaded by bench/dashboard.py --keep")
    url = parser.parse_args().url
    app = make_app(url)
    from supporters.extensions import db
    from supporters.people import edits
    from supporters.people.queries import SupporterFilters

    print("| case | change | supporters changed | seconds | peak RSS MB |")
    print("|---|---|---:|---:|---:|")
    with app.test_request_context():
        for name, filters in CASES:
            for add in (True, False):
                started = time.perf_counter()
                changed = edits.bulk_tag(None, SupporterFilters(**filters), "bench bulk tag", add=add)
                seconds = time.perf_counter() - started
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"| {name} | {'add' if add else 'remove'} | {changed:,} | {seconds:.2f} | {peak:.0f} |")
                db.session.flush()
        db.session.rollback()


if __name__ == "__main__":
    main()
