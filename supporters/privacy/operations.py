"""Access and erasure done from a logged request, or from the supporter's page (which
logs the request first): the rules the staff pages call."""

from __future__ import annotations

from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from supporters.extensions import db
from supporters.lib.audit import Actor
from supporters.lib.errors import Refused
from supporters.models import PrivacyRequest, RequestKind, Supporter, normalise_email
from supporters.payments import PaymentGateway
from supporters.privacy import access, erasure, requests


def _supporter_of(request: PrivacyRequest) -> Supporter:
    supporter = db.session.get(Supporter, request.supporter_id) if request.supporter_id else None
    if supporter is None:
        raise Refused(_l("Say first which supporter the request is about."), status=409)
    return supporter


def export_for_request(actor: Actor | None, request: PrivacyRequest) -> access.Export:
    """The access export of the supporter the request is about (any open or closed request:
    a second copy may be asked for)."""
    return access.build_export(actor, _supporter_of(request), request)


def export_for_supporter(actor: Actor | None, supporter: Supporter, received_on: date) -> access.Export:
    """Log an access request for the supporter, received on `received_on`, and export."""
    request = requests.log_request(actor, RequestKind.ACCESS, received_on=received_on, supporter=supporter)
    return access.build_export(actor, supporter, request)


def _check_confirmation(supporter: Supporter, confirmation: str) -> None:
    if normalise_email(confirmation or "") != supporter.email_normalised:
        raise Refused(_l("Type the supporter's e-mail address exactly to confirm the erasure."), field="confirmation")


def erase_for_request(
    actor: Actor | None, request: PrivacyRequest, gateway: PaymentGateway, confirmation: str
) -> erasure.Erasure:
    """Erase the supporter an erasure request is about, once staff typed their e-mail
    address; the request is closed with what was done."""
    if request.kind is not RequestKind.ERASURE:
        raise Refused(_l("Only an erasure request erases data."), status=409)
    supporter = _supporter_of(request)
    erasure.refuse_erasure(supporter)
    _check_confirmation(supporter, confirmation)
    done = erasure.erase(actor, supporter, gateway, request)
    requests.close_request(actor, request, _erased_outcome(supporter))
    return done


def erase_for_supporter(
    actor: Actor | None, supporter: Supporter, gateway: PaymentGateway, confirmation: str, received_on: date
) -> tuple[PrivacyRequest, erasure.Erasure]:
    """Log an erasure request for the supporter and carry it out (see erase_for_request)."""
    erasure.refuse_erasure(supporter)
    _check_confirmation(supporter, confirmation)
    request = requests.log_request(actor, RequestKind.ERASURE, received_on=received_on, supporter=supporter)
    return request, erase_for_request(actor, request, gateway, supporter.email)


def _erased_outcome(supporter: Supporter) -> str:
    until = erasure.retained_until(supporter)
    if until is None:
        return _("Personal data erased; no gifts to keep.")
    return _("Personal data erased; the gifts are kept for the books until %(date)s.", date=until.isoformat())
