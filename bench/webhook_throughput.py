"""Stripe webhooks per second on PostgreSQL at the 1,000,000-gift scale, and whether
the per-day giving total becomes a queue.

    .venv/bin/python bench/webhook_throughput.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/webhook_throughput.py --postgres URL --gifts 100000 --supporters 10000 --events 2000

What it does:

1. makes a fresh database `bench_dash_<random>` on the server (dropped at the end),
   migrates it and bulk-loads --supporters and --gifts with bench/dashboard_data.py;
2. adds --events pending one-time gifts, each with its checkout session, spread over
   the loaded supporters (one in --hot of them goes to the same 20 supporters, so
   some events meet on a supporter's row);
3. serves the app with gunicorn, 2 sync workers (as bench/http_throughput.py), and
   posts one signed `checkout.session.completed` per gift from --clients threads,
   plus a copy of every tenth (a duplicate delivery, which must change nothing);
   every gift is paid the same UTC day, so every payment adds to the same
   ("kind", today, "one_time") giving_total row;
4. meanwhile samples PostgreSQL every 20 ms: how many backends wait for a lock, and
   how many of those wait on a statement writing giving_total, or taking a receipt
   number (receipt_sequence);
5. checks the outcome (every gift paid once, one receipt each, every event recorded
   once, duplicates acknowledged, totals equal to their recomputation) and prints a
   table; every figure goes to bench/results/webhooks-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

SECRET_KEY = "bench-only-secret-key-not-for-production"
GUNICORN = ["-w", "2", "--threads", "1", "-k", "sync", "--backlog", "2048", "--access-logfile", "/dev/null"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(database_url: str, workdir: Path) -> dict[str, str]:
    """This machine's environment less the app's own settings (so no .env changes the figures)."""
    drop = ("SUPPORTERS_", "STRIPE_", "MAIL_", "FLASK_", "RATELIMIT_", "WIDGET_", "DONATE_", "LOCALSTRIPE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=database_url,
        FLASK_SKIP_DOTENV="1",
        MAIL_FILE_DIR=str(workdir / "mail"),
        PYTHONPATH=str(ROOT),
        LOCALSTRIPE_URL="http://127.0.0.1:9",  # never reached: these events need no question to Stripe
    )
    return env


@contextmanager
def gunicorn(env: dict[str, str], workdir: Path) -> Iterator[int]:
    """The app under gunicorn on a free loopback port, in a process group of its own, stopped at the end."""
    port = free_port()
    log = workdir / "gunicorn.log"
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), *GUNICORN, "-b", f"127.0.0.1:{port}", "--error-logfile", str(log), "wsgi:app"],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not listen within 60 s") from None
                time.sleep(0.2)
        yield port
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


def add_pending_gifts(url: str, count: int, hot: int) -> list[int]:
    """`count` pending one-time gifts of PLN 50, each with the checkout session the events name."""
    from tests import stripe_events as se

    engine = sa.create_engine(url)
    rng = random.Random(11)
    with engine.begin() as connection:
        supporters = [row[0] for row in connection.execute(sa.text("SELECT id FROM supporter ORDER BY id"))]
        hot_ones = supporters[:20]
        start = connection.execute(sa.text("SELECT coalesce(max(id), 0) FROM gift")).scalar_one() + 1
        rows = []
        for n in range(count):
            gift_id = start + n
            owner = rng.choice(hot_ones) if hot and n % hot == 0 else rng.choice(supporters)
            rows.append({"id": gift_id, "supporter_id": owner, "session": se.checkout_session_id(gift_id)})
        connection.execute(
            sa.text(
                "INSERT INTO gift (id, supporter_id, amount_minor, currency, amount_base_minor, status, kind, method,"
                " refunded_minor, covers_fee, anonymous, is_demo, stripe_checkout_session_id, created_at, updated_at)"
                " VALUES (:id, :supporter_id, 5000, 'PLN', 5000, 'pending', 'one_time', 'stripe', 0, false, false,"
                " false, :session, now(), now())"
            ),
            rows,
        )
        connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('gift', 'id'), (SELECT max(id) FROM gift))"))
    engine.dispose()
    return [row["id"] for row in rows]


class LockSampler(threading.Thread):
    """Every 20 ms: backends waiting for a lock, those of them writing giving_total, and
    those taking a receipt number (the year's receipt_sequence row)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self.stop = threading.Event()
        self.samples: list[tuple[int, int, int, int]] = []
        #: how often each statement (its first words) was seen waiting for a lock
        self.waiting: Counter[str] = Counter()

    def run(self) -> None:
        query = sa.text(
            "SELECT count(*) FILTER (WHERE state = 'active' AND backend_type = 'client backend'),"
            " count(*) FILTER (WHERE wait_event_type = 'Lock'),"
            " count(*) FILTER (WHERE wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO giving_total%'),"
            " count(*) FILTER (WHERE wait_event_type = 'Lock' AND query ILIKE '% receipt_sequence %')"
            " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        which = sa.text(
            "SELECT wait_event || ': ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        with self.engine.connect() as connection:
            while not self.stop.is_set():
                active, waiting, on_totals, on_receipts = connection.execute(query).one()
                self.samples.append((active, waiting, on_totals, on_receipts))
                if waiting:
                    self.waiting.update(connection.execute(which).scalars())
                time.sleep(0.02)
        self.engine.dispose()


def post_all(port: int, events: list[dict[str, Any]], secret: str, clients: int) -> tuple[float, dict[int, int]]:
    from tests import stripe_events as se

    url = f"http://127.0.0.1:{port}/webhooks/stripe"
    local = threading.local()
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def post(evt: dict[str, Any]) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        body = se.encode(evt)
        headers = {"Stripe-Signature": se.sign(body, secret), "Content-Type": "application/json"}
        status = session.post(url, data=body, headers=headers, timeout=120).status_code
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(post, events))
    return time.monotonic() - started, statuses


def outcome(url: str, gift_ids: list[int], event_ids: set[str]) -> dict[str, Any]:
    from supporters.models import giving

    engine = sa.create_engine(url)
    first, last = min(gift_ids), max(gift_ids)
    with engine.connect() as connection:

        def one(sql: str) -> int:
            return int(connection.execute(sa.text(sql), {"first": first, "last": last}).scalar_one())

        result = {
            "gifts_paid": one("SELECT count(*) FROM gift WHERE id BETWEEN :first AND :last AND status = 'succeeded'"),
            # the bulk load queues no e-mail: every receipt is one of these payments'
            "receipts": one("SELECT count(*) FROM outbox_email WHERE kind = 'receipt'"),
            "events_recorded": int(
                connection.execute(
                    sa.text("SELECT count(*) FROM stripe_event WHERE id = ANY(:ids)"), {"ids": sorted(event_ids)}
                ).scalar_one()
            ),
        }
        started = time.monotonic()
        result["totals_in_step"] = giving.stored_totals(connection) == giving.totals_from_gifts(connection)
        result["totals_check_s"] = round(time.monotonic() - started, 1)
    engine.dispose()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL", required=True, help="a PostgreSQL server URL")
    parser.add_argument("--supporters", type=int, default=100_000)
    parser.add_argument("--gifts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=3000, help="payments to deliver (each one gift)")
    parser.add_argument("--clients", type=int, default=8, help="threads posting at once")
    parser.add_argument("--hot", type=int, default=10, help="one gift in HOT belongs to one of 20 supporters (0: none)")
    args = parser.parse_args()

    from bench import dashboard_data
    from bench.dashboard import fresh_database, make_app
    from supporters.payments import offline_webhook_secret
    from tests import stripe_events as se

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-webhooks-")))
        url, drop = fresh_database(args.postgres, workdir)
        stack.callback(drop)
        from flask_migrate import upgrade

        app = make_app(url)
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            app.extensions["sqlalchemy"].engine.dispose()
        loading = time.monotonic()
        dashboard_data.load(url, args.supporters, args.gifts)
        gift_ids = add_pending_gifts(url, args.events, args.hot)
        print(f"loaded in {time.monotonic() - loading:.0f} s", file=sys.stderr)

        payments = [
            se.event("checkout.session.completed", se.checkout_session(g, payment_intent=f"pi_b{g}")) for g in gift_ids
        ]
        duplicates = payments[::10]
        deliveries = payments + duplicates
        random.Random(7).shuffle(deliveries)
        secret = offline_webhook_secret(SECRET_KEY)
        env = environment(url, workdir)
        with gunicorn(env, workdir) as port:
            warm = [se.event("customer.created", {"id": f"cus_warm{n}", "object": "customer"}) for n in range(40)]
            post_all(port, warm, secret, args.clients)
            load_before = os.getloadavg()
            sampler = LockSampler(url)
            sampler.start()
            seconds, statuses = post_all(port, deliveries, secret, args.clients)
            sampler.stop.set()
            sampler.join()
        result = outcome(url, gift_ids, {evt["id"] for evt in payments})
        samples = sampler.samples
        figures = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
            "settings": vars(args),
            "deliveries": len(deliveries),
            "duplicates": len(duplicates),
            "seconds": round(seconds, 2),
            "events_per_s": round(len(deliveries) / seconds, 1),
            "statuses": statuses,
            **result,
            "lost": args.events - result["gifts_paid"],
            "doubled": result["receipts"] - result["gifts_paid"],
            "samples": len(samples),
            "mean_active": round(sum(s[0] for s in samples) / max(len(samples), 1), 2),
            "share_with_a_lock_wait": round(sum(1 for s in samples if s[1]) / max(len(samples), 1), 3),
            "share_waiting_on_giving_total": round(sum(1 for s in samples if s[2]) / max(len(samples), 1), 3),
            "share_waiting_on_receipt_sequence": round(sum(1 for s in samples if s[3]) / max(len(samples), 1), 3),
            "waiting_statements": dict(sampler.waiting.most_common(8)),
            "load_average_before_and_after": [load_before, os.getloadavg()],
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"webhooks-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    print(
        f"\n| gifts loaded | events | clients | events/s | lost | doubled | lock wait seen | on giving_total "
        f"| on receipt_sequence |\n"
        f"|---|---|---|---|---|---|---|---|---|\n"
        f"| {args.gifts:,} | {len(deliveries):,} ({len(duplicates)} duplicates) | {args.clients} "
        f"| {figures['events_per_s']} | {figures['lost']} | {figures['doubled']} "
        f"| {figures['share_with_a_lock_wait']:.0%} of samples | {figures['share_waiting_on_giving_total']:.0%} "
        f"| {figures['share_waiting_on_receipt_sequence']:.0%} |"
    )
    return 0 if figures["lost"] == 0 and figures["doubled"] == 0 and result["totals_in_step"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
