"""The one model of supporters and gifts; one module per aggregate."""

from supporters.models.article import Article, ArticleTag
from supporters.models.bank import BankLine, BankStatement, LineDirection, LineMatch, LineStatus, StatementStatus
from supporters.models.base import Base, InvalidTransition, utcnow
from supporters.models.campaign import AppealVariant, Campaign, Frequency
from supporters.models.donor import DonorSignIn
from supporters.models.duplicates import DuplicateCandidate, DuplicateDismissal, SupporterMerge
from supporters.models.gift import (
    GIFT_COUNTED,
    GIFT_NET_BASE,
    GIFT_PAID,
    GIFT_TRANSITIONS,
    HAPPENED_AT,
    Gift,
    GiftKind,
    GiftMethod,
    GiftStatus,
    net_base,
    net_base_numeric,
)
from supporters.models.giving import GivingTotal
from supporters.models.imports import ImportedRow, ImportMapping, ImportRun, ImportStatus
from supporters.models.outbox import OutboxEmail
from supporters.models.privacy import PrivacyRequest, RequestKind, RequestStatus
from supporters.models.rates import ExchangeRate
from supporters.models.receipt import ReceiptSequence
from supporters.models.recurring import (
    PLAN_TRANSITIONS,
    PlanInterval,
    PlanStatus,
    RecurringPlan,
)
from supporters.models.saved_search import SAVED_SEARCH_PAGES, SavedSearch
from supporters.models.staff import AuditEvent, StaffRecoveryCode, StaffRole, StaffSession, StaffToken, StaffUser
from supporters.models.stripe_event import StripeEvent
from supporters.models.supporter import (
    Consent,
    ConsentRequest,
    Supporter,
    SupporterNote,
    SupporterSearchKey,
    SupporterTag,
    normalise_email,
    prefix_range,
    sort_key,
)
from supporters.models.widget import WidgetStat

__all__ = [
    "GIFT_COUNTED",
    "GIFT_NET_BASE",
    "GIFT_PAID",
    "GIFT_TRANSITIONS",
    "HAPPENED_AT",
    "PLAN_TRANSITIONS",
    "SAVED_SEARCH_PAGES",
    "AppealVariant",
    "Article",
    "ArticleTag",
    "AuditEvent",
    "BankLine",
    "BankStatement",
    "Base",
    "Campaign",
    "Consent",
    "ConsentRequest",
    "DonorSignIn",
    "DuplicateCandidate",
    "DuplicateDismissal",
    "ExchangeRate",
    "Frequency",
    "Gift",
    "GiftKind",
    "GiftMethod",
    "GiftStatus",
    "GivingTotal",
    "ImportMapping",
    "ImportRun",
    "ImportStatus",
    "ImportedRow",
    "InvalidTransition",
    "LineDirection",
    "LineMatch",
    "LineStatus",
    "OutboxEmail",
    "PlanInterval",
    "PlanStatus",
    "PrivacyRequest",
    "ReceiptSequence",
    "RecurringPlan",
    "RequestKind",
    "RequestStatus",
    "SavedSearch",
    "StaffRecoveryCode",
    "StaffRole",
    "StaffSession",
    "StaffToken",
    "StaffUser",
    "StatementStatus",
    "StripeEvent",
    "Supporter",
    "SupporterMerge",
    "SupporterNote",
    "SupporterSearchKey",
    "SupporterTag",
    "WidgetStat",
    "net_base",
    "net_base_numeric",
    "normalise_email",
    "prefix_range",
    "sort_key",
    "utcnow",
]
