"""Settings from the environment, with safe defaults for local use.

Every setting is documented in `.env.example`. `load_config()` is the only
place that reads `os.environ` for the app's own settings.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from supporters.lib.money import MoneyError, minor_unit_exponent, parse_amount

#: where `make run` serves the app when SUPPORTERS_PUBLIC_URL is not set (`flask dev serve` uses its port)
DEVELOPMENT_PUBLIC_URL = "http://127.0.0.1:5000"


class ConfigError(RuntimeError):
    """The environment asks for something the app must refuse to run with."""


_TRUE = {"1", "true", "yes", "on"}


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in _TRUE


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}.") from None


def _retention_years(env: Mapping[str, str]) -> int:
    years = _int(env, "SUPPORTERS_RETENTION_YEARS", 5)
    if not 1 <= years <= 50:
        raise ConfigError(f"SUPPORTERS_RETENTION_YEARS must be between 1 and 50, not {years}.")
    return years


def _widget_flush_seconds(env: Mapping[str, str]) -> int:
    """How often each process writes the beacons it took: what a crashed process loses
    at most, and how far the dashboard's widget figures lag (supporters/widget/counts.py)."""
    seconds = _int(env, "WIDGET_COUNTS_FLUSH_SECONDS", 2)
    if not 1 <= seconds <= 60:
        raise ConfigError(f"WIDGET_COUNTS_FLUSH_SECONDS must be between 1 and 60, not {seconds}.")
    return seconds


def _founded_on(env: Mapping[str, str]) -> date:
    """The organisation's founding date: no gift can have been received before it."""
    value = env.get("SUPPORTERS_FOUNDED_ON", "").strip() or "2000-01-01"
    try:
        founded = date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"SUPPORTERS_FOUNDED_ON must be a date like 2004-05-17, not {value!r}.") from None
    if founded > date.today():
        raise ConfigError(f"SUPPORTERS_FOUNDED_ON is in the future ({value}).")
    return founded


def _offline_limits(env: Mapping[str, str]) -> tuple[int, int]:
    """The offline amount above which staff confirm, and the largest one recorded at all."""
    confirm_above = _int(env, "SUPPORTERS_OFFLINE_CONFIRM_ABOVE", 50_000)
    largest = _int(env, "SUPPORTERS_OFFLINE_MAX_GIFT", 10_000_000)
    if confirm_above <= 0 or largest <= 0:
        raise ConfigError("SUPPORTERS_OFFLINE_CONFIRM_ABOVE and SUPPORTERS_OFFLINE_MAX_GIFT must be more than zero.")
    if largest > 10**12:
        raise ConfigError("SUPPORTERS_OFFLINE_MAX_GIFT must be at most 1000000000000.")
    return confirm_above, largest


def _pledge_days(env: Mapping[str, str]) -> int:
    days = _int(env, "SUPPORTERS_PLEDGE_DAYS", 30)
    if not 1 <= days <= 3650:
        raise ConfigError("SUPPORTERS_PLEDGE_DAYS must be a number of days from 1 to 3650.")
    return days


#: what a bank's CSV layout in SUPPORTERS_BANK_CSV_LAYOUTS may say (bank/formats.py CsvLayout)
CSV_LAYOUT_KEYS = frozenset(
    {
        "label",
        "delimiter",
        "booked_on",
        "amount",
        "title",
        "counterparty_name",
        "counterparty_account",
        "currency_column",
        "bank_reference",
        "currency",
    }
)


