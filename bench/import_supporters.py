"""100,000 supporters and 300,000 gifts imported from CSV files: preview under 60 s,
import under 3 minutes, memory that does not grow with the file (issue 14).

    .venv/bin/python bench/import_supporters.py                      # SQLite in a temporary folder
    .venv/bin/python bench/import_supporters.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

What it does:

1. makes a fresh database (SQLite in a temporary folder, or a new PostgreSQL database
   `bench_import_<random>` dropped at the end), migrates it, and adds --existing
   supporters, a tenth of whom the file names again (they match by e-mail);
2. writes, in the temporary folder, a supporters CSV of --supporters rows in the layout
   Polish Excel saves (UTF-8 with its BOM, `;` separators, Polish headers: id, first and
   last name, e-mail, address, tags, newsletter consent with its date and source for a
   third of them) and a gifts CSV of --gifts rows (id, supporter id, amount with a
   decimal comma, PLN, a date in the last five years, method; a tenth with a receipt
   number of our form);
3. times, in-process, as `flask import supporters` does it: the preview (every row
   checked, nothing written), the import (one transaction, one commit), and the same
   files again (everything "imported before"). Wall time and this process's CPU time
   (which a shared machine's other work does not inflate), and the peak of Python's
   allocations during each (tracemalloc) and of the process (ru_maxrss);
4. checks the outcome (every supporter and gift once, the supporters' totals and the
   giving totals as `derived rebuild` recomputes them, the second import new to
   nothing), prints a Markdown table and writes the figures as JSON to bench/results/.
   Exits 1 when a check fails.

--no-tracemalloc times without tracing allocations (tracing slows Python down by a
third or so); the process's peak is measured either way.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

import sqlalchemy as sa  # noqa: E402

from bench.databases import fresh_database, make_app  # noqa: E402

SUPPORTER_HEADER = (
    "ID darczyńcy;Imię;Nazwisko;E-mail;Ulica;Kod pocztowy;Miasto;Kraj;Tagi;Zgoda newsletter;Data zgody;Źródło zgody"
)
GIFT_HEADER = "ID wpłaty;ID darczyńcy;Kwota;Waluta;Data wpłaty;Forma płatności;Nr potwierdzenia"


def write_files(workdir: Path, supporters: int, gifts: int, existing: int) -> tuple[Path, Path]:
    """The two CSV files, written a row at a time."""
    rng = random.Random(14)
    today = date.today()
    people = workdir / "supporters.csv"
    with people.open("w", encoding="utf-8-sig", newline="") as out:
        out.write(SUPPORTER_HEADER + "\r\n")
        for n in range(supporters):
            # every tenth row names a supporter the app has already (matched by e-mail)
            email = f"existing{n // 10}@example.org" if n % 10 == 0 and n // 10 < existing else f"donor{n}@example.org"
            consent = f"tak;{today - timedelta(days=400 + n % 900)};formularz www" if n % 3 == 0 else "nie;;"
            out.write(
                f"K-{n};Imię{n};Nazwisko-Żółć{n};{email};ul. Długa {n % 200};{n % 100:02d}-{n % 1000:03d};"
                f"Miasto{n % 500};PL;{'stały' if n % 4 == 0 else ''};{consent}\r\n"
            )
    given = workdir / "gifts.csv"
    with given.open("w", encoding="utf-8-sig", newline="") as out:
        out.write(GIFT_HEADER + "\r\n")
        for n in range(gifts):
            day = today - timedelta(days=1 + rng.randrange(5 * 365))
            amount = rng.choice(["20,00", "50,00", "100,00", "1 250,50", "35,5", "200"])
            receipt = f"{day.year}-{500000 + n // 10:06d}" if n % 10 == 0 else ""
            method = rng.choice(["przelew", "przelew", "gotówka", "czek"])
            out.write(f"W-{n};K-{rng.randrange(supporters)};{amount};PLN;{day.isoformat()};{method};{receipt}\r\n")
    return people, given


def load_existing(count: int) -> None:
    from supporters.extensions import db
    from supporters.models import Supporter, derived, sort_key

    db.session.execute(
        sa.insert(Supporter),
        [
            {
                "email": f"existing{n}@example.org",
                "email_normalised": f"existing{n}@example.org",
                "name": f"Existing {n}",
                "name_sort": sort_key(f"Existing {n}"),
                "language": "pl",
            }
            for n in range(count)
        ],
    )
    # loaded behind the ORM: their search keys are written here, as `flask derived rebuild` does
    derived.rebuild(db.session.connection())
    db.session.commit()


def measured(work: Any, trace: bool) -> tuple[Any, dict[str, float]]:
    if trace:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    result = work()
    figures = {"s": round(time.perf_counter() - started, 1), "cpu_s": round(time.process_time() - cpu, 1)}
    if trace:
        figures["peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
        tracemalloc.stop()
    figures["maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result, figures


def run(url: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from flask_migrate import upgrade

    from supporters.extensions import db
    from supporters.imports import mapping as mappings
    from supporters.imports import operations
    from supporters.imports.preview import preview
    from supporters.imports.reading import path_opener, read_table
    from supporters.models import Gift, ImportedRow, Supporter, derived

    people, given = write_files(workdir, args.supporters, args.gifts, args.existing)
    app = make_app(url)
    out: dict[str, Any] = {"bytes": people.stat().st_size + given.stat().st_size}
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        load_existing(args.existing)
        chosen = mappings.save_mapping(
            "Bench CRM",
            supporter_columns=mappings.guess_supporters(read_table(path_opener(str(people)), people.name).headers),
            gift_columns=mappings.guess_gifts(read_table(path_opener(str(given)), given.name).headers),
            gifts_by="source_id",
            actor=None,
        )
        db.session.commit()

        def source() -> Any:
            return operations.run_for_files(
                path_opener(str(people)), people.name, path_opener(str(given)), given.name, chosen
            )

        planned, out["preview"] = measured(lambda: preview(source()[1], show="errors", limit=10), args.trace)
        out["counts"] = {"supporters": dict(planned.supporters), "gifts": dict(planned.gifts)}
        print(f"preview: {out['preview']}", file=sys.stderr)
        db.session.rollback()

        def do_import() -> Any:
            made, files = source()
            operations.import_run(made, files, actor=None)
            db.session.commit()
            return made

        if args.profile:  # cProfile of the import step, for `python -m pstats`
            import cProfile

            profiler = cProfile.Profile(time.process_time)  # CPU: a busy machine does not inflate it
            first, out["import"] = measured(lambda: profiler.runcall(do_import), args.trace)
            profiler.dump_stats(args.profile)
        else:
            first, out["import"] = measured(do_import, args.trace)
        print(f"import: {out['import']}", file=sys.stderr)
        again, out["again"] = measured(do_import, args.trace)
        counted_supporters = db.session.scalar(sa.select(sa.func.count()).select_from(Supporter))
        counted_gifts = db.session.scalar(sa.select(sa.func.count()).select_from(Gift))
        records = db.session.scalar(sa.select(sa.func.count()).select_from(ImportedRow))
        lifetime = db.session.scalar(sa.select(sa.func.sum(Supporter.lifetime_total_minor)))
        gift_sum = db.session.scalar(sa.select(sa.func.sum(Gift.amount_base_minor)))
        rebuilt = derived.rebuild(db.session.connection())
        db.session.rollback()
        new_supporters = args.supporters - min(args.existing, -(-args.supporters // 10))
        out["checks"] = {
            "no row errors": planned.errors == 0,
            "every supporter once": counted_supporters == args.existing + new_supporters,
            "every gift once": counted_gifts == args.gifts,
            "every row recorded once": records == args.supporters + args.gifts,
            "supporters' totals add up": lifetime == gift_sum,
            "giving totals and search keys in step": not rebuilt.totals and not rebuilt.search_keys,
            "second import new to nothing": again.counts["supporters"]["new"] == 0
            and again.counts["gifts"]["new"] == 0,
        }
        out["first_counts"] = first.counts
        db.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--supporters", type=int, default=100_000)
    parser.add_argument("--gifts", type=int, default=300_000)
    parser.add_argument("--existing", type=int, default=10_000, help="supporters the app has before the import")
    parser.add_argument("--no-tracemalloc", dest="trace", action="store_false")
    parser.add_argument("--profile", metavar="FILE", help="write cProfile's statistics of the import step to FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        url, drop = fresh_database(args.postgres, workdir, "import")
        try:
            out = run(url, args, workdir)
        finally:
            drop()
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\n{database}, Python {platform.python_version()}, files {out['bytes'] / 1e6:.1f} MB\n")
    print("| step | wall | CPU | Python peak (tracemalloc) | process peak (ru_maxrss) |")
    print("|---|---|---|---|---|")
    for step, label in (("preview", "preview"), ("import", "import"), ("again", "the same files again")):
        f = out[step]
        peak = f"{f['peak_mb']} MB" if "peak_mb" in f else "not traced"
        print(f"| {label} | {f['s']} s | {f['cpu_s']} s | {peak} | {f['maxrss_mb']} MB |")
    failed = [name for name, ok in out["checks"].items() if not ok]
    print(f"\nChecks: {'all pass' if not failed else ', '.join(failed) + ' FAILED'}; counts {out['first_counts']}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"import_supporters-{database.lower()}-{stamp}.json").write_text(
        json.dumps({"database": database, "args": vars(args), **out}, indent=2, default=str)
    )
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
