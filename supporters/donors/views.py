"""The donor's own page, /my: ask for a sign-in link (or type its code), use it, see
one's gifts, sign out.

Asking answers the same page with the same status whether or not the address has
given. Opening the link only shows a button (mail scanners open links by themselves);
pressing it signs in. Pages with a token are never cached nor sent on as a referrer.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Email, Length

from supporters.donors import links, queries, signin
from supporters.donors.contact_views import contact_context
from supporters.donors.web import current_donor, donor_required, page
from supporters.extensions import limiter
from supporters.giving import plan_changes
from supporters.lib import transactions
from supporters.lib.errors import Refused
from supporters.lib.forms import Form, no_control_characters, show_refusal, strip
from supporters.lib.i18n import current_locale
from supporters.mail.donor_sign_in import queue_sign_in
from supporters.models import GiftMethod, GiftStatus, Supporter, normalise_email

bp = Blueprint("donors", __name__, url_prefix="/my")

#: how a gift's status and method read to its donor
STATUS_WORDS = {
    GiftStatus.PENDING: _l("not paid yet"),
    GiftStatus.SUCCEEDED: _l("paid"),
    GiftStatus.FAILED: _l("payment failed"),
    GiftStatus.CANCELED: _l("canceled"),
    GiftStatus.PARTIALLY_REFUNDED: _l("partly refunded"),
    GiftStatus.REFUNDED: _l("refunded"),
    GiftStatus.DISPUTED: _l("disputed with your bank"),
    GiftStatus.VOIDED: _l("recorded by mistake, not counted"),
}
METHOD_WORDS = {
    GiftMethod.STRIPE: _l("card or online payment"),
    GiftMethod.BANK_TRANSFER: _l("bank transfer"),
    GiftMethod.CHEQUE: _l("cheque"),
    GiftMethod.CASH: _l("cash"),
}


def _email_field() -> EmailField:
    return EmailField(
        _l("E-mail"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the e-mail address you gave with.")),
            Length(max=254),
            no_control_characters,
            Email(_l("Enter a valid e-mail address.")),
        ],
    )


class AskForm(Form):
    email = _email_field()


class CodeForm(Form):
    email = _email_field()
    code = StringField(
        _l("Code from the e-mail"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the 6-digit code from the e-mail.")), Length(max=20)],
    )


def _email_key() -> str:
    return "donor-sign-in:" + normalise_email(request.form.get("email", ""))[:254]


def _no_email() -> bool:
    return not normalise_email(request.form.get("email", ""))


def _ip_limit() -> str:
    return str(current_app.config["DONOR_SIGN_IN_LIMIT_PER_IP"])


def _email_limit() -> str:
    return str(current_app.config["DONOR_SIGN_IN_LIMIT_PER_EMAIL"])


def _limited_message() -> str:
    return str(
        _l(
            "Several sign-ins were asked for from this connection or for this address in a short time. "
            "Please wait a while before trying again."
        )
    )


@bp.get("/")
def ask_page() -> ResponseReturnValue:
    """The e-mail form (a signed-in donor goes to their gifts)."""
    if signin.signed_in_supporter() is not None:
        return redirect(url_for("donors.gifts"))
    return page("donors/ask.html", form=AskForm(formdata=None))


@bp.post("/")
@limiter.limit(_ip_limit, error_message=_limited_message)
@limiter.limit(_email_limit, key_func=_email_key, exempt_when=_no_email, error_message=_limited_message)
def ask() -> ResponseReturnValue:
    """Send a sign-in link and code, if the address has given; the same answer either way."""
    form = AskForm()
    if not form.validate():
        return page("donors/ask.html", 400, form=form)
    supporter = signin.known_supporter(form.email.data)
    if supporter is not None:
        _send_sign_in(supporter)
    code_form = CodeForm(formdata=None, email=form.email.data)
    return page("donors/sent.html", form=code_form, email=form.email.data, minutes=signin.LINK_VALID_MINUTES)


@bp.get("/code")
def code_page() -> ResponseReturnValue:
    """The code form, for a donor whose phone opens the link elsewhere."""
    return page("donors/sent.html", form=CodeForm(formdata=None), email=None)


@bp.post("/code")
@limiter.limit(_ip_limit, error_message=_limited_message)
@limiter.limit(_email_limit, key_func=_email_key, exempt_when=_no_email, error_message=_limited_message)
def enter_code() -> ResponseReturnValue:
    """Sign in with the code typed; a wrong one counts against its sign-in."""
    form = CodeForm()
    if not form.validate():
        return page("donors/sent.html", 400, form=form, email=None)
    try:
        supporter_id = signin.use_code(form.email.data, form.code.data)
    except Refused as refused:
        transactions.keep_changes()  # the wrong try is counted
        message = show_refusal(form, refused)
        return page("donors/sent.html", refused.status, form=form, email=None, message=message)
    signin.start_session(supporter_id)
    return redirect(url_for("donors.gifts"), 303)


@bp.get("/sign-in/<sign_in_token>")
def link_page(sign_in_token: str) -> ResponseReturnValue:
    """What the link opens: a button; uses nothing."""
    try:
        signin.open_link(sign_in_token)
    except Refused as refused:
        return page("donors/link.html", refused.status, message=refused.message(), form=AskForm(formdata=None))
    return page("donors/confirm.html", token=sign_in_token)


@bp.post("/sign-in/<sign_in_token>")
def use_link(sign_in_token: str) -> ResponseReturnValue:
    """The button: signs in, once."""
    try:
        supporter_id = signin.use_link(sign_in_token)
    except Refused as refused:
        return page("donors/link.html", refused.status, message=refused.message(), form=AskForm(formdata=None))
    signin.start_session(supporter_id)
    return redirect(url_for("donors.gifts"), 303)


def _send_sign_in(supporter: Supporter) -> None:
    """E-mail a new sign-in link and code to the supporter (when they may sign in)."""
    made = signin.request_sign_in(supporter.email)
    if made is not None:
        row, token, code = made
        queue_sign_in(supporter, row, token, code, signin.LINK_VALID_MINUTES)


def _link_key() -> str:
    return "donor-link:" + (request.view_args or {}).get("link_token", "")[:400]


@bp.get("/open/<link_token>")
def manage_link_page(link_token: str) -> ResponseReturnValue:
    """What an e-mail's link opens: the donor's page at its target for the donor already
    signed in; otherwise a button (mail scanners open links by themselves), or, for a
    link that has run out, a button that e-mails a fresh sign-in link."""
    try:
        link = links.read_token(link_token)
    except Refused as refused:
        if refused.status == 410:
            return page("donors/link_expired.html", 410, message=refused.message(), token=link_token)
        return page("donors/link.html", refused.status, message=refused.message(), form=AskForm(formdata=None))
    signed_in = signin.signed_in_supporter()
    if signed_in is not None and signed_in.id == link.supporter.id:
        return redirect(link.target, 303)
    return page("donors/open.html", token=link_token)


@bp.post("/open/<link_token>")
def use_manage_link(link_token: str) -> ResponseReturnValue:
    """The button: signs the link's donor in and opens its page."""
    try:
        link = links.read_token(link_token)
    except Refused as refused:
        if refused.status == 410:
            return page("donors/link_expired.html", 410, message=refused.message(), token=link_token)
        return page("donors/link.html", refused.status, message=refused.message(), form=AskForm(formdata=None))
    signin.start_session(link.supporter.id)
    return redirect(link.target, 303)