def _csv_layouts(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """More banks' CSV layouts, as JSON: {"pko": {"delimiter": ";", "booked_on": "Data
    operacji", "amount": "Kwota", "title": "Opis transakcji", ...}, ...}."""
    raw = env.get("SUPPORTERS_BANK_CSV_LAYOUTS", "").strip()
    if not raw:
        return {}
    try:
        found = json.loads(raw)
    except ValueError:
        raise ConfigError("SUPPORTERS_BANK_CSV_LAYOUTS must be a JSON object of layouts.") from None
    if not isinstance(found, dict):
        raise ConfigError("SUPPORTERS_BANK_CSV_LAYOUTS must be a JSON object of layouts.")
    layouts: dict[str, dict[str, str]] = {}
    for key, spec in found.items():
        where = f"SUPPORTERS_BANK_CSV_LAYOUTS[{key!r}]"
        if not isinstance(spec, dict) or not all(isinstance(value, str) for value in spec.values()):
            raise ConfigError(f"{where} must be an object of texts.")
        unknown = set(spec) - CSV_LAYOUT_KEYS
        if unknown:
            raise ConfigError(f"{where} has unknown keys: {', '.join(sorted(unknown))}.")
        missing = [name for name in ("booked_on", "amount", "title") if not spec.get(name)]
        if missing:
            raise ConfigError(f"{where} needs the column names of {', '.join(missing)}.")
        if len(spec.get("delimiter", ",")) != 1:
            raise ConfigError(f"{where}: the delimiter must be one character.")
        layouts[str(key)[:40]] = {"label": str(key), "delimiter": ",", **spec}
    return layouts


def _currency_list(value: str, name: str) -> list[str]:
    codes = [code.strip().upper() for code in value.split(",") if code.strip()]
    if not codes:
        raise ConfigError(f"{name} must name at least one currency, e.g. PLN,EUR,USD.")
    for code in codes:
        try:
            minor_unit_exponent(code)
        except MoneyError:
            raise ConfigError(f"{name} contains {code!r}, which is not an ISO 4217 currency code.") from None
    return list(dict.fromkeys(codes))


def _amounts_by_currency(value: str, name: str) -> dict[str, int]:
    """Parse "PLN=1.00,EUR=0.25" into minor units per currency."""
    amounts: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        code, _, amount = item.partition("=")
        code = code.strip().upper()
        try:
            amounts[code] = parse_amount(amount, code)
        except MoneyError as exc:
            raise ConfigError(f"{name}: {item!r} is not CURRENCY=AMOUNT ({exc}).") from None
    return amounts


def _payment_methods(env: Mapping[str, str]) -> tuple[list[str], bool]:
    """The Checkout payment methods turned on (the card always among them), and whether the
    BLIK recurring preview is on (it needs BLIK, and Stripe's preview access)."""
    from supporters.payments.methods import KNOWN

    value = env.get("SUPPORTERS_PAYMENT_METHODS", "").strip() or ",".join(KNOWN)
    methods = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in methods if name not in KNOWN]
    if unknown:
        raise ConfigError(
            f"SUPPORTERS_PAYMENT_METHODS: {', '.join(map(repr, unknown))} is not one of {', '.join(KNOWN)}."
        )
    if "card" not in methods:
        raise ConfigError(
            "SUPPORTERS_PAYMENT_METHODS must include card: it is the one method every currency and "
            "every monthly or yearly gift can be paid with (Apple Pay and Google Pay come with it)."
        )
    blik_recurring = _flag(env, "SUPPORTERS_BLIK_RECURRING")
    if blik_recurring and "blik" not in methods:
        raise ConfigError("SUPPORTERS_BLIK_RECURRING=1 needs blik in SUPPORTERS_PAYMENT_METHODS.")
    return list(dict.fromkeys(methods)), blik_recurring


