"""A donor signs in without a password: a single-use link and a 6-digit code, e-mailed.

Asking for a sign-in answers the same whether or not the address has given; only a
known supporter (not erased) is e-mailed. The link's token and the code are random;
only their HMAC (keyed with SECRET_KEY) is stored. Both work for LINK_VALID_MINUTES
and once; a code allows MAX_CODE_TRIES wrong tries. A donor session is one entry in
Flask's signed session (`session["donor"]`), separate from staff sign-in (Flask-Login),
valid for SESSION_HOURS. Functions flush; the caller commits.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import session
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from supporters.extensions import db
from supporters.lib.errors import Refused
from supporters.lib.forms import MAX_ID
from supporters.lib.tokens import keyed_hash
from supporters.models import DonorSignIn, Supporter, normalise_email, utcnow
from supporters.people import edits

LINK_VALID_MINUTES = 30
MAX_CODE_TRIES = 5
SESSION_HOURS = 2
#: the key of the donor session in Flask's session
SESSION_KEY = "donor"
#: a token as `request_sign_in` makes it (secrets.token_urlsafe(32)); anything else is not looked up
TOKEN = re.compile(r"[A-Za-z0-9_-]{40,50}")
CODE = re.compile(r"[0-9]{6}")

NOT_FOUND = _l("This sign-in link is not valid. Please open the link exactly as it is in the e-mail.")
USED = _l("This sign-in link has already been used. Ask for a new one below.")
EXPIRED = _l("This sign-in link has expired: links work for %(minutes)s minutes. Ask for a new one below.")
WRONG_CODE = _l(
    "This code is not right for this address, or it has expired or been used. "
    "Check the code in the e-mail, or ask for a new one."
)


_hash = keyed_hash


def known_supporter(email: str) -> Supporter | None:
    """The supporter with this address who may sign in (none erased); the address of a
    supporter merged into another signs in the one it was merged into."""
    normalised = normalise_email(email or "")
    if not normalised:
        return None
    supporter = db.session.scalars(select(Supporter).filter_by(email_normalised=normalised)).first()
    if supporter is not None:
        supporter = edits.surviving(supporter)
    if supporter is None or supporter.anonymised_at is not None:
        return None
    return supporter


def request_sign_in(email: str, now: datetime | None = None) -> tuple[DonorSignIn, str, str] | None:
    """A new sign-in for the supporter with `email`: (row, token, code), or None for an
    address that has not given. Only hashes are stored: the token and code go in the
    e-mail, nowhere else."""
    now = now or utcnow()
    supporter = known_supporter(email)
    if supporter is None:
        return None
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(1_000_000):06d}"
    row = DonorSignIn(
        supporter_id=supporter.id,
        token_hash=_hash(token),
        code_hash=_hash("code:" + code),
        expires_at=now + timedelta(minutes=LINK_VALID_MINUTES),
        created_at=now,
        attempts=0,
    )
    db.session.add(row)
    db.session.flush()
    return row, token, code


def open_link(token: str, now: datetime | None = None) -> DonorSignIn:
    """The sign-in whose link holds `token`, while it may still be used.

    Refuses (404) a token that is not ours, (410) one used or expired, or whose supporter
    was erased."""
    now = now or utcnow()
    row = None
    if TOKEN.fullmatch(token or ""):
        row = db.session.scalars(select(DonorSignIn).filter_by(token_hash=_hash(token))).first()
    if row is None:
        raise Refused(NOT_FOUND, status=404)
    supporter = db.session.get(Supporter, row.supporter_id)
    if supporter is None or supporter.anonymised_at is not None:
        raise Refused(NOT_FOUND, status=404)
    if row.used_at is not None:
        raise Refused(USED, status=410)
    if row.expires_at <= now:
        raise Refused(EXPIRED, status=410, minutes=LINK_VALID_MINUTES)
    return row


def _close(row: DonorSignIn, now: datetime) -> None:
    """Mark the row used: one conditional UPDATE, so two uses at once sign in once."""
    closed = db.session.connection().execute(
        sa.update(DonorSignIn).where(DonorSignIn.id == row.id, DonorSignIn.used_at.is_(None)).values(used_at=now)
    )
    if closed.rowcount != 1:
        raise Refused(USED, status=410)
    db.session.refresh(row)


def use_link(token: str, now: datetime | None = None) -> int:
    """The link's button was pressed: the sign-in is used up; the supporter's id."""
    now = now or utcnow()
    row = open_link(token, now)
    _close(row, now)
    return row.supporter_id


def use_code(email: str, code: str, now: datetime | None = None) -> int:
    """The code typed with the address: the supporter's id, the sign-in used up.

    Refuses (400) with one message whatever is wrong (an unknown address, no sign-in
    waiting, a wrong code), so the answer tells nothing about the address. A wrong code
    counts against the newest waiting sign-in, which stops after MAX_CODE_TRIES; the
    caller keeps that count even though the answer is a refusal."""
    now = now or utcnow()
    supporter = known_supporter(email)
    if supporter is None:
        raise Refused(WRONG_CODE, field="code")
    row = db.session.scalars(
        select(DonorSignIn)
        .where(
            DonorSignIn.supporter_id == supporter.id,
            DonorSignIn.used_at.is_(None),
            DonorSignIn.expires_at > now,
            DonorSignIn.attempts < MAX_CODE_TRIES,
        )
        .order_by(DonorSignIn.created_at.desc(), DonorSignIn.id.desc())
        .limit(1)
    ).first()
    if row is None:
        raise Refused(WRONG_CODE, field="code")
    if not (CODE.fullmatch(code or "") and hmac.compare_digest(row.code_hash, _hash("code:" + code))):
        db.session.connection().execute(
            sa.update(DonorSignIn).where(DonorSignIn.id == row.id).values(attempts=DonorSignIn.attempts + 1)
        )
        raise Refused(WRONG_CODE, field="code")
    _close(row, now)
    return row.supporter_id


# --- The donor session ------------------------------------------------------------------------


def start_session(supporter_id: int, now: datetime | None = None) -> None:
    """Sign the donor in for SESSION_HOURS, in Flask's signed session only (never Flask-Login)."""
    now = now or utcnow()
    session[SESSION_KEY] = {
        "supporter_id": supporter_id,
        "until": (now + timedelta(hours=SESSION_HOURS)).isoformat(),
    }


