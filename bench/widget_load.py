"""The widget's beacons at full speed, and the widget's mixed load at a fixed rate.

    .venv/bin/python bench/widget_load.py beacons --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/widget_load.py mixed --postgres URL --rate 200 --seconds 600

What it does, and stops by itself:

1. makes a fresh database (SQLite in a temporary folder, or a new `bench_<random>` on
   the --postgres server, dropped at the end), migrates it and seeds the demo, as
   bench/http_throughput.py does;
2. serves the app with gunicorn, 2 sync workers (http_throughput's settings), its
   access log reduced to the status of each answer (so the server's own count of 204s
   is known exactly), rate limits on with a limit no benchmark reaches (the limiter's
   work stays in every request; with --redis its counters are in Redis, as in
   production);
3. `beacons`: wrk, closed loop, --connections for --duration seconds, POSTing the
   widget's JSON beacons (text/plain, as fetch() sends them; bench/wrk_beacons.lua
   cycles through impressions and clicks on our article and elsewhere, both variants);
   reports beacons/s, p50/p95/p99;
   `mixed`: an open-loop generator of its own (wrk paces nothing and Debian has no
   wrk2): request i is due at start + i/--rate, whatever happened before, on a new
   connection (HTTP/1.1, Connection: close), and its latency is counted from when it
   was due, so time spent queueing in the client or the server is in the figure
   (no coordinated omission). One widget config GET (half of them conditional, as a
   browser's cache sends them) to --beacons beacons;
4. both: waits for the flushers, stops gunicorn (its workers write what they hold on
   the way out), and checks that the impressions + clicks in the database equal the
   beacons the server answered 204 (from its access log), and the ones the client saw;
5. prints the figures and the load others put on the machine meanwhile, and writes
   them to bench/results/widget-<mode>-<time>.json.

Only 127.0.0.1 is ever a target; every run is bounded by its duration and timeouts;
gunicorn runs in its own process group, stopped in a `finally`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from http_throughput import (
    clean_env,
    cpu_snapshot,
    fetch,
    flask,
    free_port,
    other_cpu_share,
    postgres_database,
    sqlite_database,
    start_server,
    stop_group,
    wait_until_listening,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
RESULTS = BENCH / "results"
LUA = BENCH / "wrk_beacons.lua"
CAMPAIGN = "general"
DEMO_ARTICLE = "baltic-grid-after-synchronisation"
GUNICORN = ["-w", "2", "--threads", "1", "-k", "sync", "--backlog", "2048", "--log-level", "warning"]
#: a limit no run reaches: the limiter still counts every beacon, it never refuses one
NO_REAL_LIMIT = "100000000 per minute"


@contextmanager
def gunicorn(env: dict[str, str], cwd: Path, access_log: Path, error_log: Path) -> Iterator[tuple[int, Any]]:
    """The app on a free loopback port, in its own process group: (port, process)."""
    port = free_port()
    cmd = [
        str(BIN / "gunicorn"),
        *GUNICORN,
        "-b",
        f"127.0.0.1:{port}",
        "--pythonpath",
        str(ROOT),
        "--access-logfile",
        str(access_log),
        "--access-logformat",
        "%(s)s",
        "--error-logfile",
        str(error_log),
        "wsgi:app",
    ]
    proc = start_server(cmd, env, cwd)
    try:
        wait_until_listening(proc, port, error_log, "gunicorn")
        yield port, proc
    finally:
        stop_group(proc)


def ready(url: str) -> tuple[int, dict[str, str], bytes]:
    """The first answer of `url`, once the workers have booted (at most a minute)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return fetch(url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def counted(database_url: str) -> tuple[int, int]:
    """Impressions and clicks in the database."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT coalesce(sum(impressions), 0), coalesce(sum(clicks), 0) FROM widget_stat")
            ).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1])


def answered(access_log: Path) -> Counter[str]:
    """The statuses the server answered, from its access log."""
    return Counter(line.strip() for line in access_log.read_text().splitlines() if line.strip())


def events(variants: list[str]) -> list[dict[str, str]]:
    """A page view's beacons, cycled through: three impressions to a click, on our article and elsewhere."""
    found = []
    for variant in variants:
        for article in (DEMO_ARTICLE, "", "someone-elses-post"):
            found += [{"type": "impression", "campaign": CAMPAIGN, "article": article, "variant": variant}] * 3
            found.append({"type": "click", "campaign": CAMPAIGN, "article": article, "variant": variant})
    return found


def wrk_beacons(url: str, bodies: list[dict[str, str]], seconds: int, connections: int) -> dict[str, Any]:
    env = {**os.environ, "BEACONS": "\n".join(json.dumps(body) for body in bodies)}
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True, env=env).stdout
    match = re.search(r"^WRK_JSON (.*)$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    report: dict[str, Any] = json.loads(match.group(1))
    report["rps"] = report["requests"] / (report["duration_us"] / 1e6)
    return report


# --- the paced, open-loop generator --------------------------------------------------


async def one_request(port: int, raw: bytes, due: float, timeout: float) -> tuple[float, float, str]:
    """Send `raw` on a new connection; (due, latency from when it was due in s, status or error)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            data = await reader.read()
            writer.close()
        status = data[9:12].decode("ascii", "replace") if data.startswith(b"HTTP/1.1 ") else "bad answer"
    except TimeoutError:
        status = "timeout"
    except OSError as error:
        status = type(error).__name__
    return due, time.monotonic() - due, status


async def paced(port: int, requests: list[tuple[str, bytes]], rate: float, timeout: float) -> list[dict[str, Any]]:
    """Every request at its own due time, `rate` per second, none waiting for another: each
    is started when due (a late start, the client's own queueing, counts in its latency)."""
    start = time.monotonic() + 0.5
    tasks = []
    for number, (_kind, raw) in enumerate(requests):
        due = start + number / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_request(port, raw, due, timeout)))
    results = await asyncio.gather(*tasks)
    return [
        {"kind": kind, "at": due - start, "latency": latency, "status": status}
        for (kind, _raw), (due, latency, status) in zip(requests, results, strict=True)
    ]


