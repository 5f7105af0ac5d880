"""What the widget shows and counts. No personal data ever leaves through here.

What is counted, and what one reader can add to it (see docs/security.md, "The
widget's counters"):

- a card is counted under its article's slug only when that article is one of
  ours and published; every other card of a campaign (another site, a draft, a
  made-up name) is counted in the campaign's one "elsewhere" bucket, article "",
  so no beacon can make a new counter row by naming a new article;
- a click counts only while that row has more impressions than clicks: a click
  without the impression of the same card that day counts nothing. Beacons are
  written in batches (widget/counts.py), so "before" means in the database or in
  the same batch; a click whose impression is still in another process's batch
  gets a second chance at the next flush;
- the beacon route's rate limit per address (WIDGET_EVENT_LIMIT) bounds the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from supporters.campaigns.presets import suggested_amounts
from supporters.extensions import db
from supporters.lib import money
from supporters.lib.caching import TimedCache
from supporters.lib.web import public_url
from supporters.models import GIFT_COUNTED, GIFT_NET_BASE, AppealVariant, Article, Campaign, Gift
from supporters.widget import counts as widget_counts
from supporters.widget import stats

#: how long a campaign's widget data is reused before it is computed again
CONFIG_TTL_SECONDS = 30
EVENT_TYPES = {"impression": "impressions", "click": "clicks"}
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,199}$")
DEFAULT_VARIANT = "default"
#: the article under which a campaign's cards are counted when they are not on a published article of ours
ELSEWHERE = ""


@dataclass(frozen=True)
class Config:
    """A campaign's widget data, its JSON and the JSON's entity tag, made once per cache entry
    (so a 304 costs no encoding and no hashing)."""

    data: dict[str, Any]
    body: bytes
    etag: str


_cache: TimedCache[Config] = TimedCache(CONFIG_TTL_SECONDS)


def clear_cache() -> None:
    """Forget computed widget data (after a campaign changes, and in tests)."""
    _cache.clear()


def language(asked: str | None, accept_language: str | None, locales: Sequence[str]) -> tuple[str, bool]:
    """The widget's language: `asked` (the address's `?lang=`, one of `locales`) if any, else
    the best match among `locales` of the browser's Accept-Language header, else English; and
    whether it came from that header (then the answer varies by it)."""
    if asked:
        return asked, False
    return parse_accept_header(accept_language, LanguageAccept).best_match(locales) or "en", True


def kept_config(slug: str, lang: str) -> Config | None:
    """The config kept now for `slug` in `lang`, never computed here (None when none is kept):
    what widget/answers.py holds its kept answers against, so they last exactly as long."""
    return _cache.get((slug, lang))


def widget_config(slug: str, lang: str) -> dict[str, Any] | None:
    """The widget's data for an active campaign, in `lang`; None when there is no such campaign."""
    found = encoded_config(slug, lang)
    return found.data if found else None


def encoded_config(slug: str, lang: str) -> Config | None:
    """The widget's data for an active campaign in `lang`, with its JSON and entity tag;
    None when there is no such campaign.

    Computed at most once per CONFIG_TTL_SECONDS per process: article pages and
    embeds ask for it on every view. The cache is shared by every reader, so
    nothing in it comes from the request but `slug` and `lang` (one of
    SUPPORTERS_LOCALES): links are built from SUPPORTERS_PUBLIC_URL, and only
    campaigns that exist are kept (a name that is none would be one more entry
    for every name anyone cares to type).
    """
    if not SLUG.match(slug):
        return None
    key = (slug, lang)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    generation = _cache.generation
    with force_locale(lang):
        data = _build_config(slug, lang)
    if data is None:
        _cache.pop(key)
        return None
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return _cache.put(key, Config(data, body, hashlib.sha256(body).hexdigest()[:32]), since=generation)


def _build_config(slug: str, lang: str) -> dict[str, Any] | None:
    campaign = db.session.execute(select(Campaign).filter_by(slug=slug, active=True)).scalar_one_or_none()
    if campaign is None:
        return None
    currencies: list[str] = current_app.config["SUPPORTERS_CURRENCIES"]
    variants = [v for v in campaign.variants if v.active] or []
    appeals = [{"key": v.key, "heading": v.heading, "text": v.text, "weight": v.weight} for v in variants]
    if not appeals:
        appeals = [
            {
                "key": DEFAULT_VARIANT,
                "heading": campaign.text("appeal_heading", lang) or _("Support our work"),
                "text": campaign.text("appeal_text", lang),
                "weight": 1,
            }
        ]
    presets = {}
    for currency in currencies:
        amounts = suggested_amounts(campaign, currency)
        presets[currency] = [
            {
                "amount": money.plain(a, currency),
                "label": _format_total(a, currency, lang)
                if a % 10 ** money.minor_unit_exponent(currency) == 0
                else money.format_amount(a, currency, lang),
            }
            for a in amounts
        ]
    return {
        "campaign": campaign.slug,
        "variants": appeals,
        "currencies": currencies,
        "presets": presets,
        "frequency": "monthly" if campaign.default_frequency.value == "monthly" else "one_time",
        "progress": _progress(campaign, lang),
        "donate_url": public_url("donate.form"),
        "event_url": public_url("widget.event"),
        "labels": {
            "once": _("Once"),
            "monthly": _("Monthly"),
            "button": _("Support us"),
            "amount": _("Amount"),
            "frequency": _("How often"),
        },
    }