def _public_url(env: Mapping[str, str], production: bool) -> str:
    """The origin readers reach the app at, e.g. https://support.example.org.

    Every absolute URL the app hands out (widget data, checkout return pages,
    canonical links, e-mails) is built from it, never from the request's Host.
    """
    value = env.get("SUPPORTERS_PUBLIC_URL", "").strip().rstrip("/")
    if not value:
        if production:
            raise ConfigError(
                "SUPPORTERS_PUBLIC_URL is not set. In production it must be the address readers use, "
                "e.g. https://support.example.org: links in the widget, e-mails and checkout are built from it."
            )
        return DEVELOPMENT_PUBLIC_URL
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path or parts.query or parts.fragment:
        raise ConfigError(
            f"SUPPORTERS_PUBLIC_URL must be an origin such as https://support.example.org, not {value!r}."
        )
    if production and parts.scheme != "https":
        raise ConfigError("SUPPORTERS_PUBLIC_URL must use https in production.")
    return value


def _trusted_hosts(env: Mapping[str, str], public_url: str, production: bool) -> list[str]:
    """Host names the app answers to: the public one, any listed, and loopback locally."""
    hosts = [urlsplit(public_url).hostname or ""]
    hosts += [host.strip().lower() for host in env.get("SUPPORTERS_TRUSTED_HOSTS", "").replace(",", " ").split()]
    if not production:
        hosts += ["localhost", "127.0.0.1"]
    return list(dict.fromkeys(host for host in hosts if host))


def _frame_origins(env: Mapping[str, str]) -> list[str]:
    """Origins allowed to frame /widget/frame/*: none but our own unless listed."""
    origins = [origin.strip().rstrip("/") for origin in env.get("WIDGET_ALLOWED_ORIGINS", "").split() if origin.strip()]
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in {"http", "https"} or not parts.hostname or parts.path):
            raise ConfigError(
                f"WIDGET_ALLOWED_ORIGINS: {origin!r} is not an origin such as https://blog.example.org (or *)."
            )
    return origins


_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")


def _image_hosts(env: Mapping[str, str]) -> list[str]:
    """Host names (no scheme, no path) article images may come from besides our own.

    Each goes into the Content-Security-Policy as it is: anything but a plain host
    name (a ';' would start a directive of its own) is refused here.
    """
    hosts = [host.strip().lower() for host in env.get("SUPPORTERS_IMAGE_HOSTS", "").replace(",", " ").split()]
    for host in hosts:
        if not _HOST_NAME.fullmatch(host):
            raise ConfigError(f"SUPPORTERS_IMAGE_HOSTS: {host!r} is not a host name such as images.example.org.")
    return list(dict.fromkeys(hosts))


def _limit_storage(env: Mapping[str, str], production: bool) -> str:
    """Where rate-limit counters live. In production, memory:// only for one explicit process."""
    uri = env.get("RATELIMIT_STORAGE_URI", "").strip() or "memory://"
    if production and uri.startswith("memory://") and not _flag(env, "SUPPORTERS_SINGLE_PROCESS"):
        raise ConfigError(
            "RATELIMIT_STORAGE_URI is memory://: each process would keep its own counters, so every limit "
            "would be as many times looser as there are processes. Point it at Redis "
            "(redis://127.0.0.1:6379/0), or set SUPPORTERS_SINGLE_PROCESS=1 if one process serves the app."
        )
    return uri


#: the staff roles (models/staff.py StaffRole), for the settings that name them
STAFF_ROLES = ("admin", "fundraiser", "viewer")


def _two_factor_required_for(env: Mapping[str, str], production: bool) -> list[str]:
    """The staff roles that must sign in with a second factor (TOTP): admins in
    production unless the setting says otherwise ("" for none), nobody in development."""
    raw = env.get("SUPPORTERS_STAFF_2FA_REQUIRED_FOR")
    if raw is None:
        raw = "admin" if production else ""
    roles = [role.strip().lower() for role in raw.replace(",", " ").split() if role.strip()]
    unknown = [role for role in roles if role not in STAFF_ROLES]
    if unknown:
        raise ConfigError(
            f"SUPPORTERS_STAFF_2FA_REQUIRED_FOR: {', '.join(map(repr, unknown))} "
            f"is not one of {', '.join(STAFF_ROLES)}."
        )
    return list(dict.fromkeys(roles))


