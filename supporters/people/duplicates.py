"""Likely duplicate supporters: found by a scan, ranked by confidence, each with its reasons.

The signals, from the strongest:

- **e-mail variants**: the same address once Gmail's dots and any `+tag` are set aside
  (`jan.kowalski+news@gmail.com` and `jankowalski@googlemail.com`). Strong, not certain:
  the same mailbox, but perhaps a couple sharing it. (The same normalised e-mail cannot
  happen: it is unique.)
- **the same name and postal code** (sort keys: accent- and case-free).
- **the same bank account** sending transfers that became gifts of both.
- **similar names** (rapidfuzz's token_sort_ratio on sort keys: "Kowalski Jan" is
  "Jan Kowalski", "Jan Kowalsky" is close), stronger with the same postal code.

Similar names are compared within blocks only (the first four letters of one word of the
name, with the initials of the others), so the work grows with the size of the blocks, not
with the square of the supporters. The scan reads every live supporter (not erased, not
merged away), so it is run by `flask duplicates scan` (a cron) or the list's *Scan now*,
and writes `duplicate_candidate`; the list reads that table, so it answers at once at any
size (docs/dashboard.md, "Duplicates and merging").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from rapidfuzz import fuzz, process
from sqlalchemy.exc import IntegrityError

from supporters.extensions import db
from supporters.lib import audit
from supporters.lib.audit import Actor
from supporters.lib.errors import Refused
from supporters.models import BankLine, DuplicateCandidate, DuplicateDismissal, Gift, Supporter, utcnow

#: how sure each signal alone makes the scan (combined as independent evidence)
EMAIL_VARIANT = 0.9
SAME_NAME_AND_POSTAL_CODE = 0.85
SAME_ACCOUNT = 0.8
#: similar names: from SIMILAR_LOW at the cut-off ratio to SIMILAR_HIGH for the same name
SIMILAR_LOW, SIMILAR_HIGH = 0.4, 0.55
SIMILAR_CUTOFF = 88
#: a similar name with the same postal code
SIMILAR_AND_POSTAL_CODE = 0.5
#: a name more live supporters than this share is too common to pair two of its holders
#: by the name alone (a dozen Anna Nowaks are a dozen people); with the same postal code it
#: still counts, and so does a rarer name close to it ("Anna Nowakk")
NAME_COMMON = 5
#: a block larger than this is left out (a name part so common it tells nothing alone: the
#: pairs in it share a block of another word of their names as well)
BLOCK_MAX = 3000
#: an account that paid for more supporters than this is an organisation's (a payroll
#: giving scheme, a bank's own transfers), not one person's
ACCOUNT_MAX = 10
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def email_variant_key(email_normalised: str) -> str:
    """The address with the parts that do not change its mailbox set aside: any `+tag`,
    and for Gmail the dots and the googlemail.com spelling."""
    local, at, domain = email_normalised.rpartition("@")
    if not at:
        return email_normalised
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def postal_key(postal_code: str | None) -> str:
    """A postal code without spaces and dashes, upper case ("00-950" and "00950" are one)."""
    return "".join(ch for ch in (postal_code or "").upper() if ch.isalnum())


def account_key(account: str | None) -> str:
    """A bank account without spaces, upper case (an IBAN as printed and as typed are one)."""
    return "".join((account or "").split()).upper()


def name_blocks(name_sort: str) -> set[tuple[str, str]]:
    """The blocks a name is compared in: for each word, its first four letters with the
    initials of the other words ("jan kowalski" -> ("kowa", "j"), ("jan", "k"))."""
    words = [word for word in name_sort.split() if word]
    if len(words) < 2:
        return set()
    blocks = set()
    for index, word in enumerate(words):
        others = "".join(sorted(other[0] for position, other in enumerate(words) if position != index))
        blocks.add((word[:4], others))
    return blocks


@dataclass
class Found:
    """A pair and what speaks for it."""

    reasons: list[dict[str, Any]] = field(default_factory=list)
    chances: list[float] = field(default_factory=list)

    def add(self, code: str, chance: float, **figures: Any) -> None:
        if any(reason["code"] == code for reason in self.reasons):
            return
        self.reasons.append({"code": code, **figures})
        self.chances.append(chance)

    @property
    def confidence(self) -> int:
        """The signals as independent evidence: 1 - Π(1 - p), in percent, below 100."""
        doubt = 1.0
        for chance in self.chances:
            doubt *= 1 - chance
        return min(99, round(100 * (1 - doubt)))


@dataclass(frozen=True)
class Person:
    id: int
    name_sort: str
    email_variant: str
    postal: str


def live_condition() -> sa.ColumnElement[bool]:
    """A supporter who can be a duplicate: not erased and not merged away."""
    return sa.and_(Supporter.anonymised_at.is_(None), Supporter.merged_into_id.is_(None))


def _people() -> list[Person]:
    rows = db.session.execute(
        sa.select(Supporter.id, Supporter.name_sort, Supporter.email_normalised, Supporter.postal_code)
        .where(live_condition())
        .order_by(Supporter.id)
        .execution_options(yield_per=10_000)
    )
    return [
        Person(row.id, row.name_sort, email_variant_key(row.email_normalised), postal_key(row.postal_code))
        for row in rows
    ]


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _groups(people: Iterable[Person], key: Any) -> Iterator[list[Person]]:
    grouped: dict[Any, list[Person]] = defaultdict(list)
    for person in people:
        value = key(person)
        if value:
            grouped[value].append(person)
    return (group for group in grouped.values() if 1 < len(group) <= BLOCK_MAX)


def find_pairs() -> dict[tuple[int, int], Found]:
    """Every likely duplicate pair among live supporters, with its reasons, leaving out
    pairs staff dismissed."""
    people = _people()
    found: dict[tuple[int, int], Found] = defaultdict(Found)
    for group in _groups(people, lambda person: person.email_variant):
        for a, b in combinations(group, 2):
            found[_pair(a.id, b.id)].add("email_variant", EMAIL_VARIANT)
    for group in _groups(people, lambda person: (person.name_sort, person.postal) if person.postal else None):
        for a, b in combinations(group, 2):
            found[_pair(a.id, b.id)].add("same_name_postal_code", SAME_NAME_AND_POSTAL_CODE)
    _similar_names(people, found)
    _same_accounts(found)
    dismissed = {
        (low, high)
        for low, high in db.session.execute(sa.select(DuplicateDismissal.low_id, DuplicateDismissal.high_id))
    }
    return {pair: what for pair, what in found.items() if pair not in dismissed}


def _similar_names(people: list[Person], found: dict[tuple[int, int], Found]) -> None:
    holders: dict[str, int] = defaultdict(int)
    for person in people:
        holders[person.name_sort] += 1
    common = {name for name, count in holders.items() if count > NAME_COMMON}
    blocks: dict[tuple[str, str], list[Person]] = defaultdict(list)
    for person in people:
        for block in name_blocks(person.name_sort):
            blocks[block].append(person)
    seen: set[tuple[int, int]] = set()
    for members in blocks.values():
        if not 1 < len(members) <= BLOCK_MAX:
            continue
        # Two holders of common names are never paired by the name, so they are never
        # compared: each rarer name is compared with the rarer ones after it and with the
        # common ones (rapidfuzz's loop runs in C).
        rare = [person for person in members if person.name_sort not in common]
        frequent = [person for person in members if person.name_sort in common]
        rare_names, frequent_names = [person.name_sort for person in rare], [person.name_sort for person in frequent]
        for i, person in enumerate(rare):
            for others, names in ((rare[i + 1 :], rare_names[i + 1 :]), (frequent, frequent_names)):
                for _other, score, index in process.extract(
                    person.name_sort, names, scorer=fuzz.token_sort_ratio, score_cutoff=SIMILAR_CUTOFF, limit=None
                ):
                    _note_similar(found, seen, person, others[index], int(score))


def _note_similar(
    found: dict[tuple[int, int], Found], seen: set[tuple[int, int]], a: Person, b: Person, score: int
) -> None:
    pair = _pair(a.id, b.id)
    if pair in seen:
        return
    seen.add(pair)
    chance = SIMILAR_LOW + (SIMILAR_HIGH - SIMILAR_LOW) * (score - SIMILAR_CUTOFF) / (100 - SIMILAR_CUTOFF)
    if a.name_sort == b.name_sort:
        found[pair].add("same_name", SIMILAR_HIGH)
    else:
        found[pair].add("similar_name", chance, score=score)
    if a.postal and a.postal == b.postal:
        found[pair].add("same_postal_code", SIMILAR_AND_POSTAL_CODE)


def _same_accounts(found: dict[tuple[int, int], Found]) -> None:
    """Bank lines from one account that became gifts of two (live) supporters."""
    rows = db.session.execute(
        sa.select(BankLine.counterparty_account, Gift.supporter_id)
        .join(Gift, Gift.id == BankLine.gift_id)
        .join(Supporter, Supporter.id == Gift.supporter_id)
        .where(BankLine.counterparty_account.is_not(None), live_condition())
        .distinct()
    )
    by_account: dict[str, set[int]] = defaultdict(set)
    for account, supporter_id in rows:
        key = account_key(account)
        if key:
            by_account[key].add(supporter_id)
    for ids in by_account.values():
        if 1 < len(ids) <= ACCOUNT_MAX:
            for a, b in combinations(sorted(ids), 2):
                found[(a, b)].add("same_account", SAME_ACCOUNT)


def scan() -> int:
    """Find the likely duplicates again and keep them for the list (the table is
    replaced); returns how many pairs were found. Flushes; the caller commits."""
    pairs = find_pairs()
    now = utcnow()
    db.session.execute(sa.delete(DuplicateCandidate))
    rows = [
        {"low_id": low, "high_id": high, "confidence": what.confidence, "reasons": what.reasons, "found_at": now}
        for (low, high), what in sorted(pairs.items())
    ]
    for start in range(0, len(rows), 5000):
        db.session.execute(sa.insert(DuplicateCandidate), rows[start : start + 5000])
    db.session.flush()
    return len(rows)


# --- The review list -----------------------------------------------------------------


def _open_pairs() -> sa.Select[DuplicateCandidate, Supporter, Supporter]:
    """The pairs found that still need a look: both supporters live, not dismissed since."""
    low, high = sa.orm.aliased(Supporter), sa.orm.aliased(Supporter)
    dismissed = sa.select(DuplicateDismissal.low_id).where(
        DuplicateDismissal.low_id == DuplicateCandidate.low_id, DuplicateDismissal.high_id == DuplicateCandidate.high_id
    )
    return (
        sa.select(DuplicateCandidate, low, high)
        .join(low, low.id == DuplicateCandidate.low_id)
        .join(high, high.id == DuplicateCandidate.high_id)
        .where(
            low.anonymised_at.is_(None),
            low.merged_into_id.is_(None),
            high.anonymised_at.is_(None),
            high.merged_into_id.is_(None),
            ~dismissed.exists(),
        )
    )


@dataclass(frozen=True)
class Pair:
    """One row of the review list."""

    candidate: DuplicateCandidate
    first: Supporter
    second: Supporter


def pair_page(limit: int, offset: int) -> list[Pair]:
    """A page of the pairs to review, the surest first: the page's pairs read from the
    confidence index alone (however deep the page), then their supporters. Pairs that
    stopped being open since the scan (a merge or "not a duplicate" delete their rows; an
    erasure does not) are left off the page."""
    candidates = db.session.scalars(
        sa.select(DuplicateCandidate)
        .order_by(DuplicateCandidate.confidence.desc(), DuplicateCandidate.low_id, DuplicateCandidate.high_id)
        .limit(limit)
        .offset(offset)
    ).all()
    ids = {supporter_id for candidate in candidates for supporter_id in (candidate.low_id, candidate.high_id)}
    people = {
        person.id: person
        for person in db.session.scalars(sa.select(Supporter).where(Supporter.id.in_(ids), live_condition()))
    }
    return [
        Pair(candidate, people[candidate.low_id], people[candidate.high_id])
        for candidate in candidates
        if candidate.low_id in people and candidate.high_id in people
    ]


def pair_count() -> int:
    """How many pairs the last scan found that are still to review (an erasure since is
    counted until the next scan)."""
    return int(db.session.execute(sa.select(sa.func.count()).select_from(DuplicateCandidate)).scalar_one())


def forget_pairs_of(supporter_ids: list[int]) -> None:
    """These supporters are no longer anyone's duplicate (merged away): their pairs go."""
    db.session.execute(
        sa.delete(DuplicateCandidate).where(
            sa.or_(DuplicateCandidate.low_id.in_(supporter_ids), DuplicateCandidate.high_id.in_(supporter_ids))
        )
    )


