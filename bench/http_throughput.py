"""HTTP throughput of the public, cacheable pages, against Flask's hello world.

    .venv/bin/python bench/http_throughput.py                       # SQLite
    .venv/bin/python bench/http_throughput.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

What it does, and stops by itself (every run of wrk is bounded by --duration):

1. makes a fresh database: SQLite in a temporary folder, or with --postgres a new
   database `bench_<random>` on that server (dropped at the end); runs
   `flask --app wsgi db upgrade` and `flask --app wsgi demo seed` on it with a fixed
   SECRET_KEY (so nothing is written to instance/) and no .env;
2. starts two gunicorns with identical settings on free loopback ports: the
   hello-world app (bench/hello_app.py) and the real app (wsgi:app);
3. checks each target answers the expected status, warms every target up, then
   runs wrk --runs times per target, round-robin over the targets (so a slow
   moment of this shared machine hits all targets alike rather than one);
4. prints a Markdown table (medians over the runs) and writes every figure as JSON
   to bench/results/http-<database>-<time>.json.

Both gunicorns are started in their own process groups and killed in a `finally`.
Only 127.0.0.1 is ever a target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = ROOT / ".venv" / "bin"
RESULTS = BENCH / "results"
LUA = BENCH / "wrk_report.lua"

#: fixed, 40 characters: the app must not generate instance/secret_key
SECRET_KEY = "bench-only-secret-key-not-for-production"
assert len(SECRET_KEY) == 40

#: identical for both apps. One sync worker per core: the sync worker is gunicorn's
#: default (what `gunicorn wsgi:app` behind a buffering proxy runs), and more workers
#: than cores only adds context switches on a 2-core machine where wrk needs CPU too.
GUNICORN_SETTINGS = [
    "-w",
    "2",
    "--threads",
    "1",
    "-k",
    "sync",
    "--backlog",
    "2048",
    "--access-logfile",
    "/dev/null",
    "--log-level",
    "warning",
]

DEMO_ARTICLE = "baltic-grid-after-synchronisation"


# --- processes ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(database_url: str, workdir: Path) -> dict[str, str]:
    """The environment for flask and gunicorn: this machine's, less the app's own settings."""
    drop = ("SUPPORTERS_", "STRIPE_", "MAIL_", "FLASK_", "RATELIMIT_", "WIDGET_", "DONATE_", "LOCALSTRIPE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=database_url,
        FLASK_SKIP_DOTENV="1",  # the flask CLI would look for .env files up from the cwd
        MAIL_FILE_DIR=str(workdir / "mail"),
        PYTHONPATH=str(ROOT),
    )
    return env


def flask(env: dict[str, str], cwd: Path, *args: str) -> None:
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args], env=env, cwd=cwd, timeout=300, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def start_server(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start a server in a process group of its own (so `stop_group` stops all of it)."""
    return subprocess.Popen(
        cmd, env=env, cwd=cwd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, log: Path, what: str) -> None:
    """Wait up to 60 s for the server to accept connections on `port`; raise, with its log,
    if it exits first or never does."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen within 60 s") from None
            time.sleep(0.2)


@contextmanager
def gunicorn(app: str, pythonpath: Path, env: dict[str, str], cwd: Path, log: Path) -> Iterator[tuple[int, int]]:
    """A gunicorn serving `app` on a free loopback port, in its own process group: (port, group id)."""
    port = free_port()
    cmd = [
        str(BIN / "gunicorn"),
        *GUNICORN_SETTINGS,
        "-b",
        f"127.0.0.1:{port}",
        "--pythonpath",
        str(pythonpath),
        "--error-logfile",
        str(log),
        app,
    ]
    proc = start_server(cmd, env, cwd)
    try:
        wait_until_listening(proc, port, log, f"gunicorn {app}")
        yield port, proc.pid
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """TERM the whole process group (arbiter and workers), KILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            # the arbiter is gone; make sure no worker of its group outlived it
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        except subprocess.TimeoutExpired:
            continue