@bp.post("/open/<link_token>/new")
@limiter.limit(_ip_limit, error_message=_limited_message)
@limiter.limit(_email_limit, key_func=_link_key, error_message=_limited_message)
def renew_manage_link(link_token: str) -> ResponseReturnValue:
    """A link that ran out: a fresh sign-in link and code go to the address it was sent to."""
    try:
        link = links.read_token(link_token, allow_expired=True)
    except Refused as refused:
        return page("donors/link.html", refused.status, message=refused.message(), form=AskForm(formdata=None))
    _send_sign_in(link.supporter)
    return page(
        "donors/sent.html", form=CodeForm(formdata=None), email=None, renewed=True, minutes=signin.LINK_VALID_MINUTES
    )


@bp.get("/gifts")
@donor_required
def gifts() -> ResponseReturnValue:
    """The signed-in donor's gifts, newest first, with their plans, documents and contact choices."""
    supporter = current_donor()
    return page(
        "donors/gifts.html",
        supporter=supporter,
        gifts=queries.gifts_of(supporter.id),
        plans=plan_changes.plans_of(supporter.id),
        plan_state=plan_changes.status_key,
        contact=contact_context(supporter),
        locale=current_locale(),
        status_words=STATUS_WORDS,
        method_words=METHOD_WORDS,
    )


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    signin.end_session()
    return redirect(url_for("donors.ask_page"), 303)