def mixed_requests(
    total: int, beacons_per_config: int, bodies: list[dict[str, str]], etag: str
) -> list[tuple[str, bytes]]:
    host = "Host: 127.0.0.1\r\nConnection: close\r\nUser-Agent: widget-load\r\n"
    made: list[tuple[str, bytes]] = []
    configs = beacons = 0
    while len(made) < total:
        if len(made) % (beacons_per_config + 1) == 0:
            lang = ("en", "pl")[configs % 2]
            conditional = f"If-None-Match: {etag}\r\n" if configs % 2 == 0 and etag else ""
            raw = f"GET /widget/config/{CAMPAIGN}.json?lang={lang} HTTP/1.1\r\n{host}{conditional}\r\n"
            made.append(("config", raw.encode()))
            configs += 1
        else:
            body = json.dumps(bodies[beacons % len(bodies)]).encode()
            head = (
                f"POST /widget/event HTTP/1.1\r\n{host}Content-Type: text/plain;charset=UTF-8\r\n"
                f"Origin: https://blog.example.org\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            made.append(("beacon", head.encode() + body))
            beacons += 1
    return made


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def latency_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50": 1000 * percentile(values, 0.50),
        "p95": 1000 * percentile(values, 0.95),
        "p99": 1000 * percentile(values, 0.99),
        "max": 1000 * max(values, default=0.0),
    }


