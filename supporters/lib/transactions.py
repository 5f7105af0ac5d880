"""One commit point per request.

Service functions only flush. When a view has answered, the request's work is
committed if the answer is a success or a redirect (status below 400) and rolled
back otherwise: a refused action, an invalid form, a payment provider that failed
or an unexpected error leave nothing behind, and no view calls commit or rollback.

Four deliberate exceptions, each named here so they can be found:

- `commit_now()`: the donation form commits the pending gift before it calls
  Stripe, so that every Stripe object can point back at a row that exists; the
  Stripe webhook commits inside its own error handling, since what runs at commit
  (receipt numbers, giving totals) may fail and must be answered "retry later".
- `keep_changes()`: an answer that is an error for the visitor but records
  something that really happened (the local test-payment page's declined card,
  which Stripe would remember too) is committed all the same.
- `outside_transaction()`: slow work that needs no database (checking a
  password's argon2 hash) runs with no transaction open, so on SQLite, where a
  POST holds the write lock from its first query, it never stalls other writers.
- `write_after_commit()`: bookkeeping a page that only reads must still write
  (when a staff session was last used) runs in a short transaction of its own
  after the request's commit, where it waits for the lock like any writer; on
  SQLite, a read-only request that wrote at its end would instead fail with
  "database is locked" whenever another request wrote while it read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import Executable

from supporters.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


def writes_on_get(view: F) -> F:
    """Mark a view whose GET writes (a page that records it was shown, a return address
    another site sends the visitor back to): on SQLite its transaction takes the write
    lock up front, as a POST's does, so it waits for another writer instead of failing."""
    view.writes_on_get = True  # type: ignore[attr-defined]
    return view


def request_may_write() -> bool:
    """Whether this request may write: any but GET, HEAD and OPTIONS, and a GET marked so."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "writes_on_get", False))


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once this request's changes are committed (never if they are rolled
    back): e.g. clear a cache, so the next reader finds the committed change."""
    g.setdefault("after_commit", []).append(callback)


def write_after_commit(statement: Executable) -> None:
    """Run `statement` (a small UPDATE that keeps a record current) in a transaction of
    its own once this request's changes are committed; never if they are rolled back.
    A write that fails (the database busy beyond its timeout) is logged and left for a
    later request: it never turns the answer into an error."""
    g.setdefault("writes_after_commit", []).append(statement)


def _write_after_commit(statements: list[Executable]) -> None:
    try:
        for statement in statements:
            db.session.execute(statement)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.warning("left for a later request: %s", statements, exc_info=True)


def keep_changes() -> None:
    """Commit this request's changes even though its answer is a 4xx."""
    g.keep_changes = True


def commit_now() -> None:
    """Commit what this request has done so far, before calling another system."""
    db.session.commit()


@contextmanager
def outside_transaction() -> Iterator[None]:
    """Run the block with no database transaction open.

    What the request has done so far is committed first, as `commit_now()` would
    (at the sign-in page: at most an expired session marked ended), and every
    loaded object is expired: read what the block needs before it. The block must
    not use the database; if it did, it would hold a transaction again, which is
    refused. After it, the request goes on in a new transaction as usual.
    """
    db.session.commit()
    yield
    if db.session().in_transaction():
        raise RuntimeError("outside_transaction(): the block used the database")


def _commit_or_roll_back(response: Response) -> Response:
    callbacks: list[Callable[[], None]] = g.pop("after_commit", [])
    writes: list[Executable] = g.pop("writes_after_commit", [])
    opened = db.session.registry.has()  # a request that used no database (widget.js) has nothing to end
    if response.status_code < 400 or g.pop("keep_changes", False):
        if opened:
            db.session.commit()
        for callback in callbacks:
            callback()
        if writes:
            _write_after_commit(writes)
    elif opened:
        db.session.rollback()
    return response


def init_app(app: Flask) -> None:
    """Commit or roll back at the end of every request (registered first, so it runs last)."""
    app.after_request(_commit_or_roll_back)
