"""The one model of supporters and gifts; one module per aggregate."""

from .article import Article, ArticleTag
from .base import Base, InvalidTransition, utcnow
from .campaign import AppealVariant, Campaign, Frequency
from .gift import GIFT_COUNTED, GIFT_TRANSITIONS, HAPPENED_AT, Gift, GiftKind, GiftMethod, GiftStatus
from .giving import GivingTotal
from .outbox import OutboxEmail
from .recurring import PLAN_TRANSITIONS, PlanInterval, PlanStatus, RecurringPlan
from .staff import AuditEvent, StaffRole, StaffSession, StaffUser
from .stripe_event import StripeEvent
from .supporter import (
    Consent,
    Supporter,
    SupporterNote,
    SupporterSearchKey,
    SupporterTag,
    normalise_email,
    prefix_range,
    sort_key,
)
from .widget import WidgetStat

__all__ = [
    "AppealVariant", "Article", "ArticleTag", "AuditEvent", "Base", "Campaign", "Consent", "Frequency",
    "GIFT_COUNTED", "GIFT_TRANSITIONS", "HAPPENED_AT", "Gift", "GiftKind", "GiftMethod", "GiftStatus", "GivingTotal",
    "InvalidTransition", "OutboxEmail", "PLAN_TRANSITIONS", "PlanInterval", "PlanStatus",
    "RecurringPlan", "StaffRole", "StaffSession", "StaffUser", "StripeEvent", "Supporter", "SupporterNote",
    "SupporterSearchKey", "prefix_range",
    "SupporterTag",
    "WidgetStat", "normalise_email", "sort_key", "utcnow",
]
