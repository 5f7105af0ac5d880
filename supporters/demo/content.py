"""Original demo content: one campaign, three articles, fifty supporters and their gifts.

Everything here is marked `is_demo`, so it can be told apart and removed.
Seeding is idempotent: rows are found by their natural keys before being created.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypedDict

from flask import current_app
from sqlalchemy import exists, select

from supporters.articles.markup import render_markdown
from supporters.extensions import db
from supporters.giving import lifecycle, totals
from supporters.models import (
    AppealVariant,
    Article,
    ArticleTag,
    Campaign,
    Frequency,
    Gift,
    GiftKind,
    GiftMethod,
    GiftStatus,
    PlanInterval,
    PlanStatus,
    RecurringPlan,
    Supporter,
)


class DemoArticle(TypedDict):
    slug: str
    title: str
    lead: str
    tags: list[str]
    days_ago: int
    body: str


DEMO_ARTICLES: list[DemoArticle] = [
    {
        "slug": "baltic-grid-after-synchronisation",
        "title": "The Baltic grid after synchronisation: what changed and what did not",
        "lead": "Cutting the last wires to the old eastern power system was a political milestone. "
        "The engineering work that makes it last has only begun.",
        "tags": ["energy", "baltic states", "infrastructure"],
        "days_ago": 12,
        "body": """Synchronising a national grid with a neighbour is less a switch than a long
negotiation with physics. Frequency must be held within narrow limits, and the reserves
that used to come from a larger system now have to be found at home.

## Three things to watch

1. **Reserve capacity.** Batteries and fast gas turbines now carry the duty that
   imports once did.
2. **Interconnector outages.** A single cable fault matters more in a smaller system.
3. **Prices.** Balancing costs are passed on slowly, but they are passed on.

The lesson for policy makers is simple to state and hard to follow: resilience is bought
before it is needed.""",
    },
    {
        "slug": "reading-a-defence-budget",
        "title": "Reading a defence budget: four questions worth asking",
        "lead": "Headline percentages of GDP say little about what a country can actually do. "
        "A short guide to the lines that matter.",
        "tags": ["defence", "public finance"],
        "days_ago": 40,
        "body": """Every year the same number leads the news: the share of national income spent
on defence. It is a useful pledge and a poor measure.

Ask instead **how much goes to equipment** rather than salaries and pensions, **how much of
it is delivered on time**, **what is spent on ammunition stocks**, and **whether maintenance
keeps pace with purchases**. A budget that answers those four well is worth more than one
that merely grows.""",
    },
    {
        "slug": "why-small-gifts-keep-research-independent",
        "title": "Why small gifts keep research independent",
        "lead": "A think tank funded by thousands of readers answers to its readers. "
        "That is the whole argument, and it is a strong one.",
        "tags": ["independence", "public finance", "infrastructure"],
        "days_ago": 75,
        "body": """Large grants come with expectations, spoken or not. A broad base of small,
regular gifts spreads that influence so thin that it disappears.

