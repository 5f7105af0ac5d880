"""Supporters: donation and supporter management.

`create_app()` reads as the table of contents of the application.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from supporters.config import load_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, then `config` on top (tests pass it)."""
    app = Flask(
        __name__,
        instance_path=str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    if config is None:
        from dotenv import load_dotenv

        load_dotenv(Path.cwd() / ".env", override=False)
    app.config.from_mapping(load_config(app.instance_path, env=(config or {}).get("ENVIRON")))
    if config:
        app.config.from_mapping({k: v for k, v in config.items() if k != "ENVIRON"})

    register_request_class(app)
    register_request_sizes(app)
    register_url_converters(app)
    register_widget_answers(app)
    register_proxy(app)
    register_transactions(app)
    register_public_pages(app)
    register_extensions(app)
    register_payments(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_security_headers(app)
    register_commands(app)
    return app


def register_request_class(app: Flask) -> None:
    """Query strings reach the views without NUL characters (see supporters/lib/web.py)."""
    from supporters.lib.web import Request

    app.request_class = Request


def register_request_sizes(app: Flask) -> None:
    """Each route's largest body, refused with 413 before it is read (supporters/core/request_sizes.py).
    First of the request hooks: nothing may read a body before its limit is set."""
    from supporters.core import request_sizes

    request_sizes.init_app(app)


def register_url_converters(app: Flask) -> None:
    """`<int:…>` in every route is an id no larger than a row's, else 404 (see supporters/lib/web.py)."""
    from supporters.lib.web import IdConverter

    app.url_map.converters["int"] = IdConverter


def register_widget_answers(app: Flask) -> None:
    """The widget config's answers kept whole and given before Flask runs (supporters/widget/answers.py).
    Before the proxy and the host check, so that it is the innermost middleware and they run first."""
    from supporters.widget import answers

    answers.init_app(app)


def register_proxy(app: Flask) -> None:
    """Behind N trusted proxies, take the client address, scheme and host from their
    X-Forwarded-* headers (rate limits); never trust them otherwise. A host the app
    does not serve (TRUSTED_HOSTS) is then refused with a 400 (supporters/core/hosts.py)."""
    from supporters.core import hosts

    hosts.init_app(app)
    proxies = int(app.config["SUPPORTERS_PROXIES"])
    if proxies > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]


def register_transactions(app: Flask) -> None:
    """Each request commits once, at its end, or rolls back (see supporters/lib/transactions.py)."""
    from supporters.lib import transactions

    transactions.init_app(app)


def register_public_pages(app: Flask) -> None:
    """Views marked `@public` never touch the session and say what a CDN may keep
    (supporters/lib/caching.py). Registered before the other hooks, so it runs after them."""
    from supporters.lib import caching

    caching.init_app(app)


def register_extensions(app: Flask) -> None:
    from supporters.extensions import babel, csrf, db, login_manager, migrate
    from supporters.lib import i18n, limits, organisation

    db.init_app(app)
    _configure_sqlite(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), compare_type=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    i18n.init_app(app)
    organisation.init_app(app)  # the organisation's details in every template (see supporters/lib/organisation.py)
    limits.init_app(app)  # the limiter, counting before the work (see supporters/lib/limits.py)
    login_manager.init_app(app)

    from supporters.staff.sessions import load_staff

    login_manager.user_loader(load_staff)
    login_manager.login_view = "dashboard_auth.login"
    login_manager.session_protection = None  # our sessions are rows with their own timeouts


def _configure_sqlite(app: Flask) -> None:
    """Make SQLite behave like a real transactional database.

    Foreign keys are off unless each connection asks; pysqlite's own transaction
    handling breaks SAVEPOINT, so SQLAlchemy emits BEGIN itself; WAL lets the
    web process and the worker read while the other writes.
    """
    from flask import has_request_context
    from sqlalchemy import event

    from supporters.extensions import db
    from supporters.lib import transactions

    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A request that may write takes the write lock up front: a deferred
        # transaction that read first could not upgrade while another writes.
        reading = has_request_context() and not transactions.request_may_write()
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def register_payments(app: Flask) -> None:
    """Build the payment gateway once from the settings; views reach it via payments.gateway()."""
    from supporters.payments import build_gateway

    gateway = app.config.get("PAYMENTS_GATEWAY") or build_gateway(app.config)
    app.extensions["payments"] = gateway
    app.config["PAYMENTS_TEST_MODE"] = gateway.test_mode

    @app.context_processor
    def payments_context() -> dict[str, object]:
        return {"payments_test_mode": gateway.test_mode, "payments_offline": gateway.offline}


def register_blueprints(app: Flask) -> None:
    from supporters.articles.views import bp as articles_bp
    from supporters.core.views import bp as core_bp
    from supporters.dashboard.views import bp as dashboard_bp
    from supporters.donors.contact_views import bp as donor_contact_bp
    from supporters.donors.documents import bp as donor_documents_bp
    from supporters.donors.plan_views import bp as donor_plans_bp
    from supporters.donors.views import bp as donors_bp
    from supporters.giving.test_payment import bp as offline_pay_bp
    from supporters.giving.views import bp as donate_bp
    from supporters.giving.webhook import bp as webhooks_bp
    from supporters.people.views import bp as newsletter_bp
    from supporters.staff.sign_in import bp as dashboard_auth_bp
    from supporters.widget.views import bp as widget_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(dashboard_auth_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(donate_bp)
    app.register_blueprint(offline_pay_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(articles_bp)
    app.register_blueprint(widget_bp)
    app.register_blueprint(newsletter_bp)
    app.register_blueprint(donors_bp)
    app.register_blueprint(donor_contact_bp)
    app.register_blueprint(donor_plans_bp)
    app.register_blueprint(donor_documents_bp)


def register_errorhandlers(app: Flask) -> None:
    from supporters.core.errors import register

    register(app)


def register_security_headers(app: Flask) -> None:
    """CSP, HSTS and friends on every response (supporters/core/headers.py); the
    donation form may send donors on to the payment page of the gateway in use."""
    from supporters.core import headers

    headers.init_app(
        app,
        checkout_origins=lambda: app.extensions["payments"].checkout_origins,
        card_origins=lambda: app.extensions["payments"].card_update_origins,
    )


def register_commands(app: Flask) -> None:
    from supporters.articles.cli import articles_cli
    from supporters.bank.cli import bank_cli
    from supporters.cli import demo_cli, derived_cli, dev_cli, duplicates_cli, rates_cli, staff_cli, stripe_cli
    from supporters.imports.cli import import_cli
    from supporters.mail.cli import reminders_cli, worker_cli
    from supporters.privacy.cli import privacy_cli

    for command in (demo_cli, staff_cli, stripe_cli, rates_cli, derived_cli, dev_cli, worker_cli, reminders_cli):
        app.cli.add_command(command)
    app.cli.add_command(duplicates_cli)
    app.cli.add_command(articles_cli)
    app.cli.add_command(bank_cli)
    app.cli.add_command(privacy_cli)
    app.cli.add_command(import_cli)
