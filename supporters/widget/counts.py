"""The widget's beacons, added up in memory and written to the counters in batches.

A beacon costs the request no database work: `add()` bumps this process's tally of
(campaign, article, variant, day) and returns. A daemon thread of the process writes
the tally every WIDGET_COUNTS_FLUSH_SECONDS (2 by default) in a transaction of its
own (stats.add_counts: one statement per kind of row, whatever the number of
beacons), and once more when the process exits normally (a gunicorn worker that is
stopped, restarted after max-requests, or told to quit). So:

- a process that dies without exiting (SIGKILL, the OOM killer, a worker killed on
  its timeout) loses the beacons it took since its last flush: at most a few
  seconds of that process's share (docs/widget.md, "What it counts");
- the dashboard's figures, read from the database, lag the beacons by up to that
  interval;
- a flush that fails (the database down, a deadlock) gives its tally back to the
  process, to be written by the next one: nothing is lost, nothing counted twice.

Per process rather than in Redis: it works alike on every deployment (Redis is only
the rate limiter's, and optional with one process), costs a beacon no network
round trip, and the write to the database is the same batch either way; what it
gives up is what a Redis tally would keep through a crash, a few seconds of counts.

This module is an edge, like the mail worker: `flush()` commits.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass

from flask import Flask, current_app

from supporters.extensions import db
from supporters.widget import stats

log = logging.getLogger(__name__)

Key = stats.Key


@dataclass
class Tally:
    """What one process took for one key since its last flush."""

    impressions: int = 0
    clicks: int = 0
    #: clicks the last flush could not count (no impression of theirs in the database yet,
    #: e.g. still in another process's tally): offered once more, then dropped
    clicks_again: int = 0


class Counts:
    """One app's tally in this process, and the thread that writes it."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = float(app.config["WIDGET_COUNTS_FLUSH_SECONDS"])
        self._lock = threading.Lock()
        self._tally: dict[Key, Tally] = {}
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, key: Key, kind: str) -> None:
        """Count one impression or click of `key` (a key of a real campaign, variant and article)."""
        with self._lock:
            if self._pid != os.getpid():  # a fork: what the parent held is the parent's to write
                self._tally, self._thread, self._pid = {}, None, os.getpid()
            entry = self._tally.get(key)
            if entry is None:
                entry = self._tally[key] = Tally()
            if kind == "click":
                entry.clicks += 1
            else:
                entry.impressions += 1
            if self._thread is None and not self.app.testing:
                self._start()

    def pending(self) -> dict[Key, Tally]:
        """A copy of what is not written yet (for tests and the benchmark)."""
        with self._lock:
            return {key: Tally(t.impressions, t.clicks, t.clicks_again) for key, t in self._tally.items()}

    def discard(self) -> None:
        """Forget what is not written yet (tests)."""
        with self._lock:
            self._tally = {}

    def flush(self) -> int:
        """Write the tally in a transaction of its own and commit; the number of beacons
        taken off the tally (counted, or clicks dropped after their second chance).

        Call it in an app context outside a request (it commits the session). On any
        error the tally is given back whole and the error raised: the next flush tries again.
        """
        with self._lock:
            taken, self._tally = self._tally, {}
        if not taken:
            return 0
        offered = {key: (t.impressions, t.clicks + t.clicks_again) for key, t in taken.items()}
        try:
            uncounted = stats.add_counts(offered)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            self._give_back(taken)
            raise
        again = {}
        for key, left in uncounted.items():
            fresh = min(left, taken[key].clicks)  # the oldest clicks are counted first; those had their chance
            if fresh:
                again[key] = Tally(clicks_again=fresh)
        self._give_back(again)
        return sum(t.impressions + t.clicks + t.clicks_again for t in taken.values()) - sum(
            t.clicks_again for t in again.values()
        )

    def _give_back(self, taken: dict[Key, Tally]) -> None:
        with self._lock:
            for key, back in taken.items():
                entry = self._tally.get(key)
                if entry is None:
                    self._tally[key] = back
                else:
                    entry.impressions += back.impressions
                    entry.clicks += back.clicks
                    entry.clicks_again += back.clicks_again

    def _start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="widget-counts", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            with self.app.app_context():
                self.flush()
        except Exception:
            log.warning("widget counters not written; kept for the next flush", exc_info=True)

    def stop(self) -> None:
        """Stop the thread and write what is left (at exit)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self._thread = None
        self._flush_logged()


_creating = threading.Lock()


def counts(app: Flask | None = None) -> Counts:
    """The tally of `app` (by default the current one) in this process."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get("widget_counts")
    if found is None:
        with _creating:
            found = app.extensions.setdefault("widget_counts", Counts(app))
    return found


def flush_counts() -> int:
    """Write this process's tally of the current app now (tests, the benchmark); see Counts.flush."""
    return counts().flush()
