"""A bank statement of 10,000 lines: previewed in under 5 s, imported in under 20 s.

    .venv/bin/python bench/bank_import.py                      # SQLite in a temporary folder
    .venv/bin/python bench/bank_import.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

What it does:

1. makes a fresh database (SQLite in a temporary folder, or a new PostgreSQL database
   `bench_bank_<random>` dropped at the end), migrates it, and loads --supporters
   supporters, pledges awaiting their money, and earlier statement lines that tie
   senders' accounts to supporters;
2. writes a statement of --lines bookings, in MT940 and in the generic CSV layout, of
   this mix: --pledges lines paying a pledge (title and amount), as many naming a
   pledge with another amount, a fifth from accounts seen before, a twentieth each with
   a supporter's e-mail in the title or a supporter's name, a twentieth going out, a
   hundredth in a currency the app takes no gifts in, and the rest matching nothing;
3. times, in-process, for each format (wall time, and this process's CPU time, which a
   shared machine's other work does not inflate; PostgreSQL's own work is in the server):
   reading and previewing the file (nothing written), then importing it (the lines recorded, the pledges paid with their
   receipts queued, one commit), then importing the same file again (nothing new);
4. checks the outcome (every pledge paid once, every line recorded once, the second
   import new to nothing), prints a Markdown table and writes the figures as JSON to
   bench/results/. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

import sqlalchemy as sa  # noqa: E402

from bench.databases import fresh_database, make_app  # noqa: E402

ACCOUNT = "PL61109010140000071219812874"
BOOKED = date.today() - timedelta(days=5)


def account_of(number: int) -> str:
    return f"PL{number:026d}"


def load(supporters: int, pledges: int, known_accounts: int) -> dict[str, Any]:
    """Supporters, 2 × `pledges` awaiting pledges, and earlier lines tying accounts to supporters."""
    from supporters.extensions import db
    from supporters.giving.transfers import format_reference
    from supporters.models import BankLine, BankStatement, Gift, GiftMethod, LineMatch, LineStatus, Supporter, sort_key

    people = [
        {
            "email": f"donor{n}@example.org",
            "email_normalised": f"donor{n}@example.org",
            "name": f"Donor{n} Surname{n}",
            "name_sort": sort_key(f"Donor{n} Surname{n}"),
            "language": "pl",
        }
        for n in range(supporters)
    ]
    db.session.execute(sa.insert(Supporter), people)
    ids = list(db.session.scalars(sa.select(Supporter.id).order_by(Supporter.id)))
    now = datetime.now(UTC) - timedelta(days=7)
    rows = [
        {
            "supporter_id": ids[n % len(ids)],
            "amount_minor": 5000 + n,
            "currency": "PLN",
            "method": GiftMethod.BANK_TRANSFER,
            "status": "pending",
            "kind": "one_time",
            "created_at": now,
            "updated_at": now,
        }
        for n in range(2 * pledges)
    ]
    db.session.execute(sa.insert(Gift), rows)
    gifts = db.session.execute(
        sa.select(Gift.id, Gift.amount_minor).where(Gift.method == GiftMethod.BANK_TRANSFER).order_by(Gift.id)
    ).all()
    db.session.execute(
        sa.update(Gift),
        [{"id": gift_id, "transfer_reference": format_reference(now.year, gift_id)} for gift_id, _amount in gifts],
    )
    earlier = BankStatement(uploaded_by="bench", file_name="old.sta", format="mt940", sha256="0" * 64, content=b"")
    db.session.add(earlier)
    db.session.flush()
    db.session.execute(
        sa.insert(BankLine),
        [
            {
                "statement_id": earlier.id,
                "identity_key": f"earlier-{n}",
                "booked_on": BOOKED - timedelta(days=40),
                "amount_minor": 1000,
                "currency": "PLN",
                "direction": "credit",
                "counterparty_account": account_of(n),
                "match": LineMatch.SUPPORTER,
                "status": LineStatus.GIFT,
                "supporter_id": ids[n % len(ids)],
            }
            for n in range(known_accounts)
        ],
    )
    db.session.commit()
    return {
        "supporter_count": len(ids),
        "pledges": [(gift_id, amount, format_reference(now.year, gift_id)) for gift_id, amount in gifts],
    }


def bookings(
    lines: int, pledges: int, known_accounts: int, supporters: int, world: dict[str, Any]
) -> list[dict[str, Any]]:
    """The statement's bookings, in the mix the docstring says, shuffled."""
    chosen = world["pledges"]
    rows: list[dict[str, Any]] = []
    for gift_id, amount, reference in chosen[:pledges]:
        rows.append(
            {
                "amount": amount,
                "name": f"Payer {gift_id}",
                "account": account_of(10**9 + gift_id),
                "title": f"Darowizna {reference}",
            }
        )
    for gift_id, amount, reference in chosen[pledges : 2 * pledges]:
        rows.append({"amount": amount + 100, "name": f"Payer {gift_id}", "account": "", "title": reference})
    for n in range(lines // 5):
        rows.append(
            {"amount": 3000, "name": f"SENDER {n}", "account": account_of(n % known_accounts), "title": "Darowizna"}
        )
    for n in range(lines // 20):
        rows.append({"amount": 2500, "name": "X", "account": "", "title": f"Wplata donor{n % supporters}@example.org"})
    for n in range(lines // 20):
        m = (n * 7) % supporters
        rows.append({"amount": 2000, "name": f"SURNAME{m} DONOR{m}", "account": "", "title": "Na cele statutowe"})
    for n in range(lines // 20):
        rows.append(
            {"amount": -1500 - n, "name": "Dostawca", "account": account_of(5 * 10**9 + n), "title": f"Faktura {n}"}
        )
    for n in range(lines // 100):
        rows.append({"amount": 1000 + n, "currency": "CHF", "name": "Jean", "account": "", "title": "Don"})
    n = 0
    while len(rows) < lines:
        rows.append(
            {"amount": 1000 + n, "name": f"Nieznany {n}", "account": account_of(7 * 10**9 + n), "title": "Przelew"}
        )
        n += 1
    random.Random(12).shuffle(rows)
    for number, row in enumerate(rows[:lines]):
        row.setdefault("currency", "PLN")
        row["reference"] = f"BENCH{number:08d}"
    return rows[:lines]


def as_mt940(rows: list[dict[str, Any]]) -> bytes:
    out = [
        ":20:BENCH",
        f":25:/{ACCOUNT}",
        ":28C:00001/001",
        ":60F:C" + BOOKED.strftime("%y%m%d") + "PLN000000000000,00",
    ]
    day = BOOKED.strftime("%y%m%d")
    for row in rows:
        amount = row["amount"]
        mark = "C" if amount > 0 else "D"
        value = f"{abs(amount) // 100},{abs(amount) % 100:02d}"
        # the MT940 statement is in one currency: other currencies go in the CSV only
        out.append(f":61:{day}{day[2:]}{mark}{value}NTRFNONREF//{row['reference']}")
        title = row["title"]
        parts = "".join(f"~2{i}{title[i * 35 : (i + 1) * 35]}" for i in range(min(6, -(-len(title) // 35))))
        account = f"~38{row['account']}" if row["account"] else ""
        out.append(f":86:020~00TR{parts}~32{row['name'][:35]}{account}")
    out += [":62F:C" + day + "PLN000000000000,00", "-"]
    return ("\r\n".join(out) + "\r\n").encode()


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    out = ["date,amount,currency,name,account,title,reference"]
    for row in rows:
        amount = row["amount"]
        value = f"{'-' if amount < 0 else ''}{abs(amount) // 100}.{abs(amount) % 100:02d}"
        out.append(
            f"{BOOKED.isoformat()},{value},{row['currency']},{row['name']},{row['account']},{row['title']},{row['reference']}"
        )
    return ("\n".join(out) + "\n").encode()


def run(url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    from flask_migrate import upgrade

    from supporters.bank import imports
    from supporters.extensions import db
    from supporters.models import BankLine, Gift, GiftStatus, LineMatch

    app = make_app(url)
    figures = []
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        world = load(args.supporters, args.pledges * 2, args.known_accounts)
        # two statements' worth of pledges: the MT940 file pays the first half, the CSV the second
        halves = [world["pledges"][: 2 * args.pledges], world["pledges"][2 * args.pledges :]]
        for (label, render, file_format, preset), pledges in zip(
            [("MT940", as_mt940, "mt940", None), ("CSV (generic)", as_csv, "csv", "generic")], halves, strict=True
        ):
            rows = bookings(args.lines, args.pledges, args.known_accounts, args.supporters, {"pledges": pledges})
            if file_format == "mt940":
                rows = [row for row in rows if row["currency"] == "PLN"]
            content = render(rows)
            lines_before = db.session.scalar(sa.select(sa.func.count()).select_from(BankLine)) or 0

            started, cpu = time.perf_counter(), time.process_time()
            statement = imports.upload_statement(
                content, file_name=f"bench.{file_format}", file_format=file_format, preset=preset, actor=None
            )
            planned = imports.statement_preview(statement)
            preview_s, preview_cpu = time.perf_counter() - started, time.process_time() - cpu
            db.session.commit()

            started, cpu = time.perf_counter(), time.process_time()
            imports.import_statement(statement, actor=None)
            db.session.commit()
            import_s, import_cpu = time.perf_counter() - started, time.process_time() - cpu

            again = imports.upload_statement(
                content, file_name="again", file_format=file_format, preset=preset, actor=None
            )
            started = time.perf_counter()
            imports.import_statement(again, actor=None)
            db.session.commit()
            reimport_s = time.perf_counter() - started

            paid_ids = [gift_id for gift_id, _amount, _ref in pledges[: args.pledges]]
            paid = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Gift)
                .where(Gift.id.in_(paid_ids), Gift.status == GiftStatus.SUCCEEDED)
            )
            lines_after = db.session.scalar(sa.select(sa.func.count()).select_from(BankLine)) or 0
            checks = {
                "every pledge paid": paid == args.pledges == statement.paid_count,
                "every line once": lines_after - lines_before == len(rows) == statement.new_count,
                "second import new to nothing": again.new_count == 0 and again.paid_count == 0,
            }
            figures.append(
                {
                    "format": label,
                    "lines": len(rows),
                    "bytes": len(content),
                    "pledges_paid": statement.paid_count,
                    "open": statement.open_count,
                    "skipped": statement.skipped_count,
                    "suggested": planned.count(LineMatch.SUPPORTER),
                    "preview_s": round(preview_s, 2),
                    "preview_cpu_s": round(preview_cpu, 2),
                    "import_s": round(import_s, 2),
                    "import_cpu_s": round(import_cpu, 2),
                    "reimport_s": round(reimport_s, 2),
                    "checks": checks,
                }
            )
        db.engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--pledges", type=int, default=500, help="lines that pay a pledge")
    parser.add_argument("--supporters", type=int, default=20_000)
    parser.add_argument("--known-accounts", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url, drop = fresh_database(args.postgres, Path(workdir), "bank")
        try:
            figures = run(url, args)
        finally:
            drop()
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\n{database}, {platform.python_version()}, {args.supporters:,} supporters\n")
    columns = ["file", "lines", "size", "pledges paid", "left for staff", "skipped", "preview", "import"]
    print("| " + " | ".join([*columns, "same file again", "checks"]) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in figures:
        ok = (
            "all pass"
            if all(row["checks"].values())
            else ", ".join(k for k, v in row["checks"].items() if not v) + " FAILED"
        )
        print(
            f"| {row['format']} | {row['lines']:,} | {row['bytes'] / 1e6:.1f} MB | {row['pledges_paid']} | "
            f"{row['open']:,} | {row['skipped']} | {row['preview_s']} s ({row['preview_cpu_s']} s CPU) | "
            f"{row['import_s']} s ({row['import_cpu_s']} s CPU) | "
            f"{row['reimport_s']} s | {ok} |"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"bank_import-{database.lower()}-{stamp}.json").write_text(
        json.dumps({"database": database, "args": vars(args), "figures": figures}, indent=2)
    )
    if not all(all(row["checks"].values()) for row in figures):
        sys.exit(1)


if __name__ == "__main__":
    main()