def normalise_database_url(url: str) -> str:
    """Point plain PostgreSQL URLs at the psycopg 3 driver that the app installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _engine_options(database_url: str) -> dict[str, Any]:
    """The engine's options. On PostgreSQL every statement is planned for its own values
    (plan_cache_mode): psycopg prepares a statement run five times, and the server may then
    keep one generic plan made for no value in particular, which for the dashboard's pages
    (LIMIT, OFFSET, a search's key ranges) can walk a million supporters instead of fifty."""
    options: dict[str, Any] = {"pool_pre_ping": True}
    if database_url.startswith("postgresql"):
        options["connect_args"] = {"options": "-c plan_cache_mode=force_custom_plan"}
    return options


def _secret_key(env: Mapping[str, str], instance_path: Path, production: bool) -> str:
    key = env.get("SECRET_KEY", "").strip()
    if key:
        if production and len(key) < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters in production.")
        return key
    if production:
        raise ConfigError(
            "SECRET_KEY is not set. In production it must come from the environment "
            "(generate one with: python -c 'import secrets; print(secrets.token_hex(32))')."
        )
    # Local use: generate one key and keep it, so sessions survive restarts.
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


#: what the demo shows for the organisation when nothing is set (never in production)
DEMO_ORGANISATION = {
    "SUPPORTERS_ORG_NAME": "Supporters demo foundation",
    "SUPPORTERS_ORG_ADDRESS": "ul. Przykładowa 1; 00-001 Warszawa",
    "SUPPORTERS_ORG_EMAIL": "kontakt@example.org",
    # the example account of ISO 13616 (a valid Polish IBAN that belongs to no one here)
    "SUPPORTERS_ORG_IBAN": "PL61 1090 1014 0000 0712 1981 2874",
}


def _organisation(env: Mapping[str, str], production: bool) -> dict[str, Any]:
    """The organisation's own details: on the form, every receipt, the privacy page and
    the bank-transfer instructions. Production needs the name, address and contact
    e-mail set; each identifier is checked (NIP, REGON, KRS, IBAN, BIC) and kept compact."""
    from schwifty import BIC, IBAN
    from schwifty.exceptions import SchwiftyException
    from stdnum.pl import nip, regon

    def value(name: str) -> str:
        given = env.get(name, "").strip()
        if not given and not production:
            given = DEMO_ORGANISATION.get(name, "")
        return given

    missing = [
        name for name in ("SUPPORTERS_ORG_NAME", "SUPPORTERS_ORG_ADDRESS", "SUPPORTERS_ORG_EMAIL") if not value(name)
    ]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} must be set in production: the donation form, every receipt and the "
            "privacy page name the organisation, its address and how to reach it."
        )
    email = value("SUPPORTERS_ORG_EMAIL")
    if email and ("@" not in email or any(c.isspace() for c in email)):
        raise ConfigError(f"SUPPORTERS_ORG_EMAIL must be an e-mail address, not {email!r}.")
    numbers: dict[str, str] = {}
    for name, module in (("SUPPORTERS_ORG_NIP", nip), ("SUPPORTERS_ORG_REGON", regon)):
        given = value(name)
        if given and not module.is_valid(given):
            raise ConfigError(f"{name} {given!r} is not a valid number (its check digit does not match).")
        numbers[name] = module.compact(given) if given else ""
    krs = value("SUPPORTERS_ORG_KRS").replace(" ", "")
    if krs and not (krs.isascii() and krs.isdigit() and len(krs) == 10):
        raise ConfigError(f"SUPPORTERS_ORG_KRS must be the 10 digits of the KRS number, not {krs!r}.")
    iban_text, bic_text = value("SUPPORTERS_ORG_IBAN"), value("SUPPORTERS_ORG_BIC")
    iban = bic = ""
    try:
        if iban_text:
            account = IBAN(iban_text)
            iban = account.compact
            bic = str(BIC(bic_text)) if bic_text else str(account.bic or "")
        elif bic_text:
            raise ConfigError("SUPPORTERS_ORG_BIC is set but SUPPORTERS_ORG_IBAN is not.")
    except SchwiftyException as exc:
        raise ConfigError(f"SUPPORTERS_ORG_IBAN / SUPPORTERS_ORG_BIC: {exc}.") from None
    address = [line.strip() for line in value("SUPPORTERS_ORG_ADDRESS").replace("\n", ";").split(";") if line.strip()]
    return {
        "SUPPORTERS_ORG_NAME": value("SUPPORTERS_ORG_NAME"),
        #: the postal address, one line an item ("; " between lines in the setting)
        "SUPPORTERS_ORG_ADDRESS": address,
        "SUPPORTERS_ORG_EMAIL": email,
        "SUPPORTERS_ORG_PHONE": value("SUPPORTERS_ORG_PHONE"),
        "SUPPORTERS_ORG_KRS": krs,
        "SUPPORTERS_ORG_NIP": numbers["SUPPORTERS_ORG_NIP"],
        "SUPPORTERS_ORG_REGON": numbers["SUPPORTERS_ORG_REGON"],
        #: the account donors transfer to, compact ("PL61109010140000071219812874"); empty: no bank transfers
        "SUPPORTERS_ORG_IBAN": iban,
        "SUPPORTERS_ORG_BIC": bic,
        #: who answers questions about personal data (the privacy page); the contact e-mail by default
        "SUPPORTERS_PRIVACY_CONTACT": value("SUPPORTERS_PRIVACY_CONTACT") or email,
    }


