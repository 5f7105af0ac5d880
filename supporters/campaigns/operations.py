"""Campaigns and their appeal variants: create, change, and how much each has raised.

Functions here flush and write their own audit rows; the request commits once,
and the widget's cache is cleared after that commit, so the card shows the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.lib.errors import Refused
from supporters.lib.transactions import after_commit
from supporters.models import (
    GIFT_COUNTED,
    GIFT_NET_BASE,
    AppealVariant,
    Campaign,
    Frequency,
    Gift,
)
from supporters.widget.service import clear_cache as clear_widget_cache

#: the fields of a campaign staff may change (the slug is fixed once it is in embeds)
CAMPAIGN_FIELDS = (
    "name",
    "goal_minor",
    "goal_currency",
    "preset_amounts",
    "default_frequency",
    "appeal_heading",
    "appeal_text",
    "texts",
    "starts_on",
    "ends_on",
    "active",
)
#: the fields of an appeal variant staff may change (its key names its counters)
VARIANT_FIELDS = ("heading", "text", "weight", "active")


@dataclass(frozen=True)
class CampaignValues:
    """A campaign as the form describes it, already checked field by field."""

    name: str
    goal_minor: int | None
    goal_currency: str
    #: only the configured currencies the form asked about; others are kept as they are
    preset_amounts: dict[str, list[int]]
    default_frequency: Frequency
    appeal_heading: str
    appeal_text: str
    starts_on: date | None
    ends_on: date | None
    active: bool
    #: the texts in other languages and the words beside the amounts (models.Campaign.texts)
    texts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VariantValues:
    """An appeal variant as the form describes it."""

    heading: str
    text: str
    weight: int
    active: bool


@dataclass(frozen=True)
class CampaignTotals:
    """What a campaign has raised: net of refunds, in the reporting currency, and from how many."""

    raised_minor: int
    supporters: int


def campaign_totals(campaign_ids: list[int] | None = None) -> dict[int, CampaignTotals]:
    """Raised (net of refunds, reporting currency) and distinct supporters, per campaign id.

    The same sum as the widget's goal bar: counted gifts only, each gift's
    `amount_base_minor` scaled by the part not refunded; gifts not yet converted
    to the reporting currency are left out. Campaigns without gifts are absent.
    """
    query = (
        select(
            Gift.campaign_id, func.coalesce(func.sum(GIFT_NET_BASE), 0), func.count(func.distinct(Gift.supporter_id))
        )
        .where(Gift.campaign_id.isnot(None), Gift.status.in_(GIFT_COUNTED))
        .group_by(Gift.campaign_id)
    )
    if campaign_ids is not None:
        query = query.where(Gift.campaign_id.in_(campaign_ids))
    return {
        campaign_id: CampaignTotals(int(raised or 0), int(supporters or 0))
        for campaign_id, raised, supporters in db.session.execute(query)
        if campaign_id is not None
    }


def list_campaigns() -> list[Campaign]:
    """Every campaign, active ones first, then by name."""
    return list(db.session.scalars(select(Campaign).order_by(Campaign.active.desc(), Campaign.name, Campaign.id)))


def slug_taken(slug: str) -> bool:
    """True when a campaign already has this slug."""
    return db.session.execute(select(Campaign.id).filter_by(slug=slug)).first() is not None


def create_campaign(actor: Actor | None, slug: str, values: CampaignValues) -> Campaign:
    """Add a campaign (flushes). Refuses when the slug is taken."""
    if slug_taken(slug):
        raise Refused(_l("There is already a campaign with the address %(slug)s."), field="slug", slug=slug)
    _check_dates(values)
    campaign = Campaign(slug=slug, **{name: getattr(values, name) for name in CAMPAIGN_FIELDS})
    campaign.preset_amounts = {code: amounts for code, amounts in values.preset_amounts.items() if amounts}
    try:
        with db.session.begin_nested():  # another request may take the slug between the check and here
            db.session.add(campaign)
    except IntegrityError:
        raise Refused(_l("There is already a campaign with the address %(slug)s."), field="slug", slug=slug) from None
    audit.record(actor, "campaign.create", "campaign", campaign.id, slug=campaign.slug, name=campaign.name)
    after_commit(clear_widget_cache)
    return campaign


def update_campaign(actor: Actor | None, campaign: Campaign, values: CampaignValues) -> dict[str, list[Any]]:
    """Apply `values` (flushes); return {field: [before, after]} of what changed, JSON-ready.

    Suggested amounts in currencies the form did not ask about are kept.
    """
    _check_dates(values)
    wanted = {name: getattr(values, name) for name in CAMPAIGN_FIELDS}
    wanted["preset_amounts"] = {**(campaign.preset_amounts or {}), **values.preset_amounts}
    wanted["preset_amounts"] = {code: amounts for code, amounts in wanted["preset_amounts"].items() if amounts}
    if not values.texts and not campaign.texts:
        del wanted["texts"]  # none before (an older row holds NULL), none now: no change
    changes = _apply(campaign, wanted)
    db.session.flush()
    if changes:
        audit.record(actor, "campaign.update", "campaign", campaign.id, slug=campaign.slug, changed=changes)
        after_commit(clear_widget_cache)
    return changes


def add_variant(actor: Actor | None, campaign: Campaign, key: str, values: VariantValues) -> AppealVariant:
    """Add an appeal variant to `campaign` (flushes). Refuses for a key in use."""
    if any(variant.key == key for variant in campaign.variants):
        raise Refused(_l("This campaign already has a variant %(key)s."), field="key", key=key)
    variant = AppealVariant(
        campaign_id=campaign.id, key=key, **{name: getattr(values, name) for name in VARIANT_FIELDS}
    )
    try:
        with db.session.begin_nested():  # another request may add the key between the check and here
            db.session.add(variant)
    except IntegrityError:
        raise Refused(_l("This campaign already has a variant %(key)s."), field="key", key=key) from None
    db.session.refresh(campaign, ["variants"])
    audit.record(
        actor,
        "variant.create",
        "appeal_variant",
        variant.id,
        campaign=campaign.slug,
        key=variant.key,
        weight=variant.weight,
        active=variant.active,
    )
    after_commit(clear_widget_cache)
    return variant


def update_variant(actor: Actor | None, variant: AppealVariant, values: VariantValues) -> dict[str, list[Any]]:
    """Apply `values` to the variant (flushes, audits); return {field: [before, after]} of what changed."""
    changes = _apply(variant, {name: getattr(values, name) for name in VARIANT_FIELDS})
    db.session.flush()
    if changes:
        audit.record(
            actor,
            "variant.update",
            "appeal_variant",
            variant.id,
            campaign=variant.campaign.slug,
            key=variant.key,
            changed=changes,
        )
        after_commit(clear_widget_cache)
    return changes


def remove_variant(actor: Actor | None, variant: AppealVariant) -> None:
    """Delete the variant (flushes). Its past widget counts stay, under its key."""
    variant_id, key, campaign = variant.id, variant.key, variant.campaign
    campaign.variants.remove(variant)
    db.session.flush()
    audit.record(actor, "variant.delete", "appeal_variant", variant_id, campaign=campaign.slug, key=key)
    after_commit(clear_widget_cache)


def _check_dates(values: CampaignValues) -> None:
    if values.starts_on and values.ends_on and values.ends_on < values.starts_on:
        raise Refused(_l("The end date cannot be before the start date."), field="ends_on")


def _apply(row: Any, wanted: dict[str, Any]) -> dict[str, list[Any]]:
    changes: dict[str, list[Any]] = {}
    for name, value in wanted.items():
        before = getattr(row, name)
        if before != value:
            changes[name] = [_jsonable(before), _jsonable(value)]
            setattr(row, name, value)
    return changes


def _jsonable(value: Any) -> Any:
    """A value as the audit log's JSON keeps it; long texts are cut (the change itself is in the row)."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Frequency):
        return value.value
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    return value


def configured_currencies() -> list[str]:
    """The currencies donors may give in, in their configured order."""
    return list(current_app.config["SUPPORTERS_CURRENCIES"])