Regular gifts also let an institute plan: a monthly supporter funds next year's fieldwork,
not just last month's report. That is why we ask for monthly support first, and why every
gift, however small, is counted and thanked.""",
    },
]

FIRST_NAMES = [
    "Anna",
    "Piotr",
    "Katarzyna",
    "Tomasz",
    "Maria",
    "Jan",
    "Agnieszka",
    "Paweł",
    "Ewa",
    "Michał",
    "Zofia",
    "Łukasz",
    "Joanna",
    "Krzysztof",
    "Małgorzata",
    "Marek",
    "Oliwia",
    "Jakub",
    "Helena",
    "Adam",
    "Emma",
    "Lucas",
    "Sofia",
    "Noah",
    "Ingrid",
]
LAST_NAMES = [
    "Nowak",
    "Kowalska",
    "Wiśniewski",
    "Wójcik",
    "Kamińska",
    "Lewandowski",
    "Zielińska",
    "Szymański",
    "Dąbrowska",
    "Kozłowski",
    "Jankowska",
    "Mazur",
    "Krawczyk",
    "Piotrowska",
    "Grabowski",
    "Berg",
    "Novák",
    "Schmidt",
    "Dubois",
    "Larsen",
]


@dataclass
class SeedReport:
    """What `seed()` created (zero everywhere when run again)."""

    campaigns: int = 0
    articles: int = 0
    supporters: int = 0
    gifts: int = 0
    plans: int = 0


def database_is_empty() -> bool:
    """True when there are no supporters, campaigns or articles at all."""
    return not any(
        db.session.execute(select(exists().where(model.id.isnot(None)))).scalar()
        for model in (Supporter, Campaign, Article)
    )


def seed(now: datetime | None = None, supporters: int = 50) -> SeedReport:
    """Create the demo campaign, articles, supporters and gifts that are not there yet."""
    now = now or datetime.now(UTC)
    report = SeedReport()
    currency = current_app.config["SUPPORTERS_BASE_CURRENCY"]
    campaign = _seed_campaign(currency, report)
    _seed_articles(campaign, now.date(), report)
    rng = random.Random(2026)  # the same demo people and gifts on every machine
    for number in range(1, supporters + 1):
        _seed_supporter(number, rng, campaign, currency, now, report)
    db.session.flush()
    return report


def _seed_campaign(currency: str, report: SeedReport) -> Campaign:
    campaign = db.session.execute(select(Campaign).filter_by(slug="general")).scalar_one_or_none()
    if campaign is None:
        campaign = Campaign(
            slug="general",
            name="Keep our research free to read",
            goal_minor=120_000_00,
            goal_currency=currency,
            preset_amounts={
                "PLN": [2000, 5000, 10000, 25000],
                "EUR": [500, 1000, 2500, 5000],
                "USD": [500, 1000, 2500, 5000],
            },
            default_frequency=Frequency.MONTHLY,
            appeal_heading="Support independent analysis",
            appeal_text="Our articles are free for everyone. Gifts from readers like you pay for the research "
            "behind them and keep it independent.",
            texts={
                "pl": {
                    "name": "Niezależne analizy dla wszystkich",
                    "appeal_heading": "Wesprzyj niezależne analizy",
                    "appeal_text": "Nasze teksty są dla wszystkich za darmo. Darowizny czytelników opłacają "
                    "badania, na których się opierają, i pozwalają nam zachować niezależność.",
                    "notes": {"PLN": {"2000": "godzina sprawdzania faktów", "10000": "dzień pracy redakcji"}},
                },
                "en": {"notes": {"PLN": {"2000": "an hour of fact-checking", "10000": "a day of editing"}}},
            },
            active=True,
            is_demo=True,
            variants=[
                AppealVariant(
                    key="independence",
                    weight=1,
                    heading="Support independent analysis",
                    text="Our articles are free for everyone. Gifts from readers keep our research "
                    "independent of any government or company.",
                ),
                AppealVariant(
                    key="monthly",
                    weight=1,
                    heading="Become a monthly supporter",
                    text="A small monthly gift lets us plan next year's research, not just next week's.",
                ),
            ],
        )
        db.session.add(campaign)
        db.session.flush()
        report.campaigns += 1
    return campaign


def _seed_articles(campaign: Campaign, today: date, report: SeedReport) -> None:
    for data in DEMO_ARTICLES:
        if db.session.execute(select(Article.id).filter_by(slug=data["slug"])).first():
            continue
        article = Article(
            slug=data["slug"],
            title=data["title"],
            lead=data["lead"],
            body_markdown=data["body"],
            body_html=render_markdown(data["body"]),
            published_on=today - timedelta(days=data["days_ago"]),
            campaign_id=campaign.id,
            published=True,
            is_demo=True,
            tags=[ArticleTag(tag=tag) for tag in data["tags"]],
        )
        db.session.add(article)
        report.articles += 1


def _seed_supporter(
    number: int, rng: random.Random, campaign: Campaign, currency: str, now: datetime, report: SeedReport
) -> None:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    profile = rng.random()  # drawn before the existence check, so reruns see the same people
    email = f"demo{number:03d}@example.org"
    if db.session.execute(select(Supporter.id).filter_by(email_normalised=email)).first():
        return
    supporter = Supporter(
        email=email,
        name=f"{first} {last}",
        country=rng.choice(["PL", "PL", "PL", "DE", "LT", "CZ", "SE"]),
        language=rng.choice(["pl", "pl", "en"]),
        is_demo=True,
    )
    db.session.add(supporter)
    db.session.flush()
    report.supporters += 1
    article_slugs: list[str | None] = [article["slug"] for article in DEMO_ARTICLES]

    if profile < 0.3:
        # A monthly supporter: one instalment a month since they started.
        amount = rng.choice([2000, 3000, 5000, 10000])
        months = rng.randint(1, 12)
        started = now - timedelta(days=30 * months - rng.randint(0, 20))
        plan = RecurringPlan(
            supporter_id=supporter.id,
            amount_minor=amount,
            currency=currency,
            interval=PlanInterval.MONTH,
            campaign_id=campaign.id,
            started_at=started,
            is_demo=True,
        )
        db.session.add(plan)
        plan.status = PlanStatus.ACTIVE if profile < 0.25 else PlanStatus.CANCELED
        if plan.status == PlanStatus.CANCELED:
            plan.canceled_at = now - timedelta(days=rng.randint(1, 25))
            plan.cancel_reason = "Demo: the supporter stopped."
        report.plans += 1
        db.session.flush()
        for month in range(months):
            _add_gift(
                supporter,
                amount,
                currency,
                started + timedelta(days=30 * month),
                campaign,
                rng.choice(article_slugs),
                report,
                plan=plan,
            )
    else:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            paid = now - timedelta(days=rng.randint(0, 364), hours=rng.randint(0, 23))
            amount = rng.choice([2000, 5000, 5000, 10000, 15000, 25000, 50000])
            _add_gift(supporter, amount, currency, paid, campaign, rng.choice([*article_slugs, None]), report)
    totals.refresh_supporter_totals(supporter)


def _add_gift(
    supporter: Supporter,
    amount: int,
    currency: str,
    paid_at: datetime,
    campaign: Campaign,
    article: str | None,
    report: SeedReport,
    plan: RecurringPlan | None = None,
) -> None:
    gift = Gift(
        supporter_id=supporter.id,
        amount_minor=amount,
        currency=currency,
        amount_base_minor=amount,
        status=GiftStatus.SUCCEEDED,
        kind=GiftKind.RECURRING if plan else GiftKind.ONE_TIME,
        method=GiftMethod.STRIPE,
        recurring_plan_id=plan.id if plan else None,
        campaign_id=campaign.id,
        source_article=article,
        paid_at=paid_at,
        created_at=paid_at,
        is_demo=True,
    )
    db.session.add(gift)
    db.session.flush()
    gift.receipt_number = lifecycle.receipt_number(gift)
    report.gifts += 1
