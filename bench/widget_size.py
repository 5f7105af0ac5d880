"""The size of widget.js: raw, gzip -9 and (when the `brotli` module is there) brotli -11,
against the budget of 4 KB gzipped (the same check as tests/functional/test_widget.py).

    .venv/bin/python bench/widget_size.py          # a table; exit 1 when over budget
    .venv/bin/python bench/widget_size.py --json   # the same figures as JSON

Needs nothing but the standard library (brotli is optional and skipped when missing).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent.parent / "supporters" / "widget" / "widget.js"
BUDGET_GZIP = 4096  # bytes, gzip level 9


def measure(path: Path = SCRIPT) -> dict[str, Any]:
    raw = path.read_bytes()
    sizes: dict[str, Any] = {
        "file": str(path.relative_to(path.parents[2])),
        "raw_bytes": len(raw),
        "gzip9_bytes": len(gzip.compress(raw, 9)),
        "budget_gzip_bytes": BUDGET_GZIP,
    }
    try:
        import brotli
    except ImportError:
        sizes["brotli11_bytes"] = None
    else:
        sizes["brotli11_bytes"] = len(brotli.compress(raw, quality=11))
    sizes["within_budget"] = sizes["gzip9_bytes"] <= BUDGET_GZIP
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    sizes = measure()
    if args.json:
        print(json.dumps(sizes, indent=2))
    else:
        gz = sizes["gzip9_bytes"]
        print(f"| {sizes['file']} | bytes |")
        print("|---|---:|")
        print(f"| raw | {sizes['raw_bytes']} |")
        print(f"| gzip -9 | {gz} ({100 * gz / BUDGET_GZIP:.0f} % of the {BUDGET_GZIP} B budget) |")
        if sizes["brotli11_bytes"] is None:
            print("| brotli -11 | (skipped: the brotli module is not installed) |")
        else:
            print(f"| brotli -11 | {sizes['brotli11_bytes']} |")
    if not sizes["within_budget"]:
        print(f"OVER BUDGET: {sizes['gzip9_bytes']} > {BUDGET_GZIP} bytes gzipped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