def load_config(instance_path: str | Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read the app's settings from `env` (default: the process environment).

    Raises ConfigError, with the reason, when the settings are unsafe for the
    environment named by SUPPORTERS_ENV (development or production).
    """
    env = os.environ if env is None else env
    instance_path = Path(instance_path)
    environment = env.get("SUPPORTERS_ENV", "development").strip().lower() or "development"
    if environment not in {"development", "production"}:
        raise ConfigError(f"SUPPORTERS_ENV must be development or production, not {environment!r}.")
    production = environment == "production"

    database_url = normalise_database_url(
        env.get("DATABASE_URL", "").strip() or f"sqlite:///{instance_path / 'supporters.db'}"
    )
    if production and database_url.startswith("sqlite"):
        raise ConfigError(
            "DATABASE_URL points at SQLite. Production needs PostgreSQL, "
            "e.g. postgresql+psycopg://user@host:5432/supporters."
        )

    base_currency = env.get("SUPPORTERS_BASE_CURRENCY", "PLN").strip().upper() or "PLN"
    _currency_list(base_currency, "SUPPORTERS_BASE_CURRENCY")
    currencies = _currency_list(env.get("SUPPORTERS_CURRENCIES", "PLN,EUR,USD"), "SUPPORTERS_CURRENCIES")
    locales = [code.strip() for code in env.get("SUPPORTERS_LOCALES", "en,pl").split(",") if code.strip()]

    stripe_secret = env.get("STRIPE_SECRET_KEY", "").strip()
    webhook_secret = env.get("STRIPE_WEBHOOK_SECRET", "").strip()
    if stripe_secret and not webhook_secret:
        raise ConfigError(
            "STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRET is not: without it no payment "
            "can be confirmed. Use the secret of your webhook endpoint, or the one `stripe listen` prints."
        )
    allow_live = _flag(env, "SUPPORTERS_ALLOW_LIVE_PAYMENTS")
    if stripe_secret.startswith(("sk_live_", "rk_live_")) and not allow_live:
        raise ConfigError(
            "STRIPE_SECRET_KEY is a live key. Live payments are refused unless SUPPORTERS_ALLOW_LIVE_PAYMENTS=1 is set."
        )

    payment_methods, blik_recurring = _payment_methods(env)
    secret_key = _secret_key(env, instance_path, production)
    offline_confirm_above, offline_max = _offline_limits(env)
    public_url = _public_url(env, production)

    return {
        "SUPPORTERS_ENV": environment,
        "SUPPORTERS_PUBLIC_URL": public_url,
        "TRUSTED_HOSTS": _trusted_hosts(env, public_url, production),
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
        "SUPPORTERS_BASE_CURRENCY": base_currency,
        "SUPPORTERS_CURRENCIES": currencies,
        **_organisation(env, production),
        "SUPPORTERS_CREDIT_NOTICE": env.get("SUPPORTERS_CREDIT_NOTICE", "").strip(),
        "WIDGET_ALLOWED_ORIGINS": _frame_origins(env),
        #: widget beacons (impressions, clicks) one address may send: what one reader can add to the counters
        "WIDGET_EVENT_LIMIT": env.get("WIDGET_EVENT_LIMIT", "60 per minute;1000 per day").strip(),
        "WIDGET_COUNTS_FLUSH_SECONDS": _widget_flush_seconds(env),
        "BABEL_DEFAULT_LOCALE": locales[0] if locales else "en",
        "SUPPORTERS_LOCALES": locales or ["en"],
        "STRIPE_SECRET_KEY": stripe_secret,
        "STRIPE_PUBLISHABLE_KEY": env.get("STRIPE_PUBLISHABLE_KEY", "").strip(),
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "SUPPORTERS_ALLOW_LIVE_PAYMENTS": allow_live,
        #: the Checkout payment methods turned on (card, blik, p24, sepa_debit); each gift is
        #: offered those its currency and kind allow (payments/methods.py)
        "SUPPORTERS_PAYMENT_METHODS": payment_methods,
        #: BLIK for monthly and yearly PLN gifts: Stripe's preview, off unless asked for
        "SUPPORTERS_BLIK_RECURRING": blik_recurring,
        "LOCALSTRIPE_URL": env.get("LOCALSTRIPE_URL", "http://127.0.0.1:8420").strip(),
        "MAIL_BACKEND": env.get("MAIL_BACKEND", "file" if not production else "smtp").strip(),
        "MAIL_SERVER": env.get("MAIL_SERVER", "localhost").strip(),
        "MAIL_PORT": _int(env, "MAIL_PORT", 587),
        "MAIL_USE_TLS": _flag(env, "MAIL_USE_TLS", default=True),
        "MAIL_USERNAME": env.get("MAIL_USERNAME", "").strip(),
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD", ""),
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER", "Supporters <noreply@localhost>").strip(),
        "MAIL_REPLY_TO": env.get("MAIL_REPLY_TO", "").strip(),
        "BABEL_DEFAULT_TIMEZONE": env.get("SUPPORTERS_TIMEZONE", "Europe/Warsaw").strip() or "UTC",
        "SUPPORTERS_MAX_GIFT": _int(env, "SUPPORTERS_MAX_GIFT", 10_000),
        #: the organisation's founding date: offline gifts received before it are refused
        "SUPPORTERS_FOUNDED_ON": _founded_on(env),
        #: offline gifts above this many units of their currency ask staff to confirm the amount
        "SUPPORTERS_OFFLINE_CONFIRM_ABOVE": offline_confirm_above,
        #: the largest offline gift staff may record, in units of its currency
        "SUPPORTERS_OFFLINE_MAX_GIFT": offline_max,
        #: a bank-transfer pledge unmatched for this many days is closed as not received
        "SUPPORTERS_PLEDGE_DAYS": _pledge_days(env),
        #: how many years after the end of the year of a supporter's last gift an erasure keeps
        #: the ledger (the Polish Accounting Act: 5); `flask privacy purge` removes the rest then
        "SUPPORTERS_RETENTION_YEARS": _retention_years(env),
        #: banks' CSV layouts besides the shipped presets (bank/formats.py)
        "SUPPORTERS_BANK_CSV_LAYOUTS": _csv_layouts(env),
        #: the National Bank of Poland's web API, for `flask rates fetch`
        "SUPPORTERS_NBP_API_URL": env.get("SUPPORTERS_NBP_API_URL", "https://api.nbp.pl/api").strip().rstrip("/"),
        "SUPPORTERS_FEE_PERCENT": env.get("SUPPORTERS_FEE_PERCENT", "1.5").strip(),
        "SUPPORTERS_FEE_FIXED": _amounts_by_currency(
            env.get("SUPPORTERS_FEE_FIXED", "PLN=1.00,EUR=0.25,USD=0.30,GBP=0.20"), "SUPPORTERS_FEE_FIXED"
        ),
        "DONATE_LIMIT_PER_IP": env.get("DONATE_LIMIT_PER_IP", "10 per hour").strip(),
        "DONATE_LIMIT_PER_EMAIL": env.get("DONATE_LIMIT_PER_EMAIL", "5 per hour").strip(),
        #: a donor's sign-in e-mails (and codes typed) per connection and per address (Flask-Limiter syntax)
        "DONOR_SIGN_IN_LIMIT_PER_IP": env.get("DONOR_SIGN_IN_LIMIT_PER_IP", "20 per hour").strip(),
        "DONOR_SIGN_IN_LIMIT_PER_EMAIL": env.get("DONOR_SIGN_IN_LIMIT_PER_EMAIL", "5 per hour").strip(),
        "MAIL_FILE_DIR": env.get("MAIL_FILE_DIR", "").strip() or str(instance_path / "mail"),
        #: the donor e-mails about renewals (mail/reminders.py): a yearly gift's reminder this many
        #: days before it renews; how long Stripe retries a failed renewal (its default Smart
        #: Retries window, 2 weeks) and how many days before that window ends the last notice goes
        "RENEWAL_REMINDER_DAYS": _int(env, "RENEWAL_REMINDER_DAYS", 7),
        "RENEWAL_RETRY_WINDOW_DAYS": _int(env, "RENEWAL_RETRY_WINDOW_DAYS", 14),
        "RENEWAL_LAST_NOTICE_DAYS": _int(env, "RENEWAL_LAST_NOTICE_DAYS", 3),
        "RATELIMIT_STORAGE_URI": _limit_storage(env, production),
        #: Strict-Transport-Security max-age in production (0 turns the header off)
        "SUPPORTERS_HSTS_SECONDS": _int(env, "SUPPORTERS_HSTS_SECONDS", 31_536_000 if production else 0),
        #: hosts besides our own that article Markdown may show images from
        "SUPPORTERS_IMAGE_HOSTS": _image_hosts(env),
        "SUPPORTERS_PROXIES": _int(env, "SUPPORTERS_PROXIES", 0),
        "STAFF_IDLE_MINUTES": _int(env, "STAFF_IDLE_MINUTES", 30),
        "STAFF_ABSOLUTE_HOURS": _int(env, "STAFF_ABSOLUTE_HOURS", 12),
        "LOGIN_LIMIT": env.get("LOGIN_LIMIT", "10 per 15 minutes").strip(),
        #: "Forgot password?" e-mails per connection and per address (Flask-Limiter syntax)
        "STAFF_RESET_LIMIT_PER_IP": env.get("STAFF_RESET_LIMIT_PER_IP", "10 per hour").strip(),
        "STAFF_RESET_LIMIT_PER_EMAIL": env.get("STAFF_RESET_LIMIT_PER_EMAIL", "3 per hour").strip(),
        #: roles that must use two-factor sign-in (enrolment is asked at their next sign-in)
        "SUPPORTERS_STAFF_2FA_REQUIRED_FOR": _two_factor_required_for(env, production),
        "RATELIMIT_HEADERS_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
    }
