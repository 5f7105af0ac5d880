"""Where a payment's time goes: `checkout.session.completed` posted to the webhook
in-process (Flask's test client, no HTTP server), its CPU time per payment and its
cProfile, on a small fresh database (the rate does not depend on the table's size:
docs/benchmarks.md, "Webhooks at 1,000,000 gifts").

    .venv/bin/python bench/profile_webhooks.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/profile_webhooks.py --postgres URL --payments 300 --top 40 --sort cumulative

It makes a fresh database on the given PostgreSQL server (dropped afterwards),
migrates it, loads --supporters and --gifts with bench/dashboard_data.py, adds
pending gifts with their checkout sessions, and pays them: first --payments
unprofiled (CPU and wall time per payment), then as many again under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET_KEY = "bench-only-secret-key-not-for-production"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL", required=True, help="a PostgreSQL server URL")
    parser.add_argument("--supporters", type=int, default=2_000)
    parser.add_argument("--gifts", type=int, default=20_000)
    parser.add_argument("--payments", type=int, default=200, help="payments timed, and as many profiled")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"])
    args = parser.parse_args()

    from bench import dashboard_data
    from bench.dashboard import fresh_database
    from bench.webhook_throughput import add_pending_gifts
    from supporters import create_app
    from supporters.payments import offline_webhook_secret
    from tests import stripe_events as se

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="profile-webhooks-")))
        url, drop = fresh_database(args.postgres, workdir)
        stack.callback(drop)
        for name in [k for k in os.environ if k.startswith(("SUPPORTERS_", "STRIPE_", "MAIL_", "RATELIMIT_"))]:
            del os.environ[name]
        os.environ.update(SECRET_KEY=SECRET_KEY, DATABASE_URL=url, MAIL_FILE_DIR=str(workdir / "mail"))
        environ = {"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url, "LOCALSTRIPE_URL": "http://127.0.0.1:9"}
        app = create_app({"RATELIMIT_ENABLED": False, "ENVIRON": environ})
        from flask_migrate import upgrade

        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            app.extensions["sqlalchemy"].engine.dispose()
        dashboard_data.load(url, args.supporters, args.gifts)
        gift_ids = add_pending_gifts(url, 2 * args.payments + 20, hot=10)
        secret = offline_webhook_secret(SECRET_KEY)
        client = app.test_client()

        def pay(gift_id: int) -> None:
            evt = se.event("checkout.session.completed", se.checkout_session(gift_id, payment_intent=f"pi_p{gift_id}"))
            body = se.encode(evt)
            headers = {"Stripe-Signature": se.sign(body, secret), "Content-Type": "application/json"}
            answer = client.post("/webhooks/stripe", data=body, headers=headers)
            assert answer.status_code == 200, answer.get_data(as_text=True)

        for gift_id in gift_ids[:19]:  # warm: imports, caches, compiled statements
            pay(gift_id)
        statements: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(" ".join(statement.split())[:150])

        with app.app_context():
            engine = app.extensions["sqlalchemy"].engine
        sa.event.listen(engine, "before_cursor_execute", note)
        pay(gift_ids[19])
        sa.event.remove(engine, "before_cursor_execute", note)
        timed, profiled = gift_ids[20 : 20 + args.payments], gift_ids[20 + args.payments :]
        wall, cpu = time.perf_counter(), time.process_time()
        for gift_id in timed:
            pay(gift_id)
        wall, cpu = (time.perf_counter() - wall) / len(timed), (time.process_time() - cpu) / len(timed)
        profiler = cProfile.Profile()
        profiler.enable()
        for gift_id in profiled:
            pay(gift_id)
        profiler.disable()
        out = io.StringIO()
        stats: Any = pstats.Stats(profiler, stream=out)
        stats.sort_stats(args.sort).print_stats(args.top)
        stats.print_stats(str(ROOT / "supporters"), args.top)  # the app's own functions
        print(f"database: {url.split(':')[0]}; {len(timed)} payments")
        print(f"per payment: {wall * 1e3:.1f} ms wall, {cpu * 1e3:.1f} ms CPU of this process\n")
        print(f"the SQL statements of one payment ({len(statements)}):")
        print("\n".join(f"  {n:2}. {statement}" for n, statement in enumerate(statements, 1)) + "\n")
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