def end_session(now: datetime | None = None) -> None:
    """Sign out: this session and every other of the same donor begun before now end
    (`Supporter.donor_signed_out_at`), so a copy of the cookie is worth nothing."""
    supporter = _session_supporter(now or utcnow())
    if supporter is not None:
        supporter.donor_signed_out_at = now or utcnow()
        db.session.flush()
    session.pop(SESSION_KEY, None)


def signed_in_supporter(now: datetime | None = None) -> Supporter | None:
    """The donor of this session, while it lasts and their record is not erased; an
    ended or odd session is forgotten."""
    now = now or utcnow()
    supporter = _session_supporter(now)
    if supporter is None:
        session.pop(SESSION_KEY, None)
    return supporter


def _session_supporter(now: datetime) -> Supporter | None:
    """The supporter of a live donor session in this request's cookie, or None."""
    kept = session.get(SESSION_KEY)
    if not isinstance(kept, dict):
        return None
    supporter_id, until = kept.get("supporter_id"), kept.get("until")
    try:
        ends = datetime.fromisoformat(str(until))
    except ValueError:
        ends = None
    if (
        type(supporter_id) is not int
        or not 0 < supporter_id <= MAX_ID
        or ends is None
        or ends.tzinfo is None
        or ends <= now
    ):
        return None
    supporter = db.session.get(Supporter, supporter_id)
    # a session of a supporter merged away since ends: signing in again reaches the survivor
    if supporter is None or supporter.anonymised_at is not None or supporter.merged_into_id is not None:
        return None
    began = ends - timedelta(hours=SESSION_HOURS)
    if supporter.donor_signed_out_at is not None and began <= supporter.donor_signed_out_at:
        return None
    return supporter
