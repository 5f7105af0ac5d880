"""What the widget shows and counts. No personal data ever leaves through here."""

from __future__ import annotations

import re
import threading
import time
from datetime import date
from typing import Any

from flask import current_app
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select

from supporters.extensions import db
from supporters.lib import money
from supporters.lib.web import public_url
from supporters.models import GIFT_COUNTED, Campaign, Gift
from supporters.widget import stats

#: how long a campaign's widget data is reused before it is computed again
CONFIG_TTL_SECONDS = 30
EVENT_TYPES = {"impression": "impressions", "click": "clicks"}
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,199}$")
DEFAULT_VARIANT = "default"

_cache: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget computed widget data (after a campaign changes, and in tests)."""
    with _cache_lock:
        _cache.clear()


def widget_config(slug: str, lang: str) -> dict[str, Any] | None:
    """The widget's data for an active campaign, in `lang`; None when there is no such campaign.

    Computed at most once per CONFIG_TTL_SECONDS per process: article pages and
    embeds ask for it on every view.
    """
    key = (slug, lang)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    with force_locale(lang):
        value = _build_config(slug, lang)
    with _cache_lock:
        _cache[key] = (now + CONFIG_TTL_SECONDS, value)
    return value


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
                "heading": campaign.appeal_heading or _("Support our work"),
                "text": campaign.appeal_text,
                "weight": 1,
            }
        ]
    presets = {}
    for currency in currencies:
        amounts = (campaign.preset_amounts or {}).get(currency) or [
            unit * 10 ** money.minor_unit_exponent(currency) for unit in (10, 25, 50, 100)
        ]
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
    net = Gift.amount_base_minor * (Gift.amount_minor - Gift.refunded_minor) // Gift.amount_minor
    raised, supporters = db.session.execute(
        select(func.coalesce(func.sum(net), 0), func.count(func.distinct(Gift.supporter_id))).where(counted)
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


def record_event(kind: str, campaign_slug: str, article: str, variant: str, today: date) -> bool:
    """Count an impression or a click. False (nothing counted) for anything not ours."""
    column = EVENT_TYPES.get(kind)
    if column is None or not SLUG.match(campaign_slug or ""):
        return False
    if article and not SLUG.match(article):
        return False
    campaign = db.session.execute(select(Campaign).filter_by(slug=campaign_slug, active=True)).scalar_one_or_none()
    if campaign is None:
        return False
    known = {v.key for v in campaign.variants if v.active} or {DEFAULT_VARIANT}
    if variant not in known:
        return False
    stats.bump(campaign.id, article or "", variant, today, **{column: 1})
    return True


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
        gift.source_article or "",
        gift.source_variant,
        gift.paid_at.date(),
        gifts=1,
        amount_base_minor=gift.amount_base_minor or 0,
    )
