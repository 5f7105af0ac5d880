"""Run localstripe on 127.0.0.1 only, keeping nothing on disk.

localstripe's own command listens on every interface and pickles its store to
/tmp/localstripe.pickle after each write; this wrapper does neither.

    python -m supporters.payments.localstripe_server --port 8420
"""

from __future__ import annotations

import argparse
import logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="localstripe bound to 127.0.0.1, in memory only")
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args(argv)

    from localstripe import resources

    # Patch the class before the server module builds its store and middleware.
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None
    from aiohttp import web
    from localstripe.server import app

    logging.basicConfig(level=logging.WARNING, format="localstripe: %(message)s")
    web.run_app(app, host="127.0.0.1", port=args.port, print=lambda *_: None, access_log=None)


if __name__ == "__main__":
    main()
