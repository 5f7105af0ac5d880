"""Rate limits that hold when requests arrive together.

Every limit is counted *before* the work, in one atomic step of the storage
(Flask-Limiter's plain `hit`: increment, then compare), so N simultaneous
requests let through at most the limit. Flask-Limiter's `deduct_when` would test
first and count after the response, and every request that arrives meanwhile
passes the test: that is not used here.

Some attempts should not use up a person's allowance (a donation form sent back
with errors, a successful sign-in). They are counted like the others, and given
back once the answer is known, by `give_back_when(predicate)`: a decrement of
the same counter, atomic too, and never below zero. Whatever runs while the work
is under way has already been counted, so the limit holds at every moment; what
is given back frees a place only afterwards.

Counters live in Redis (`RATELIMIT_STORAGE_URI=redis://…`, shared by every
process and machine) or, for one process, in memory (`memory://`, this module's
`SerialMemoryStorage`). The strategy is the fixed window: one counter per limit,
key and window, which is what a give-back can decrement.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Flask, Response, after_this_request
from flask_limiter import RequestLimit
from limits.storage import MemoryStorage, RedisStorage, Storage

from supporters.extensions import limiter
from supporters.lib import caching

P = ParamSpec("P")
R = TypeVar("R")

STRATEGY = "fixed-window"


class SerialMemoryStorage(MemoryStorage):
    """limits' memory storage with one lock around every count, registered for memory://.

    The library's own counts a key's first hits wrongly when threads meet: a read
    that finds the key's expiry not yet written drops the count another thread has
    just made (and the lock with it), so more than the limit get through. Here a
    count, a read, a give-back and the expiry sweep never overlap.
    """

    STORAGE_SCHEME = ["memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        self.serial = threading.RLock()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        with self.serial:
            return super().incr(key, expiry, amount)

    def decr(self, key: str, amount: int = 1) -> int:
        with self.serial:
            if not super().get(key):
                return 0  # the window ended: nothing to give back, and no counter to make
            return super().decr(key, amount)

    def get(self, key: str) -> int:
        with self.serial:
            return super().get(key)

    def get_expiry(self, key: str) -> float:
        with self.serial:
            return super().get_expiry(key)

    def clear(self, key: str) -> None:
        with self.serial:
            super().clear(key)

    def _MemoryStorage__expire_events(self) -> None:  # noqa: N802 - the library's expiry sweep (its timer thread)
        with self.serial:
            super()._MemoryStorage__expire_events()  # type: ignore[misc]


#: in Redis, one step: decrement a counter that still exists, never below zero, keeping its expiry
_REDIS_GIVE_BACK = """
local current = tonumber(redis.call('get', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
    return current
end
return redis.call('decrby', KEYS[1], ARGV[1])
"""
_redis_scripts: weakref.WeakKeyDictionary[RedisStorage, Any] = weakref.WeakKeyDictionary()


def _give_back(storage: Storage, key: str) -> None:
    if isinstance(storage, MemoryStorage):
        storage.decr(key)
    elif isinstance(storage, RedisStorage):
        script = _redis_scripts.get(storage)
        if script is None:
            script = _redis_scripts[storage] = storage.get_connection().register_script(_REDIS_GIVE_BACK.encode())
        script(keys=[storage.prefixed_key(key)], args=[1])
    else:  # pragma: no cover - refused by init_app
        raise RuntimeError(f"{type(storage).__name__} cannot give a hit back")


def give_back(limits: list[RequestLimit]) -> None:
    """Give back this request's hit on each of `limits` (none that refused it)."""
    for request_limit in limits:
        if not request_limit.breached:
            _give_back(limiter.storage, request_limit.key)


def give_back_when(predicate: Callable[[Response], bool]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a rate-limited view (below its `@limiter.limit` lines): when its final
    answer satisfies `predicate`, the hits this request made are given back.

    The answer is the one the visitor gets, error pages included (a `Refused` shown
    as a 400, an unexpected error's 500), so the predicate sees what really happened.
    """

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            hits = list(limiter.current_limits)  # counted just now, before the view runs

            @after_this_request
            def settle(response: Response) -> Response:
                if hits and predicate(response):
                    give_back(hits)
                return response

            return view(*args, **kwargs)

        return wrapper

    return decorate


def init_app(app: Flask) -> None:
    """Bind the limiter to `app`: fixed windows, in a storage that can give a hit back."""
    strategy = app.config.setdefault("RATELIMIT_STRATEGY", STRATEGY)
    if strategy != STRATEGY:
        raise RuntimeError(f"RATELIMIT_STRATEGY must be {STRATEGY}: the give-backs decrement its counters.")
    limiter.init_app(app)
    _not_before_public_requests(app)
    if limiter.enabled and not isinstance(limiter.storage, MemoryStorage | RedisStorage):
        raise RuntimeError(
            "RATELIMIT_STORAGE_URI must be redis://… (or memory:// for one process): "
            f"{type(limiter.storage).__name__} cannot give a hit back."
        )


def _not_before_public_requests(app: Flask) -> None:
    """Spare public requests (lib/caching.py: article pages, the widget) the limiter's check
    before each request. That check counts only default and application-wide limits, which
    this app sets none of (a view's own `@limiter.limit` is counted by its decorator); when
    they are configured, it runs for every request as usual."""
    if app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION"):
        return
    hooks = app.before_request_funcs.setdefault(None, [])
    check = limiter._check_request_limit
    if check not in hooks:
        return
    hooks[hooks.index(check)] = _unless_public(check)


def _unless_public(check: Callable[[], None]) -> Callable[[], None]:
    @wraps(check)
    def check_unless_public() -> None:
        if not caching.is_public_request():
            check()

    return check_unless_public