def _progress(campaign: Campaign, lang: str) -> dict[str, Any]:
    """Raised so far (net of refunds, reporting currency) and how many supporters gave."""
    base = current_app.config["SUPPORTERS_BASE_CURRENCY"]
    counted = (Gift.campaign_id == campaign.id) & Gift.status.in_(GIFT_COUNTED)
    raised, supporters = db.session.execute(
        select(func.coalesce(func.sum(GIFT_NET_BASE), 0), func.count(func.distinct(Gift.supporter_id))).where(counted)
    ).one()
    raised = int(raised or 0)
    progress: dict[str, Any] = {
        "raised_label": _format_total(raised, base, lang),
        "supporters": int(supporters or 0),
        "supporters_label": ngettext("%(num)s supporter", "%(num)s supporters", int(supporters or 0)),
    }
    if campaign.goal_minor and campaign.goal_currency == base:
        progress["percent"] = min(100, round(100 * raised / campaign.goal_minor))
        progress["goal_label"] = _("raised of %(goal)s", goal=_format_total(campaign.goal_minor, base, lang))
    return progress


def _format_total(amount_minor: int, currency: str, lang: str) -> str:
    """Totals without the pennies: "12 345 zł" reads better on a progress bar."""
    whole = amount_minor - amount_minor % 10 ** money.minor_unit_exponent(currency)
    text = money.format_amount(whole, currency, lang)
    return re.sub(r"[.,]0+(?=\D*$)", "", text)


def counted_article(slug: str | None) -> str:
    """The article a card is counted under: `slug` if it is a published article of ours, else ELSEWHERE."""
    if not slug or not SLUG.match(slug):
        return ELSEWHERE
    published = select(Article.id).filter_by(slug=slug, published=True)
    return slug if db.session.execute(published).first() else ELSEWHERE


def record_event(kind: str, campaign_slug: str, article: str, variant: str, today: date) -> bool:
    """Take an impression or a click of a card. False for an event that is not one of ours.

    True does not mean counted: the beacon joins this process's tally (widget/counts.py),
    written within seconds, and a click beyond the impressions of its card that day is
    taken and ignored then (the sender cannot tell, and has nothing to retry). The
    event is checked against this process's list of campaigns, variants and articles
    (`_known`), so a beacon costs no query.
    """
    if kind not in EVENT_TYPES or not SLUG.match(campaign_slug or ""):
        return False
    if article and not SLUG.match(article):
        return False
    known = _known()
    campaign = known.campaigns.get(campaign_slug)
    if campaign is None:
        return False
    campaign_id, variants = campaign
    if variant not in variants:
        return False
    where = article if article in known.articles else ELSEWHERE
    widget_counts.counts().add((campaign_id, where, variant, today), kind)
    return True


#: how long a process trusts its list of campaigns, variants and articles: how long
#: another process may refuse a new campaign's beacons or count a stopped one's
KNOWN_TTL_SECONDS = 30
#: the classes whose changes make the list stale
_KNOWN_FROM = (Campaign, AppealVariant, Article)


@dataclass(frozen=True)
class _Known:
    """What beacons may name: active campaigns (their id and the variants counted) and our published articles."""

    expires: float
    campaigns: dict[str, tuple[int, frozenset[str]]]
    articles: frozenset[str]


def _known() -> _Known:
    """This app's list, read again after KNOWN_TTL_SECONDS or a change made in this process.

    It is bounded by what is in the database (never by what beacons name): one entry
    per active campaign, one per published article."""
    box: list[_Known | None] = current_app.extensions.setdefault("widget_known", [None])
    known = box[0]
    now = time.monotonic()
    if known is None or known.expires <= now:
        campaigns = db.session.scalars(
            select(Campaign).where(Campaign.active.is_(True)).options(selectinload(Campaign.variants))
        )
        known = _Known(
            expires=now + KNOWN_TTL_SECONDS,
            campaigns={
                c.slug: (c.id, frozenset(v.key for v in c.variants if v.active) or frozenset({DEFAULT_VARIANT}))
                for c in campaigns
            },
            articles=frozenset(db.session.scalars(select(Article.slug).where(Article.published.is_(True)))),
        )
        box[0] = known
    return known


def forget_known(app: Flask | None = None) -> None:
    """Make the next beacon of `app` (by default the current one) read its campaigns, variants and articles again."""
    (app or current_app).extensions["widget_known"] = [None]


@event.listens_for(Session, "after_flush")
def _forget_known_on_change(session: Session, _context: object) -> None:
    """A campaign, variant or article written in this process: forget the list now and
    again when the transaction ends (a beacon meanwhile may have read it uncommitted)."""
    if has_app_context() and any(
        isinstance(row, _KNOWN_FROM) for row in (*session.new, *session.dirty, *session.deleted)
    ):
        forget_known()
        session.info["widget_known_stale"] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_known_at_end(session: Session, *_args: object) -> None:
    if session.info.pop("widget_known_stale", False) and has_app_context():
        forget_known()


def count_gift(gift: Gift) -> None:
    """A gift that came through the widget succeeded: count it for its article and variant."""
    if gift.campaign_id is None or gift.source_variant is None or gift.paid_at is None:
        return
    campaign = gift.campaign
    known = {v.key for v in campaign.variants} if campaign else set()
    if gift.source_variant not in known | {DEFAULT_VARIANT}:
        return
    stats.bump(
        gift.campaign_id,
        counted_article(gift.source_article),
        gift.source_variant,
        gift.paid_at.date(),
        gifts=1,
        amount_base_minor=gift.amount_base_minor or 0,
    )
