"""The PostgreSQL side of the gifts export: the server process's CPU time beside the app's.

    .venv/bin/python bench/export_server_cpu.py --reuse URL              # a database kept by dashboard.py --keep
    .venv/bin/python bench/export_server_cpu.py --reuse URL --parallel   # with the server's parallel workers

`bench/dashboard.py` reports the app's CPU only; on PostgreSQL most of the export's work
is the server's (`COPY … TO STDOUT`). This streams the export of all gifts in-process
(`queries.export_written_by_postgresql`, what the view streams, without the HTTP) and
reads the CPU time of the connection's server process from `/proc/<pid>/stat` before
and after, so the server must run on this machine. Without --parallel the session turns
parallel query off, so the whole of the server's work is in that one process; with it,
the workers' CPU is not counted (only the leader's). Writes nothing to the database.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.databases import make_app  # noqa: E402


def process_cpu(pid: int) -> float:
    """User and system CPU seconds of the local process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse", metavar="URL", required=True, help="a PostgreSQL database loaded by dashboard.py")
    parser.add_argument("--parallel", action="store_true", help="leave parallel query as the server has it")
    args = parser.parse_args()

    from supporters.extensions import db
    from supporters.giving import queries

    app = make_app(args.reuse)
    with app.test_request_context("/dashboard/gifts/export.csv?lang=en", method="POST"):
        if not args.parallel:
            db.session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
        pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
        assert isinstance(pid, int)
        server, app_cpu, started = process_cpu(pid), own_cpu(), time.monotonic()
        lines = sum(
            chunk.count(b"\r\n") for chunk in queries.export_written_by_postgresql(queries.GiftFilters(), bom=False)
        )
        wall = time.monotonic() - started
        server, app_cpu = process_cpu(pid) - server, own_cpu() - app_cpu
        db.session.rollback()
    print(
        f"| {'parallel' if args.parallel else 'parallel off'} | {lines - 1:,} | {wall:.1f} | {server:.1f} | "
        f"{app_cpu:.1f} | {os.getloadavg()[0]:.1f} |"
    )


if __name__ == "__main__":
    main()
