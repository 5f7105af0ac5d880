"""The staff dashboard at 100,000 supporters and 1,000,000 gifts.

    .venv/bin/python bench/dashboard.py                        # SQLite in a temporary folder
    .venv/bin/python bench/dashboard.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/dashboard.py --keep ...             # keep the loaded database, print its URL
    .venv/bin/python bench/dashboard.py --reuse URL ...        # measure a database kept before

What it does:

1. makes a fresh database (SQLite in a temporary folder, or with --postgres a new
   database `bench_dash_<random>` on that server, dropped at the end unless --keep),
   migrates it with the app's Alembic revisions and bulk-loads it with
   bench/dashboard_data.py (the sizes are --supporters and --gifts);
2. signs an admin in through the real login form and requests each dashboard page
   of the scenarios below in-process through Flask's test client (so the figures are
   the app's own time: routing, access check, queries, template; no network, no
   gunicorn), --runs times each after --warmup untimed ones, round-robin over the
   scenarios so a slow moment of this shared machine hits them all alike;
3. runs the full gifts export in a child process of its own, reading the streamed
   CSV to the end and counting its rows, and reports rows per second and the child's
   peak resident memory and its CPU time; once for the gifts of the last 40 days (about
   a tenth of them) and once for all, so you can see whether memory grows with the row
   count (--export-only measures the export alone, not the pages);
4. prints a Markdown table and writes every figure as JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

import sqlalchemy as sa  # noqa: E402

from bench.databases import fresh_database, make_app  # noqa: E402

ADMIN_EMAIL, ADMIN_PASSWORD = "bench-admin@example.org", "bench-password-long-enough"

#: (name, path, target in ms): what staff do most, at the sizes the issue names
SCENARIOS: list[tuple[str, str, int]] = [
    ("supporters: first page (last gift)", "/dashboard/supporters/", 50),
    ("supporters: deep page (1,000)", "/dashboard/supporters/?page=1000", 50),
    ("supporters: last page", "/dashboard/supporters/?page=2000", 50),
    ("supporters: sorted by total", "/dashboard/supporters/?sort=total&dir=desc", 50),
    ("supporters: sorted by name", "/dashboard/supporters/?sort=name&dir=asc", 50),
    ("search: surname prefix “kowal”", "/dashboard/supporters/?q=kowal", 50),
    ("search: first name “anna”", "/dashboard/supporters/?q=anna", 50),
    ("search: accents “Łukasz Ż”", "/dashboard/supporters/?q=%C5%81ukasz+%C5%BB", 50),
    ("search: e-mail “maria.nowak.1”", "/dashboard/supporters/?q=maria.nowak.1", 50),
    ("search: no match", "/dashboard/supporters/?q=qqqzzz", 50),
    ("search: second half of a double surname “-wójcik”", "/dashboard/supporters/?q=w%C3%B3jcik", 50),
    ("search: e-mail domain “mail.example.pl” (a fifth)", "/dashboard/supporters/?q=mail.example.pl", 50),
    ("search: e-mail domain “@poczta.example.pl”", "/dashboard/supporters/?q=%40poczta.example.pl", 50),
    ("filter: recurring active", "/dashboard/supporters/?recurring=active", 50),
    ("filter: newsletter yes", "/dashboard/supporters/?newsletter=yes", 50),
    ("filter: newsletter no", "/dashboard/supporters/?newsletter=no", 50),
    ("filter: country DE, tag", "/dashboard/supporters/?country=DE&tag=board", 50),
    ("filter: gave in the last 30 days", "/dashboard/supporters/?gave_from={month_ago}", 50),
    ("gifts: first page", "/dashboard/gifts/", 50),
    ("gifts: refunded", "/dashboard/gifts/?status=refunded", 50),
    ("gifts: one article", "/dashboard/gifts/?article=article-042", 50),
    ("overview", "/dashboard/", 300),
]


def prepare(url: str, supporters: int, gifts: int) -> dict[str, int]:
    from flask_migrate import upgrade

    from bench import dashboard_data
    from supporters.extensions import db
    from supporters.models import StaffRole, StaffUser

    app = make_app(url)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
    counts = dashboard_data.load(url, supporters, gifts)
    with app.app_context():
        user = StaffUser(email=ADMIN_EMAIL, role=StaffRole.ADMIN)
        user.set_password(ADMIN_PASSWORD)
        db.session.add(user)
        db.session.commit()
    return counts


def signed_in_client(app: Any) -> Any:
    client = app.test_client()
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    if response.status_code != 303:
        raise SystemExit(f"could not sign in: {response.status_code}")
    return client


def measure_pages(url: str, runs: int, warmup: int) -> list[dict[str, Any]]:
    app = make_app(url)
    client = signed_in_client(app)
    month_ago = (date.today() - timedelta(days=30)).isoformat()
    paths = [(name, path.format(month_ago=month_ago), target) for name, path, target in SCENARIOS]
    for name, path, _target in paths:
        for _ in range(warmup):
            response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"{name}: {path} answered {response.status_code}")
    timings: dict[str, list[float]] = {name: [] for name, _, _ in paths}
    for _ in range(runs):
        for name, path, _target in paths:
            started = time.perf_counter()
            response = client.get(path)
            response.get_data()
            timings[name].append((time.perf_counter() - started) * 1000)
    results = []
    for name, path, target in paths:
        values = sorted(timings[name])
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        results.append(
            {
                "scenario": name,
                "path": path,
                "target_ms": target,
                "runs": len(values),
                "p50_ms": round(statistics.median(values), 1),
                "p95_ms": round(p95, 1),
                "max_ms": round(values[-1], 1),
            }
        )
    return results


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def export_child(url: str, since: str | None) -> None:
    """In a process of its own: stream the gifts export, print rows, seconds and memory.

    Memory is sampled while the CSV streams: the peak is the most this process held
    during the export. (Its lifetime high-water mark would mostly show the argon2
    hash of the sign-in, which takes 64 MB for a moment and gives it back.)
    """
    app = make_app(url)
    client = signed_in_client(app)
    before = rss_mb()
    path = "/dashboard/gifts/export.csv" + (f"?date_from={since}" if since else "")
    started, cpu_started = time.perf_counter(), time.process_time()
    response = client.post(path, buffered=False)
    if response.status_code != 200:
        raise SystemExit(f"the export answered {response.status_code}")
    rows, peak = -1, before  # -1: the header
    for number, chunk in enumerate(response.response):
        rows += chunk.count(b"\r\n") if isinstance(chunk, bytes) else chunk.count("\r\n")
        if number % 50 == 0:
            peak = max(peak, rss_mb())
    response.close()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak = max(peak, rss_mb())
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": round(seconds, 2),
                "rows_per_s": round(rows / seconds),
                # this process's own CPU time: on a shared machine, what the export cost it
                # (on PostgreSQL the server's work is not in it)
                "cpu_seconds": round(cpu_seconds, 2),
                "rows_per_cpu_s": round(rows / cpu_seconds),
                "rss_before_mb": round(before, 1),
                "peak_rss_mb": round(peak, 1),
            }
        )
    )


def measure_export(url: str, since: str | None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--export-child", url] + (["--since", since] if since else []),
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    if done.returncode:
        raise SystemExit(f"export child failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(pages: list[dict[str, Any]], exports: list[dict[str, Any]]) -> str:
    lines = ["| scenario | p50 ms | p95 ms | max ms | target p95 |", "|---|---:|---:|---:|---:|"]
    for row in pages:
        mark = "" if row["p95_ms"] <= row["target_ms"] else " **missed**"
        lines.append(
            f"| {row['scenario']} | {row['p50_ms']} | {row['p95_ms']} | {row['max_ms']} | ≤ {row['target_ms']}{mark} |"
        )
    lines += [
        "",
        "| gifts export | rows | seconds | rows/s | CPU s | rows/CPU s | RSS before MB | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in exports:
        lines.append(
            f"| {row['label']} | {row['rows']:,} | {row['seconds']} | {row['rows_per_s']:,} | "
            f"{row['cpu_seconds']} | {row['rows_per_cpu_s']:,} | {row['rss_before_mb']} | {row['peak_rss_mb']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server URL; a fresh database is made on it")
    parser.add_argument("--reuse", metavar="URL", help="measure this database, loaded by an earlier --keep run")
    parser.add_argument("--keep", action="store_true", help="keep the loaded database and print its URL")
    parser.add_argument("--supporters", type=int, default=100_000)
    parser.add_argument("--gifts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--export-only", action="store_true", help="measure only the gifts export, not the pages")
    parser.add_argument("--export-child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--since", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(args.export_child, args.since)
        return

    with ExitStack() as stack:
        counts: dict[str, int] = {}
        if args.reuse:
            url = args.reuse
        else:
            workdir = (
                Path(tempfile.mkdtemp(prefix="bench-dash-"))
                if args.keep
                else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dash-")))
            )
            url, drop = fresh_database(args.postgres, workdir, "dash")
            if not args.keep:
                stack.callback(drop)
            started = time.monotonic()
            counts = prepare(url, args.supporters, args.gifts)
            print(f"loaded in {time.monotonic() - started:.0f} s: {url}", file=sys.stderr)
        pages = [] if args.export_only else measure_pages(url, args.runs, args.warmup)
        exports = []
        if not args.skip_export:
            # the last 40 days (about a tenth of the gifts), then all: does memory grow with size?
            since = (date.today() - timedelta(days=40)).isoformat()
            exports.append({"label": f"since {since}", **measure_export(url, since)})
            exports.append({"label": "all gifts", **measure_export(url, None)})
        database = sa.make_url(url).get_backend_name()
        report = {
            "database": database,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
            "rows": counts,
            "runs": args.runs,
            "pages": pages,
            "exports": exports,
        }
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"dashboard-{database}-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
        out.write_text(json.dumps(report, indent=2))
        print(table(pages, exports))
        print(f"\n{out.relative_to(ROOT)}" + (f"\nkept: {url}" if args.keep and not args.reuse else ""))


if __name__ == "__main__":
    main()
