"""Where the time of a page goes: the app in-process (Flask's test client, no HTTP server),
timed per request, its SQL statements counted, and profiled with cProfile.

    .venv/bin/python bench/profile_article.py                     # the demo article page
    .venv/bin/python bench/profile_article.py /widget/config/general.json /healthz
    .venv/bin/python bench/profile_article.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/profile_article.py --requests 300 --top 30 --sort cumulative

It builds a fresh database (SQLite in a temporary folder, or a new database on the
given PostgreSQL server, dropped afterwards), migrates it and seeds the demo, like
bench/http_throughput.py. For each path it prints: the mean time per request with
and without the profiler's overhead, the SQL statements of one request, and the
functions that took the most time. Flask's hello world (bench/hello_app.py) is
timed the same way, as the floor.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from http_throughput import DEMO_ARTICLE, SECRET_KEY, postgres_database, sqlite_database  # noqa: E402


def per_request_seconds(client: Any, path: str, n: int, rounds: int = 5) -> tuple[float, float]:
    """Medians over `rounds` of the mean wall time and the mean CPU time of this process
    for one GET of `path`. CPU time hardly moves when other processes share the machine
    (wall time does); with PostgreSQL it leaves out the server's own work."""
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            client.get(path)
        walls.append((time.perf_counter() - wall) / n)
        cpus.append((time.process_time() - cpu) / n)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description="Profile pages of the app in-process.")
    parser.add_argument("paths", nargs="*", default=[f"/articles/{DEMO_ARTICLE}"])
    parser.add_argument("--postgres", metavar="URL", help="use a fresh database on this PostgreSQL server")
    parser.add_argument("--requests", type=int, default=200, help="requests per timing round and profile (default 200)")
    parser.add_argument("--top", type=int, default=25, help="how many functions to list (default 25)")
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"], help="profile order")
    args = parser.parse_args()
    if not 1 <= args.requests <= 5000:
        parser.error("--requests 1..5000")

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="supporters-profile-")))
        database = postgres_database(args.postgres) if args.postgres else sqlite_database(workdir)
        database_url, db_info = stack.enter_context(database)
        for name in [k for k in os.environ if k.startswith(("SUPPORTERS_", "STRIPE_", "MAIL_", "RATELIMIT_"))]:
            del os.environ[name]
        os.environ.update(SECRET_KEY=SECRET_KEY, DATABASE_URL=database_url, MAIL_FILE_DIR=str(workdir / "mail"))

        import flask_migrate
        from hello_app import app as hello
        from sqlalchemy import event

        from supporters import create_app
        from supporters.demo import content as demo
        from supporters.extensions import db

        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
        with app.app_context():
            flask_migrate.upgrade(directory=str(ROOT / "migrations"))
            demo.seed()
            db.session.commit()
            engine = db.engine
        statements: list[str] = []
        event.listen(
            engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_: statements.append(" ".join(statement.split())),
        )

        hello_client = hello.test_client()
        hello_client.get("/")
        floor, floor_cpu = per_request_seconds(hello_client, "/", args.requests)
        print(f"database: {db_info['engine']} {db_info['version']}")
        print(f"hello world (test client): {floor * 1e6:.0f} µs wall, {floor_cpu * 1e6:.0f} µs CPU per request\n")

        client = app.test_client()
        for path in args.paths:
            first = client.get(path)
            if first.status_code != 200:
                print(f"{path}: answered {first.status_code}; skipped")
                continue
            statements.clear()
            client.get(path)
            one_request = list(statements)
            plain, plain_cpu = per_request_seconds(client, path, args.requests)

            profiler = cProfile.Profile()
            start = time.perf_counter()
            profiler.enable()
            for _ in range(args.requests):
                client.get(path)
            profiler.disable()
            profiled = (time.perf_counter() - start) / args.requests

            print("=" * 100)
            print(
                f"GET {path}: {plain * 1e3:.2f} ms wall, {plain_cpu * 1e3:.2f} ms CPU per request "
                f"({plain_cpu / floor_cpu:.1f}× hello world's CPU; {profiled * 1e3:.2f} ms under cProfile), "
                f"{len(first.data)} bytes"
            )
            print(f"SQL statements in one request: {len(one_request)}")
            for statement in one_request:
                print(f"  - {statement[:160]}{'…' if len(statement) > 160 else ''}")
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats(args.sort).print_stats(args.top)
            text = out.getvalue()
            text = re.sub(r"^.*?(?=\s+ncalls)", "", text, flags=re.S)  # drop the preamble
            print(text.replace(str(ROOT) + "/", "").replace(sys.prefix + "/lib/", ""))
            print("app functions and rendering, cumulative time per request (under cProfile):")
            for label, seconds in breakdown(stats, args.requests):
                print(f"  {label:<60} {seconds * 1e3:6.2f} ms")
            summary = group_by_area(stats)
            print("time by area (own time of functions, % of the profile):")
            for area, share in summary:
                print(f"  {area:<28} {100 * share:5.1f} %")
            print()
    return 0


def breakdown(stats: pstats.Stats, requests: int) -> list[tuple[str, float]]:
    """Cumulative time of the app's own functions (supporters/) and of render_template, per request."""
    rows = []
    for (filename, line, name), (_cc, _nc, _tt, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "/supporters/" in filename or (filename.endswith("flask/templating.py") and name == "render_template"):
            where = filename.split("/supporters/", 1)[-1] if "/supporters/" in filename else "flask/templating.py"
            rows.append((f"{where}:{line} {name}", cumtime / requests))
    return sorted(rows, key=lambda row: -row[1])[:12]


AREAS = [
    ("jinja2 / templates", ("jinja2/", "templates/", "<template>", "markupsafe/")),
    ("sqlalchemy", ("sqlalchemy/",)),
    ("database driver", ("sqlite3", "psycopg", "_sqlite3")),
    ("babel / flask_babel", ("babel/", "flask_babel/")),
    ("flask_limiter / limits", ("flask_limiter/", "limits/")),
    ("werkzeug", ("werkzeug/",)),
    ("flask", ("flask/",)),
    ("supporters (app code)", ("supporters/",)),
]


def group_by_area(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time (tottime) per library: which layer the time is spent in."""
    totals: dict[str, float] = {}
    grand = 0.0
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        grand += tottime
        where = f"{filename}:{name}"
        area = next(
            (label for label, marks in AREAS if any(mark in where for mark in marks)), "other (stdlib, builtins)"
        )
        totals[area] = totals.get(area, 0.0) + tottime
    return sorted(((area, t / grand) for area, t in totals.items()), key=lambda item: -item[1])


if __name__ == "__main__":
    sys.exit(main())
