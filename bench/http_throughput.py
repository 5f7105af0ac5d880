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
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterator

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
GUNICORN_SETTINGS = ["-w", "2", "--threads", "1", "-k", "sync", "--backlog", "2048",
                     "--access-logfile", "/dev/null", "--log-level", "warning"]

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
    done = subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], env=env, cwd=cwd,
                          timeout=300, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


@contextmanager
def gunicorn(app: str, pythonpath: Path, env: dict[str, str], cwd: Path, log: Path) -> Iterator[tuple[int, int]]:
    """A gunicorn serving `app` on a free loopback port, in its own process group: (port, group id)."""
    port = free_port()
    cmd = [str(BIN / "gunicorn"), *GUNICORN_SETTINGS, "-b", f"127.0.0.1:{port}",
           "--pythonpath", str(pythonpath), "--error-logfile", str(log), app]
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn {app} exited with {proc.returncode}; see {log}:\n{log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn {app} did not listen within 60 s") from None
                time.sleep(0.2)
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


def cpu_snapshot(groups: set[int]) -> dict[str, float]:
    """CPU time (in clock ticks) of the machine, of our gunicorn process groups, and of
    our reaped children (wrk), to tell how much of the machine others took during a run."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    ours = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            rest = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[2]) in groups:
            ours += int(rest[11]) + int(rest[12])
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    tick = os.sysconf("SC_CLK_TCK")
    return {"busy": sum(fields[:3]), "ours": ours, "children": (children.ru_utime + children.ru_stime) * tick,
            "wall": time.monotonic() * tick}


def other_cpu_share(before: dict[str, float], after: dict[str, float]) -> float:
    """The share of all CPUs (0..1) that processes other than ours used (user+system; approximate)."""
    delta = {k: after[k] - before[k] for k in before}
    others = delta["busy"] - delta["ours"] - delta["children"]
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
        yield (url.set(database=name).render_as_string(hide_password=False),
               {"engine": "postgresql", "version": version, "database": name})
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- measuring ----------------------------------------------------------------------

def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
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
        [str(BIN / "python"), "-c",
         "import platform; from importlib.metadata import version as v;"
         "print(platform.python_version(), *(v(p) for p in ('gunicorn', 'flask', 'werkzeug', 'jinja2', 'sqlalchemy')))"],
        capture_output=True, text=True, check=True).stdout.split()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
        "python": versions[0], "gunicorn": versions[1], "flask": versions[2], "werkzeug": versions[3],
        "jinja2": versions[4], "sqlalchemy": versions[5], "wrk": wrk_version.strip(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="HTTP throughput of the public pages against Flask's hello world.")
    parser.add_argument("--postgres", metavar="URL", help="run on a fresh database on this PostgreSQL server "
                        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) instead of SQLite")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per target; the median is reported (default 3)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per target (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--article", default=DEMO_ARTICLE, help=f"article slug (default {DEMO_ARTICLE})")
    args = parser.parse_args()
    if not (1 <= args.duration <= 120 and 1 <= args.runs <= 10 and 0 <= args.warmup <= 30):
        parser.error("keep it bounded: --duration 1..120, --runs 1..10, --warmup 0..30")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    # a TERM (or a second Ctrl-C) still runs the finally blocks that stop the gunicorns
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
            gunicorn("hello_app:app", BENCH, env, workdir, workdir / "hello.log"))
        app_port, app_group = stack.enter_context(gunicorn("wsgi:app", ROOT, env, workdir, workdir / "app.log"))
        groups = {hello_group, app_group}
        hello, app = f"http://127.0.0.1:{hello_port}", f"http://127.0.0.1:{app_port}"

        config_url = f"{app}/widget/config/general.json"
        script_url = f"{app}/widget.js"
        config_etag = fetch(config_url)[1].get("ETag", "")
        script_etag = fetch(script_url)[1].get("ETag", "")
        targets = [
            {"name": "hello world", "path": "/", "url": f"{hello}/", "status": 200, "headers": {}},
            {"name": "healthz (SELECT 1)", "path": "/healthz", "url": f"{app}/healthz", "status": 200, "headers": {}},
            {"name": "widget config", "path": "/widget/config/general.json", "url": config_url, "status": 200,
             "headers": {}},
            {"name": "widget config, If-None-Match", "path": "/widget/config/general.json", "url": config_url,
             "status": 304, "headers": {"If-None-Match": config_etag}},
            {"name": "widget.js", "path": "/widget.js", "url": script_url, "status": 200, "headers": {}},
            {"name": "widget.js, If-None-Match", "path": "/widget.js", "url": script_url, "status": 304,
             "headers": {"If-None-Match": script_etag}},
            {"name": "article page", "path": f"/articles/{args.article}", "url": f"{app}/articles/{args.article}",
             "status": 200, "headers": {}},
        ]
        for target in targets:
            status, headers, body = fetch(target["url"], target["headers"])
            if status != target["status"]:
                raise SystemExit(f"{target['url']} answered {status}, expected {target['status']}")
            target["bytes"] = len(body)
            target["response_headers"] = len(str(headers))
            target["runs"] = []

        idle = cpu_snapshot(groups)
        time.sleep(2)
        busy = other_cpu_share(idle, cpu_snapshot(groups))
        if busy > 0.1:
            print(f"note: other processes use {100 * busy:.0f} % of the CPUs before the runs: "
                  "the figures will be low and noisy", flush=True)
        print(f"warming up ({args.warmup} s per target) …", flush=True)
        for target in targets:
            if args.warmup:
                wrk(target["url"], args.warmup, args.threads, args.connections, target["headers"])
        for run in range(1, args.runs + 1):
            for target in targets:
                before = cpu_snapshot(groups)
                report = wrk(target["url"], args.duration, args.threads, args.connections, target["headers"])
                report["other_cpu_share"] = other_cpu_share(before, cpu_snapshot(groups))
                target["runs"].append(report)
                errors = sum(report["errors"].values())
                print(f"  run {run}/{args.runs}  {target['name']:<30} {report['rps']:8.0f} req/s  "
                      f"p50 {report['latency_us']['p50'] / 1000:6.2f} ms  p99 {report['latency_us']['p99'] / 1000:6.2f} ms"
                      f"  (others used {100 * report['other_cpu_share']:3.0f} % CPU)"
                      + (f"  errors {report['errors']}" if errors else ""), flush=True)
    # every gunicorn is stopped and the database dropped here

    hello_rps = 0.0
    for target in targets:
        runs = target["runs"]
        target["median"] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["latency_us"]["p50"] for r in runs) / 1000,
            "p99_ms": statistics.median(r["latency_us"]["p99"] for r in runs) / 1000,
            "errors": sum(sum(r["errors"].values()) for r in runs),
        }
        if target["name"] == "hello world":
            hello_rps = target["median"]["rps"]
    for target in targets:
        target["median"]["vs_hello"] = target["median"]["rps"] / hello_rps if hello_rps else None

    result = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "database": db_info,
        "gunicorn": GUNICORN_SETTINGS,
        "wrk": {"threads": args.threads, "connections": args.connections, "duration_s": args.duration,
                "runs": args.runs, "warmup_s": args.warmup},
        "targets": targets,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"http-{db_info['engine']}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")

    print()
    print(f"{db_info['engine']} {db_info['version']}; gunicorn {' '.join(GUNICORN_SETTINGS[:6])}; "
          f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, median of {args.runs}")
    print()
    print("| target | path | status | req/s | p50 ms | p99 ms | vs hello world |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for target in targets:
        m = target["median"]
        print(f"| {target['name']} | `{target['path']}` | {target['status']} | {m['rps']:.0f} | {m['p50_ms']:.2f} | "
              f"{m['p99_ms']:.2f} | {m['vs_hello']:.2f} |" + (f" ({m['errors']} errors)" if m["errors"] else ""))
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