def cpu_snapshot(groups: set[int], marker: str = "") -> dict[str, float]:
    """CPU time (in clock ticks) of the machine; of each of our gunicorn process groups
    ("group:<id>"); of the PostgreSQL backends whose process title names our database,
    `marker` ("db"); and of our reaped children (wrk). From these: how much of the
    machine others took during a run, and how much CPU the server spent per request."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    snapshot: dict[str, float] = {f"group:{group}": 0.0 for group in groups}
    snapshot["db"] = 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            rest = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            group = int(rest[2])
            key = (
                f"group:{group}"
                if group in groups
                else ("db" if marker and rest[0] != "Z" and marker.encode() in (proc / "cmdline").read_bytes() else "")
            )
        except (OSError, IndexError, ValueError):
            continue
        if key:
            snapshot[key] += int(rest[11]) + int(rest[12])
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    tick = os.sysconf("SC_CLK_TCK")
    snapshot.update(
        busy=sum(fields[:3]),
        steal=fields[7] if len(fields) > 7 else 0,
        ours=sum(v for k, v in snapshot.items() if k.startswith("group:") or k == "db"),
        children=(children.ru_utime + children.ru_stime) * tick,
        wall=time.monotonic() * tick,
        tick=tick,
    )
    return snapshot


def server_cpu_ms(before: dict[str, float], after: dict[str, float], group: int, with_db: bool) -> float:
    """CPU milliseconds the server (its gunicorn group, and the database backends if asked) spent."""
    ticks = after[f"group:{group}"] - before[f"group:{group}"]
    if with_db:
        ticks += after["db"] - before["db"]
    return 1000 * ticks / after["tick"]


def wait_for_quiet(groups: set[int], marker: str, threshold: float, max_wait: float) -> float:
    """Wait (at most `max_wait` s) until others use less than `threshold` of the CPUs over 2 s; their last share."""
    deadline = time.monotonic() + max_wait
    while True:
        before = cpu_snapshot(groups, marker)
        time.sleep(2)
        share = other_cpu_share(before, cpu_snapshot(groups, marker))
        if share <= threshold or time.monotonic() >= deadline:
            return share


def other_cpu_share(before: dict[str, float], after: dict[str, float]) -> float:
    """The share of all CPUs (0..1) that processes other than ours used (user+system), plus
    the time the hypervisor stole; approximate."""
    delta = {k: after[k] - before[k] for k in ("busy", "ours", "children", "steal", "wall")}
    others = delta["busy"] - delta["ours"] - delta["children"] + delta["steal"]
    return max(0.0, others / (delta["wall"] * (os.cpu_count() or 1)))


# --- databases --------------------------------------------------------------------


@contextmanager
def sqlite_database(workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    import sqlite3

    yield f"sqlite:///{workdir / 'bench.db'}", {"engine": "sqlite", "version": sqlite3.sqlite_version}


@contextmanager
def postgres_database(server_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A new database on the server of `server_url`, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url.replace("postgres://", "postgresql+psycopg://", 1))
    host = url.host or ""
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        raise SystemExit(f"--postgres must point at this machine (127.0.0.1), not {host!r}")
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"bench_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            url.set(database=name).render_as_string(hide_password=False),
            {"engine": "postgresql", "version": version, "database": name},
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- measuring ----------------------------------------------------------------------


def fetch(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wrk(url: str, seconds: int, threads: int, connections: int, headers: dict[str, str]) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA)]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    match = re.search(r"^WRK_JSON (.*)$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    report = json.loads(match.group(1))
    report["rps"] = report["requests"] / (report["duration_us"] / 1e6)
    return report


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = subprocess.run(
        [
            str(BIN / "python"),
            "-c",
            "import platform; from importlib.metadata import version as v;"
            "print(platform.python_version(), "
            "*(v(p) for p in ('gunicorn', 'flask', 'werkzeug', 'jinja2', 'sqlalchemy')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": versions[0],
        "gunicorn": versions[1],
        "flask": versions[2],
        "werkzeug": versions[3],
        "jinja2": versions[4],
        "sqlalchemy": versions[5],
        "wrk": wrk_version.strip(),
    }


def summarise(targets: list[dict[str, Any]]) -> None:
    """Add to each target its medians over the kept runs, its best run (of every run made,
    busy ones included: other processes only ever slow a run down), and the ratios to hello world."""
    for target in targets:
        runs = target["runs"]
        target["median"] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["latency_us"]["p50"] for r in runs) / 1000,
            "p99_ms": statistics.median(r["latency_us"]["p99"] for r in runs) / 1000,
            "errors": sum(sum(r["errors"].values()) for r in runs),
            "max_other_cpu_share": max(r["other_cpu_share"] for r in runs),
            "server_cpu_us_per_request": 1000 * statistics.median(r["server_cpu_ms_per_request"] for r in runs),
        }
        target["best"] = {"rps": max(r["rps"] for r in [*runs, *target.get("discarded", [])])}
    hello = next(t for t in targets if t["name"] == "hello world")
    for target in targets:
        median, best = target["median"], target["best"]
        median["vs_hello"] = median["rps"] / hello["median"]["rps"]
        best["vs_hello"] = best["rps"] / hello["best"]["rps"]
        cpu = median["server_cpu_us_per_request"]
        # what the server could serve with the whole machine at this CPU cost, and against hello world's cost
        median["cpu_bound_rps"] = (os.cpu_count() or 1) * 1e6 / cpu if cpu else None
        median["cpu_vs_hello"] = hello["median"]["server_cpu_us_per_request"] / cpu if cpu else None


def print_table(result: dict[str, Any]) -> None:
    db_info, wrk_args = result["database"], result["wrk"]
    print()
    print(
        f"{db_info['engine']} {db_info['version']}; gunicorn {' '.join(result['gunicorn'][:6])}; "
        f"wrk -t{wrk_args['threads']} -c{wrk_args['connections']} -d{wrk_args['duration_s']}s, "
        f"median of {wrk_args['runs']} runs; {result['started']}"
    )
    print()
    print(
        "| target | path | status | req/s (median) | p50 ms | p99 ms | vs hello | req/s (best) | best vs hello "
        "| server CPU µs/req | CPU vs hello |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for target in result["targets"]:
        m, b = target["median"], target["best"]
        print(
            f"| {target['name']} | `{target['path']}` | {target['status']} | {m['rps']:.0f} | {m['p50_ms']:.1f} | "
            f"{m['p99_ms']:.1f} | {m['vs_hello']:.2f} | {b['rps']:.0f} | {b['vs_hello']:.2f} | "
            f"{m['server_cpu_us_per_request']:.0f} | {m['cpu_vs_hello']:.2f} |"
            + (f" ({m['errors']} errors)" if m["errors"] else "")
        )
    print(
        "\n(server CPU: CPU time of that gunicorn's processes, and of the database backends for the app,"
        " per request, median; it moves less than req/s when other processes share the machine)"
    )


def reprint(path: Path) -> int:
    """Print the table of a results file again (with the summary of this version of the script)."""
    result = json.loads(path.read_text())
    summarise(result["targets"])
    print_table(result)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="HTTP throughput of the public pages against Flask's hello world.")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run on a fresh database on this PostgreSQL server "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) instead of SQLite",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per target; the median is reported (default 3)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per target (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument(
        "--busy",
        type=float,
        default=0.10,
        help="repeat a run (at most --retries times) when other "
        "processes took more than this share of the CPUs during it (default 0.10)",
    )
    parser.add_argument("--retries", type=int, default=1, help="repeats of a busy run (default 1; 0 keeps every run)")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=30,
        help="before each run, wait at most this many seconds "
        "for other processes to drop under --busy (default 30; 0: do not wait)",
    )
    parser.add_argument("--article", default=DEMO_ARTICLE, help=f"article slug (default {DEMO_ARTICLE})")
    parser.add_argument(
        "--report",
        metavar="RESULTS.json",
        type=Path,
        help="measure nothing: print the table of an earlier results file",
    )
    args = parser.parse_args()
    if args.report:
        return reprint(args.report)
    if not (
        1 <= args.duration <= 120
        and 1 <= args.runs <= 10
        and 0 <= args.warmup <= 30
        and 0 <= args.retries <= 5
        and 0 <= args.max_wait <= 600
    ):
        parser.error(
            "keep it bounded: --duration 1..120, --runs 1..10, --warmup 0..30, --retries 0..5, --max-wait 0..600"
        )
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    # a TERM (or a second Ctrl-C) still runs the finally blocks that stop the gunicorns
    def terminated(signum: int, _frame: object) -> None:
        print(
            f"stopped by signal {signum}: stopping the gunicorns and dropping the database", file=sys.stderr, flush=True
        )
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    started = datetime.now(UTC)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="supporters-bench-")))
        database = postgres_database(args.postgres) if args.postgres else sqlite_database(workdir)
        database_url, db_info = stack.enter_context(database)
        env = clean_env(database_url, workdir)
        print(f"database: {db_info['engine']} {db_info['version']}; migrating and seeding the demo …", flush=True)
        flask(env, workdir, "db", "upgrade")
        flask(env, workdir, "demo", "seed")

        hello_port, hello_group = stack.enter_context(
            gunicorn("hello_app:app", BENCH, env, workdir, workdir / "hello.log")
        )
        app_port, app_group = stack.enter_context(gunicorn("wsgi:app", ROOT, env, workdir, workdir / "app.log"))
        groups = {hello_group, app_group}
        marker = str(db_info.get("database", ""))  # PostgreSQL backends show it in their process title
        hello, app = f"http://127.0.0.1:{hello_port}", f"http://127.0.0.1:{app_port}"

        config_url = f"{app}/widget/config/general.json"
        script_url = f"{app}/widget.js"
        # the first answer waits for a worker to import the app: over 10 s on a busy machine
        config_etag = fetch(config_url, timeout=120)[1].get("ETag", "")
        script_etag = fetch(script_url)[1].get("ETag", "")
        targets: list[dict[str, Any]] = [
            {
                "name": "hello world",
                "path": "/",
                "url": f"{hello}/",
                "status": 200,
                "headers": {},
                "group": hello_group,
            },
            {"name": "healthz (SELECT 1)", "path": "/healthz", "url": f"{app}/healthz", "status": 200, "headers": {}},
            {
                "name": "widget config",
                "path": "/widget/config/general.json",
                "url": config_url,
                "status": 200,
                "headers": {},
            },
            {
                "name": "widget config, If-None-Match",
                "path": "/widget/config/general.json",
                "url": config_url,
                "status": 304,
                "headers": {"If-None-Match": config_etag},
            },
            {"name": "widget.js", "path": "/widget.js", "url": script_url, "status": 200, "headers": {}},
            {
                "name": "widget.js, If-None-Match",
                "path": "/widget.js",
                "url": script_url,
                "status": 304,
                "headers": {"If-None-Match": script_etag},
            },
            {
                "name": "article page",
                "path": f"/articles/{args.article}",
                "url": f"{app}/articles/{args.article}",
                "status": 200,
                "headers": {},
            },
        ]
        for target in targets:
            status, headers, body = fetch(target["url"], target["headers"])
            if status != target["status"]:
                raise SystemExit(f"{target['url']} answered {status}, expected {target['status']}")
            target["bytes"] = len(body)
            target["response_headers"] = len(str(headers))
            target["runs"] = []
            target["discarded"] = []

        busy = wait_for_quiet(groups, marker, args.busy, args.max_wait)
        if busy > args.busy:
            print(
                f"note: other processes use {100 * busy:.0f} % of the CPUs before the runs: "
                "the figures will be low and noisy",
                flush=True,
            )
        print(f"warming up ({args.warmup} s per target) …", flush=True)
        for target in targets:
            if args.warmup:
                wrk(target["url"], args.warmup, args.threads, args.connections, target["headers"])
        for run in range(1, args.runs + 1):
            for target in targets:
                for attempt in range(args.retries + 1):
                    quiet = wait_for_quiet(groups, marker, args.busy, args.max_wait) if args.max_wait else None
                    before = cpu_snapshot(groups, marker)
                    report = wrk(target["url"], args.duration, args.threads, args.connections, target["headers"])
                    after = cpu_snapshot(groups, marker)
                    report["other_cpu_share"] = other_cpu_share(before, after)
                    report["other_cpu_share_before"] = quiet
                    group = target.get("group", app_group)
                    report["server_cpu_ms"] = server_cpu_ms(before, after, group, group == app_group)
                    report["server_cpu_ms_per_request"] = report["server_cpu_ms"] / max(1, report["requests"])
                    errors = sum(report["errors"].values())
                    busy = report["other_cpu_share"] > args.busy and attempt < args.retries
                    print(
                        f"  run {run}/{args.runs}  {target['name']:<30} {report['rps']:8.0f} req/s  "
                        f"p50 {report['latency_us']['p50'] / 1000:6.2f} ms  "
                        f"p99 {report['latency_us']['p99'] / 1000:6.2f} ms"
                        f"  server CPU {1000 * report['server_cpu_ms_per_request']:5.0f} µs/req"
                        f"  (others used {100 * report['other_cpu_share']:3.0f} % CPU)"
                        + (f"  errors {report['errors']}" if errors else "")
                        + ("  -> busy, repeated" if busy else ""),
                        flush=True,
                    )
                    if busy:
                        target["discarded"].append(report)
                        continue
                    target["runs"].append(report)
                    break
    # every gunicorn is stopped and the database dropped here

    summarise(targets)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "database": db_info,
        "gunicorn": GUNICORN_SETTINGS,
        "wrk": {
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
            "runs": args.runs,
            "warmup_s": args.warmup,
            "busy": args.busy,
            "retries": args.retries,
            "max_wait_s": args.max_wait,
        },
        "targets": targets,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"http-{db_info['engine']}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")

    print_table(result)
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
