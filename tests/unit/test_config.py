"""Settings come from the environment with safe defaults, and unsafe ones are refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from supporters.config import ConfigError, load_config, normalise_database_url

PG = "postgresql+psycopg://app@db.internal:5432/supporters"
STRONG = "s" * 40
#: what production needs besides the database and the secret key
PRODUCTION = {
    "SUPPORTERS_ENV": "production",
    "SUPPORTERS_PUBLIC_URL": "https://support.example.org",
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
    "SUPPORTERS_ORG_NAME": "Fundacja Przykładowa",
    "SUPPORTERS_ORG_ADDRESS": "ul. Wiejska 1; 00-001 Warszawa",
    "SUPPORTERS_ORG_EMAIL": "kontakt@fundacja.example.org",
}


def test_defaults_are_safe_for_local_use(tmp_path: Path) -> None:
    config = load_config(tmp_path, env={})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'supporters.db'}"
    assert config["SUPPORTERS_BASE_CURRENCY"] == "PLN"
    assert config["SUPPORTERS_CURRENCIES"] == ["PLN", "EUR", "USD"]
    assert config["SESSION_COOKIE_HTTPONLY"] and config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["SESSION_COOKIE_SECURE"] is False
    assert config["STRIPE_SECRET_KEY"] == ""


def test_local_secret_key_is_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    first = load_config(tmp_path, env={})["SECRET_KEY"]
    key_file = tmp_path / "secret_key"
    assert len(first) >= 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_config(tmp_path, env={})["SECRET_KEY"] == first


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_config(tmp_path, env={**PRODUCTION, "DATABASE_URL": PG})
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_a_short_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        load_config(tmp_path, env={**PRODUCTION, "DATABASE_URL": PG, "SECRET_KEY": "short"})


@pytest.mark.parametrize("url", ["", "sqlite:////srv/supporters.db"])
def test_production_refuses_sqlite(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="PostgreSQL"):
        load_config(tmp_path, env={"SUPPORTERS_ENV": "production", "SECRET_KEY": STRONG, "DATABASE_URL": url})


def test_production_with_postgres_and_a_secret_starts_with_secure_cookies(tmp_path: Path) -> None:
    config = load_config(tmp_path, env={**PRODUCTION, "SECRET_KEY": STRONG, "DATABASE_URL": PG})
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SQLALCHEMY_DATABASE_URI"] == PG


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgres_urls_use_the_installed_driver(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_live_stripe_keys_are_refused_unless_allowed(tmp_path: Path) -> None:
    live = {"STRIPE_SECRET_KEY": "sk_live_" + "a" * 24, "STRIPE_WEBHOOK_SECRET": "whsec_x"}
    with pytest.raises(ConfigError, match="SUPPORTERS_ALLOW_LIVE_PAYMENTS"):
        load_config(tmp_path, env=live)
    allowed = load_config(tmp_path, env={**live, "SUPPORTERS_ALLOW_LIVE_PAYMENTS": "1"})
    assert allowed["STRIPE_SECRET_KEY"].startswith("sk_live_")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SUPPORTERS_CURRENCIES": "PLN,EURO"}, "EURO"),
        ({"SUPPORTERS_CURRENCIES": " , "}, "at least one"),
        ({"SUPPORTERS_BASE_CURRENCY": "XYZ1"}, "XYZ1"),
        ({"SUPPORTERS_ENV": "staging"}, "development or production"),
        ({"MAIL_PORT": "smtp"}, "MAIL_PORT"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, env=env)


def test_a_stripe_key_without_a_webhook_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET"):
        load_config(tmp_path, env={"STRIPE_SECRET_KEY": "sk_test_" + "a" * 24})


def test_currencies_are_normalised_and_deduplicated(tmp_path: Path) -> None:
    config = load_config(tmp_path, env={"SUPPORTERS_CURRENCIES": "eur, pln,EUR", "SUPPORTERS_BASE_CURRENCY": "eur"})
    assert config["SUPPORTERS_CURRENCIES"] == ["EUR", "PLN"]
    assert config["SUPPORTERS_BASE_CURRENCY"] == "EUR"


def test_env_example_documents_every_setting() -> None:
    """Every variable the app reads appears in .env.example."""
    import re

    source = (Path(__file__).parents[2] / "supporters" / "config.py").read_text()
    read = set(re.findall(r'env\.get\("([A-Z_]+)"', source)) | set(re.findall(r'\(env, "([A-Z_]+)"', source))
    example = (Path(__file__).parents[2] / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    assert read - documented == set()


def test_production_needs_the_public_address_readers_use(tmp_path: Path) -> None:
    env = {**PRODUCTION, "SECRET_KEY": STRONG, "DATABASE_URL": PG}
    del env["SUPPORTERS_PUBLIC_URL"]
    with pytest.raises(ConfigError, match="SUPPORTERS_PUBLIC_URL is not set"):
        load_config(tmp_path, env=env)
    with pytest.raises(ConfigError, match="https"):
        load_config(tmp_path, env={**env, "SUPPORTERS_PUBLIC_URL": "http://support.example.org"})


@pytest.mark.parametrize(
    "url", ["support.example.org", "https://support.example.org/donate", "ftp://x.org", "https://", "https://a.org?x=1"]
)
def test_the_public_address_must_be_an_origin(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="must be an origin"):
        load_config(tmp_path, env={"SUPPORTERS_PUBLIC_URL": url})


def test_only_the_public_host_and_listed_ones_are_trusted(tmp_path: Path) -> None:
    env = {**PRODUCTION, "SECRET_KEY": STRONG, "DATABASE_URL": PG, "SUPPORTERS_TRUSTED_HOSTS": "www.example.org"}
    config = load_config(tmp_path, env=env)
    assert config["SUPPORTERS_PUBLIC_URL"] == "https://support.example.org"
    assert config["TRUSTED_HOSTS"] == ["support.example.org", "www.example.org"]
    local = load_config(tmp_path, env={})
    assert local["SUPPORTERS_PUBLIC_URL"] == "http://127.0.0.1:5000"
    assert local["TRUSTED_HOSTS"] == ["127.0.0.1", "localhost"]


def test_production_refuses_per_process_rate_limits_unless_one_process_is_declared(tmp_path: Path) -> None:
    env = {**PRODUCTION, "SECRET_KEY": STRONG, "DATABASE_URL": PG, "RATELIMIT_STORAGE_URI": "memory://"}
    with pytest.raises(ConfigError, match="Redis"):
        load_config(tmp_path, env=env)
    single = load_config(tmp_path, env={**env, "SUPPORTERS_SINGLE_PROCESS": "1"})
    assert single["RATELIMIT_STORAGE_URI"] == "memory://"
    assert load_config(tmp_path, env={})["RATELIMIT_STORAGE_URI"] == "memory://"


def test_hsts_is_on_in_production_only(tmp_path: Path) -> None:
    production = load_config(tmp_path, env={**PRODUCTION, "SECRET_KEY": STRONG, "DATABASE_URL": PG})
    assert production["SUPPORTERS_HSTS_SECONDS"] == 31_536_000
    assert load_config(tmp_path, env={})["SUPPORTERS_HSTS_SECONDS"] == 0


@pytest.mark.parametrize("origins", ["blog.example.org", "https://blog.example.org/page"])
def test_frame_origins_must_be_origins(tmp_path: Path, origins: str) -> None:
    with pytest.raises(ConfigError, match="WIDGET_ALLOWED_ORIGINS"):
        load_config(tmp_path, env={"WIDGET_ALLOWED_ORIGINS": origins})


def test_no_site_may_frame_the_widget_unless_listed(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={})["WIDGET_ALLOWED_ORIGINS"] == []
    listed = load_config(tmp_path, env={"WIDGET_ALLOWED_ORIGINS": "https://blog.example.org/ https://news.example"})
    assert listed["WIDGET_ALLOWED_ORIGINS"] == ["https://blog.example.org", "https://news.example"]


# --- The organisation's details ---------------------------------------------------------


@pytest.mark.parametrize("missing", ["SUPPORTERS_ORG_NAME", "SUPPORTERS_ORG_ADDRESS", "SUPPORTERS_ORG_EMAIL"])
def test_production_needs_the_organisation_s_name_address_and_contact(tmp_path: Path, missing: str) -> None:
    env = {**PRODUCTION, "SECRET_KEY": STRONG, "DATABASE_URL": PG}
    del env[missing]
    with pytest.raises(ConfigError, match=f"{missing} must be set in production"):
        load_config(tmp_path, env=env)


def test_the_organisation_s_numbers_are_checked_and_kept_compact(tmp_path: Path) -> None:
    config = load_config(
        tmp_path,
        env={
            "SUPPORTERS_ORG_NIP": "526-025-02-74",
            "SUPPORTERS_ORG_REGON": "012345675",
            "SUPPORTERS_ORG_KRS": "0000123456",
            "SUPPORTERS_ORG_IBAN": "pl61 1090 1014 0000 0712 1981 2874",
            "SUPPORTERS_ORG_ADDRESS": "ul. Wiejska 1; 00-001 Warszawa",
        },
    )
    assert config["SUPPORTERS_ORG_NIP"] == "5260250274" and config["SUPPORTERS_ORG_REGON"] == "012345675"
    assert config["SUPPORTERS_ORG_IBAN"] == "PL61109010140000071219812874"
    assert config["SUPPORTERS_ORG_BIC"] == "WBKPPLPPXXX"  # from the bank's number in the IBAN
    assert config["SUPPORTERS_ORG_ADDRESS"] == ["ul. Wiejska 1", "00-001 Warszawa"]
    assert config["SUPPORTERS_PRIVACY_CONTACT"] == config["SUPPORTERS_ORG_EMAIL"]


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("SUPPORTERS_ORG_NIP", "5260250275", "SUPPORTERS_ORG_NIP"),
        ("SUPPORTERS_ORG_REGON", "012345678", "SUPPORTERS_ORG_REGON"),
        ("SUPPORTERS_ORG_KRS", "12345", "10 digits"),
        ("SUPPORTERS_ORG_IBAN", "PL61 1090 1014 0000 0712 1981 2875", "SUPPORTERS_ORG_IBAN"),
        ("SUPPORTERS_ORG_BIC", "NOT A BIC", "SUPPORTERS_ORG_BIC"),
        ("SUPPORTERS_ORG_EMAIL", "kontakt at fundacja", "e-mail address"),
    ],
)
def test_a_wrong_organisation_number_stops_the_start_and_says_which(
    tmp_path: Path, setting: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        load_config(tmp_path, env={setting: value})


def test_locally_a_demo_organisation_stands_in_and_production_never_gets_it(tmp_path: Path) -> None:
    local = load_config(tmp_path, env={})
    assert local["SUPPORTERS_ORG_NAME"] == "Supporters demo foundation" and local["SUPPORTERS_ORG_IBAN"]
    production = load_config(tmp_path, env={**PRODUCTION, "SECRET_KEY": STRONG, "DATABASE_URL": PG})
    assert production["SUPPORTERS_ORG_IBAN"] == ""  # no bank transfers until an account is set
    assert production["SUPPORTERS_ORG_ADDRESS"] == ["ul. Wiejska 1", "00-001 Warszawa"]


@pytest.mark.parametrize("seconds", ["0", "61", "soon"])
def test_the_widget_flush_interval_is_a_few_seconds(tmp_path: Path, seconds: str) -> None:
    with pytest.raises(ConfigError, match="WIDGET_COUNTS_FLUSH_SECONDS"):
        load_config(tmp_path, env={"WIDGET_COUNTS_FLUSH_SECONDS": seconds})
    assert load_config(tmp_path, env={})["WIDGET_COUNTS_FLUSH_SECONDS"] == 2


def test_postgresql_plans_each_statement_for_its_own_values(tmp_path: Path) -> None:
    """psycopg prepares a statement run five times, and PostgreSQL may then keep one generic
    plan for every value: the supporters list's LIMIT, OFFSET and search ranges planned for
    no value in particular walked a million supporters (1 s instead of 0.2). Each
    connection asks for plans made for the values at hand; SQLite has nothing of the sort."""
    options = load_config(tmp_path, env={"DATABASE_URL": PG})["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"] == {"options": "-c plan_cache_mode=force_custom_plan"}
    assert options["pool_pre_ping"] is True
    assert "connect_args" not in load_config(tmp_path, env={})["SQLALCHEMY_ENGINE_OPTIONS"]