def last_scan() -> Any:
    """When the pairs shown were found (None: never scanned, or nothing found)."""
    return db.session.execute(sa.select(sa.func.max(DuplicateCandidate.found_at))).scalar_one()


def possible_duplicates(supporter_id: int) -> list[int]:
    """The ids of the live supporters the last scan paired with this one, still to review."""
    statement = _open_pairs().where(
        sa.or_(DuplicateCandidate.low_id == supporter_id, DuplicateCandidate.high_id == supporter_id)
    )
    return sorted(
        second.id if first.id == supporter_id else first.id
        for _candidate, first, second in db.session.execute(statement)
    )


def reason_text(reason: dict[str, Any]) -> str:
    """A reason in words, in the current language."""
    code = reason.get("code")
    if code == "email_variant":
        return _("The same e-mail address once dots and +tags are set aside")
    if code == "same_name_postal_code":
        return _("The same name and postal code")
    if code == "same_name":
        return _("The same name")
    if code == "similar_name":
        return _("Similar names (%(score)s%% alike)", score=reason.get("score", ""))
    if code == "same_postal_code":
        return _("The same postal code")
    if code == "same_account":
        return _("Gifts from the same bank account")
    return str(code)


# --- Not a duplicate -------------------------------------------------------------------

_NOT_A_PAIR = _l("Choose two different supporters.")


def dismiss(actor: Actor | None, first: Supporter, second: Supporter) -> bool:
    """Remember that these two are different people, so the pair is never suggested
    again; audited. Returns False (changing nothing) if it was dismissed already."""
    if first.id == second.id:
        raise Refused(_NOT_A_PAIR)
    low, high = _pair(first.id, second.id)
    if db.session.get(DuplicateDismissal, (low, high)) is not None:
        return False
    try:
        # a savepoint: a colleague dismissing the same pair at this moment is no error
        with db.session.begin_nested():
            db.session.add(DuplicateDismissal(low_id=low, high_id=high, staff_user_id=actor.id if actor else None))
    except IntegrityError:
        return False
    db.session.execute(
        sa.delete(DuplicateCandidate).where(DuplicateCandidate.low_id == low, DuplicateCandidate.high_id == high)
    )
    db.session.flush()
    audit.record(actor, "supporter.not_a_duplicate", "supporter", low, other_id=high)
    return True