# --- the run -------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("beacons", "mixed"))
    parser.add_argument("--postgres", help="a PostgreSQL server URL on 127.0.0.1; SQLite when absent")
    parser.add_argument("--redis", help="rate-limit storage, e.g. redis://127.0.0.1:6379/13 (default memory://)")
    parser.add_argument("--duration", type=int, default=20, help="beacons: seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="beacons: wrk runs (the median is reported)")
    parser.add_argument("--connections", type=int, default=16, help="beacons: wrk connections")
    parser.add_argument("--rate", type=float, default=200.0, help="mixed: requests per second")
    parser.add_argument("--seconds", type=int, default=60, help="mixed: how long (600 for the target)")
    parser.add_argument("--beacons", type=int, default=2, help="mixed: beacons per config request")
    parser.add_argument("--timeout", type=float, default=10.0, help="mixed: a request slower than this is an error")
    args = parser.parse_args()
    if not shutil.which("wrk") and args.mode == "beacons":
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if args.redis and not re.match(r"redis://(127\.0\.0\.1|localhost)[:/]", args.redis):
        raise SystemExit("--redis must be on 127.0.0.1")
    if not 0 < args.seconds <= 3600 or not 0 < args.duration <= 600:
        raise SystemExit("a run lasts at most an hour (mixed) or ten minutes (beacons)")

    def terminated(signum: int, _frame: object) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    started = datetime.now(UTC)
    result: dict[str, Any] = {"mode": args.mode, "started": started.isoformat(timespec="seconds"), "args": vars(args)}
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="supporters-widget-")))
        database = postgres_database(args.postgres) if args.postgres else sqlite_database(workdir)
        database_url, db_info = stack.enter_context(database)
        result["database"] = db_info
        env = clean_env(database_url, workdir)
        env.update(WIDGET_EVENT_LIMIT=NO_REAL_LIMIT, RATELIMIT_STORAGE_URI=args.redis or "memory://")
        print(f"database: {db_info['engine']} {db_info['version']}; migrating and seeding the demo …", flush=True)
        flask(env, workdir, "db", "upgrade")
        flask(env, workdir, "demo", "seed")
        access_log, error_log = workdir / "access.log", workdir / "error.log"
        with gunicorn(env, workdir, access_log, error_log) as (port, proc):
            base = f"http://127.0.0.1:{port}"
            status, headers, body = ready(f"{base}/widget/config/{CAMPAIGN}.json")
            if status != 200:
                raise SystemExit(f"the widget config answered {status}")
            variants = [variant["key"] for variant in json.loads(body)["variants"]]
            bodies = events(variants)
            groups = {proc.pid}  # its own session: the group id is the arbiter's pid
            marker = str(db_info.get("database", ""))
            before = cpu_snapshot(groups, marker)
            if args.mode == "beacons":
                wrk_beacons(f"{base}/widget/event", bodies, 3, args.connections)  # warm-up
                runs = []
                for run in range(args.runs):
                    report = wrk_beacons(f"{base}/widget/event", bodies, args.duration, args.connections)
                    runs.append(report)
                    print(
                        f"  run {run + 1}/{args.runs}: {report['rps']:7.0f} beacons/s  "
                        f"p50 {report['latency_us']['p50'] / 1000:6.2f} ms  "
                        f"p95 {report['latency_us']['p95'] / 1000:6.2f} ms  "
                        f"p99 {report['latency_us']['p99'] / 1000:6.2f} ms  "
                        f"204s seen {report['no_content']}  errors {report['errors']}",
                        flush=True,
                    )
                result["runs"] = runs
                result["median"] = {
                    "rps": statistics.median(r["rps"] for r in runs),
                    "p95_ms": statistics.median(r["latency_us"]["p95"] for r in runs) / 1000,
                    "p99_ms": statistics.median(r["latency_us"]["p99"] for r in runs) / 1000,
                }
                seen_204 = sum(r["no_content"] for r in runs)
            else:
                etag = headers.get("ETag", "")
                total = int(args.rate * args.seconds)
                print(f"{total} requests at {args.rate:.0f}/s for {args.seconds} s …", flush=True)
                done = asyncio.run(
                    paced(port, mixed_requests(total, args.beacons, bodies, etag), args.rate, args.timeout)
                )
                expected = {"config": {"200", "304"}, "beacon": {"204"}}
                errors = Counter(d["status"] for d in done if d["status"] not in expected[d["kind"]])
                minutes = []
                for minute in range(0, args.seconds, 60):
                    window = [d["latency"] for d in done if minute <= d["at"] < minute + 60]
                    minutes.append({"from_s": minute, **latency_ms(window)})
                last = max(d["at"] + d["latency"] for d in done)
                result["mixed"] = {
                    "requests": len(done),
                    "achieved_rate": len(done) / last if last else 0.0,
                    "errors": dict(errors),
                    "statuses": dict(Counter(f"{d['kind']} {d['status']}" for d in done)),
                    "all": latency_ms([d["latency"] for d in done]),
                    "config": latency_ms([d["latency"] for d in done if d["kind"] == "config"]),
                    "beacon": latency_ms([d["latency"] for d in done if d["kind"] == "beacon"]),
                    "per_minute_p95_ms": [round(m["p95"], 2) for m in minutes],
                }
                seen_204 = sum(1 for d in done if d["kind"] == "beacon" and d["status"] == "204")
                print(json.dumps(result["mixed"], indent=1), flush=True)
            after = cpu_snapshot(groups, marker)
            result["other_cpu_share"] = other_cpu_share(before, after)
            served = sum(answered(access_log).values())
            result["server_cpu_us_per_request"] = {
                "gunicorn": 1e6 * (after[f"group:{proc.pid}"] - before[f"group:{proc.pid}"]) / after["tick"] / served,
                "postgresql": 1e6 * (after["db"] - before["db"]) / after["tick"] / served,
            }
            result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
            time.sleep(5)  # two flushes of every worker
            result["counted_before_stop"] = sum(counted(database_url))
        # gunicorn stopped: its workers wrote what they held on the way out
        counted_impressions, counted_clicks = counted(database_url)
        statuses = answered(access_log)
        result["check"] = {
            "server_answered_204": statuses.get("204", 0),
            "client_saw_204": seen_204,
            "counted_impressions": counted_impressions,
            "counted_clicks": counted_clicks,
            "counted": counted_impressions + counted_clicks,
            "server_statuses": dict(statuses),
        }
    # the database is dropped here
    check = result["check"]
    check["every_beacon_counted"] = check["counted"] == check["server_answered_204"]
    shown = ("check", "other_cpu_share", "loadavg", "counted_before_stop", "server_cpu_us_per_request")
    print(json.dumps({k: result[k] for k in shown}, indent=1))
    if args.mode == "beacons":
        print(json.dumps(result["median"]))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"widget-{args.mode}-{db_info['engine']}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if check["every_beacon_counted"] else 1


if __name__ == "__main__":
    sys.exit(main())
