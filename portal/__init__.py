"""The partner channel portal: create_app and the steps that assemble it."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from babel import Locale
from flask import (
    Flask,
    flash,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from flask_babel import format_datetime
from flask_login import current_user, login_url
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.i18n import lazy_gettext as _l

from . import bank_time, cells, config, formatting, headers, i18n, labels, menu, static_versions
from .extensions import babel, csrf, db, limiter, login_manager, migrate
from .json_limits import LimitedJSONProvider
from .unit_of_work import request_refused

# How long a client is asked to wait while the database is unreachable. A restart takes a few
# seconds (make soak: 2.6 s); with 30 s a client that honours the header stayed away for 44 s
# after one. Coming back every 5 s costs the portal nothing while it answers 503 at once.
RETRY_AFTER_SECONDS = 5


class PortalApp(Flask):
    """Flask with the request's unit of work: a view that returns normally (with a status under
    400) has its writes committed; a view that raises has them rolled back by the error handler.
    No view commits or rolls back itself."""

    # JSON bodies are measured and their nesting counted before parsing (portal/json_limits.py).
    json_provider_class = LimitedJSONProvider

    def dispatch_request(self):
        response = self.make_response(super().dispatch_request())
        if response.status_code < 400 and not request_refused():
            # Committed here, inside the dispatch, so that a failed commit (a stale version, a
            # unique key taken meanwhile) goes through the error handlers like any refusal.
            db.session.commit()
        else:
            db.session.rollback()
        return response

    def process_response(self, response):
        # Flask-Limiter puts Retry-After (the time until its window resets, up to a minute) on
        # every response under a limit, and raises one already there to it. Only a 429 means
        # "come back then": on a 200 it means nothing, and a 500 or a 503 that said "2 seconds"
        # would keep a well-behaved client away for a minute (the soak's clients were).
        own = response.headers.get("Retry-After")
        response = super().process_response(response)
        if response.status_code != 429:
            if own is None:
                response.headers.pop("Retry-After", None)
            else:
                response.headers["Retry-After"] = own
        return response


def create_app(test_config: dict | None = None) -> Flask:
    app = PortalApp(
        __name__,
        template_folder=str(config.ROOT / "templates"),
        static_folder=str(config.ROOT / "static"),
        instance_path=str(config.INSTANCE),
    )
    app.config.update(config.load(test_config))
    app.wsgi_app = headers.scheme_from_trusted_proxies_only(app.wsgi_app)
    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_request_hooks(app)
    register_templates(app)
    register_cli(app)
    return app


# Parsed once: Flask-Babel takes a Locale as it is, but parses a name again on every request
# (Babel's parse lower-cases every locale name it knows, a tenth of a small page's time).
_LOCALES = {name: Locale.parse(name) for name in ("zh_CN", "en")}


def _select_locale():
    if not has_request_context():
        return _LOCALES["en"]  # CLI output and jobs outside a request
    chosen = session.get("lang")
    if chosen in _LOCALES:
        return _LOCALES[chosen]
    if current_user and getattr(current_user, "locale", None):
        return _LOCALES.get(current_user.locale, current_user.locale)
    best = request.accept_languages.best_match(["zh_CN", "zh", "en"])
    return _LOCALES["en" if best == "en" else "zh_CN"]


# Long enough for any one short transaction (an import commits every batch) to finish first.
SQLITE_BUSY_TIMEOUT_MS = 30_000


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    # SQLite is the embedded default: WAL for concurrent readers, a busy timeout so writers
    # queue instead of failing, and foreign keys enforced like on PostgreSQL.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()
        # Reads run outside any transaction and hold no lock (WAL), so pages never queue
        # behind one another; pysqlite begins a transaction only before the first write, and
        # begins it IMMEDIATE: the write lock is taken at once, waiting in the busy timeout,
        # and the transaction never holds an older snapshot that SQLite would refuse to upgrade
        # ("database is locked" at once, whatever the timeout). A write made apart from the
        # request (a login throttle, an audit entry of a refusal) can therefore still get the
        # lock while the request has only read.
        dbapi_connection.isolation_level = "IMMEDIATE"


@event.listens_for(Engine, "savepoint")
def _sqlite_savepoint_inside_a_transaction(conn, _name):
    # pysqlite begins a transaction only before a write. A SAVEPOINT sent first would open
    # the transaction itself, and releasing it would commit: a refusal after that would leave
    # the savepoint's rows behind. Begin the transaction first, IMMEDIATE like pysqlite's own.
    raw = conn.connection.dbapi_connection
    if type(raw).__module__.startswith("sqlite3") and not raw.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def register_extensions(app: Flask) -> None:
    import models  # noqa: F401  (the models must be known before migrations run)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(config.ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale,
                   default_translation_directories=str(config.ROOT / "translations"))
    limiter.init_app(app)
    headers.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "warning"

    from .services import accounts

    @login_manager.user_loader
    def load_user(token: str):
        user = accounts.load_session(token, app.config["IDLE_TIMEOUT"],
                                     app.config["SESSION_MAX_AGE"])
        # The browser still held a session that has ended (idle, too old, ended elsewhere):
        # the login page will say so rather than greet a stranger.
        g.session_ended = user is None
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        # Flask-Login's own answer, plus why: a form sent after the session ended lands on a
        # login page that says it ended (and, back on the form, the browser's draft refills it).
        expired = g.get("session_ended", False)
        if not expired:
            flash(str(login_manager.login_message), login_manager.login_message_category)
        target = login_url(login_manager.login_view, next_url=request.url)
        if expired:
            target += "&reason=expired" if "?" in target else "?reason=expired"
        return redirect(target)


def register_blueprints(app: Flask) -> None:
    # Modules that add routes to a face's blueprint (cooperation agreements).
    import blueprints.admin.branches  # noqa: F401  (the bank's branch tree)
    import blueprints.admin.imports  # noqa: F401  (scorecards: history uploads)
    import blueprints.admin.products  # noqa: F401  (products' rate tables)
    import blueprints.admin.scoring  # noqa: F401  (scorecards: weights)
    import blueprints.api.batch  # noqa: F401  (group referrals: API v1)
    import blueprints.api.messages  # noqa: F401  (messages on a referral: API v1)
    import blueprints.api.portfolio  # noqa: F401  (portfolio: API v1)
    import blueprints.api.scorecards  # noqa: F401  (scorecards: API v1)
    import blueprints.auth.account  # noqa: F401  (the user's own account, forced steps)
    import blueprints.auth.apply  # noqa: F401  (the public application to become a partner)
    import blueprints.auth.verify  # noqa: F401
    import blueprints.bank.admission  # noqa: F401  (applications and annual reviews)
    import blueprints.bank.agreements  # noqa: F401
    import blueprints.bank.confidential  # noqa: F401  (held submissions, reveals)
    import blueprints.bank.disputes  # noqa: F401  (disputes of figures and loans)
    import blueprints.bank.leads  # noqa: F401  (customers the bank refers to partners)
    import blueprints.bank.messages  # noqa: F401  (messages on a referral, the bank's side)
    import blueprints.bank.portfolio  # noqa: F401  (the portfolio by class and more)
    import blueprints.bank.queue_actions  # noqa: F401  (taking referrals, saved queue filters)
    import blueprints.bank.scorecard_drill  # noqa: F401  (what stands behind each figure)
    import blueprints.bank.scorecards  # noqa: F401  (scorecards, follow-up, contacts)
    import blueprints.bank.sites  # noqa: F401  (partners' projects, showrooms, offices)
    import blueprints.partner.agreements  # noqa: F401
    import blueprints.partner.group  # noqa: F401  (group referrals: a CSV of buyers)
    import blueprints.partner.integration  # noqa: F401  (API keys, webhooks, notifications)
    import blueprints.partner.leads  # noqa: F401  (customers the bank referred to the partner)
    import blueprints.partner.messages  # noqa: F401  (messages on a referral, the partner's side)
    import blueprints.partner.scorecard  # noqa: F401  (the partner's own card)
    import blueprints.partner.sites  # noqa: F401  (the partner's sites, read only)
    import blueprints.partner.tools  # noqa: F401  (product sheets, payment calculator)
    from blueprints.admin.routes import bp as admin_bp
    from blueprints.api.openapi import API_PREFIX
    from blueprints.api.routes import bp as api_bp
    from blueprints.auth.routes import bp as auth_bp
    from blueprints.bank.routes import bp as bank_bp
    from blueprints.health import bp as health_bp
    from blueprints.partner.routes import bp as partner_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(partner_bp, url_prefix="/partner")
    app.register_blueprint(bank_bp, url_prefix="/bank")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(api_bp, url_prefix=API_PREFIX)
    app.register_blueprint(health_bp)
    csrf.exempt(api_bp)


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _database_unreachable(e: sa_exc.DBAPIError) -> bool:
    """A lost or refused connection (PostgreSQL down or restarting, a SQLite file that cannot
    be opened), as against an error in a statement."""
    return e.connection_invalidated or isinstance(e, (sa_exc.OperationalError,
                                                      sa_exc.InterfaceError))


def register_errorhandlers(app: Flask) -> None:
    from .security import record_refusal
    from .services.errors import DomainError

    def render_error(status: int, message=None, *, refusal_recorded: bool = False):
        db.session.rollback()
        if status in (401, 403, 404) and not refusal_recorded:
            record_refusal(status)
        if _wants_json():
            codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                     405: "method_not_allowed", 409: "state_conflict", 413: "too_large",
                     422: "invalid", 429: "rate_limited", 500: "server_error"}
            body = {"error": {"code": codes.get(status, "error"),
                              "message": str(message or ""), "fields": {}}}
            return jsonify(body), status
        return render_template("errors/error.html", status=status, message=message), status

    for status in (400, 403, 404, 405, 413, 429):
        app.register_error_handler(status, lambda e, s=status: render_error(s))

    def unavailable():
        # The database is unreachable: answer 503 at once with nothing that needs it. The
        # session's rollback may fail on a dead connection; the pool's pre-ping discards such a
        # connection when it is next checked out, so the portal recovers without a restart.
        with contextlib.suppress(Exception):  # nothing to roll back on a connection that is gone
            db.session.rollback()
        # Loading the logged-in user is a query: this answer treats them as anonymous (the
        # page's navigation, language and cache headers then need no database).
        g._login_user = login_manager.anonymous_user()
        if _wants_json():
            body = {"error": {"code": "unavailable", "fields": {}, "message": str(_l(
                "The service is temporarily unavailable. Try again shortly."))}}
            response = jsonify(body)
        else:
            response = app.make_response(render_template("errors/unavailable.html"))
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(sa_exc.DBAPIError)
    def database_error(e: sa_exc.DBAPIError):
        if _database_unreachable(e):
            return unavailable()
        raise e  # a real fault: the 500 below

    @app.errorhandler(sa_exc.TimeoutError)
    def pool_exhausted(e):
        return unavailable()  # every connection busy: as good as unreachable, for now

    @app.errorhandler(500)
    def server_error(e):
        # An error raised outside the view (an after-request hook loading the user) reaches
        # here wrapped.
        original = getattr(e, "original_exception", None)
        if isinstance(original, sa_exc.DBAPIError) and _database_unreachable(original):
            return unavailable()
        return render_error(500)

    @app.errorhandler(CSRFError)
    def csrf_error(e):
        return render_error(400, _l("The form has expired. Reload the page and try again."))

    @app.errorhandler(DomainError)
    def domain_error(e: DomainError):
        db.session.rollback()
        if e.status in (401, 403, 404):
            record_refusal(e.status)
        if e.back_to and not _wants_json():
            # Going back to a page that has no form to mark: say each field's reason.
            for message in [str(v) for v in e.fields.values()] or [str(e.message)]:
                flash(message, "danger")
            return redirect(e.back_to)
        if _wants_json():
            fields = {k: str(v) for k, v in e.fields.items()}
            body = {"error": {"code": e.code, "message": str(e.message), "fields": fields}}
            return jsonify(body), e.status
        return render_error(e.status, e.message, refusal_recorded=True)


def register_request_hooks(app: Flask) -> None:
    @app.teardown_request
    def roll_back_on_error(exc):
        # An unhandled error; the handled ones roll back in their handler. Whatever else was not
        # committed in the dispatch goes with the session when the app context ends.
        if exc is not None:
            db.session.rollback()


DATE_TIME = "yyyy-MM-dd HH:mm"


def register_templates(app: Flask) -> None:
    static_versions.register(app)  # /static/… URLs change with the file (long browser caching)
    menu.register(app)  # the header's menu, drawn once per language, role, page and badges
    formatting.register(app)  # money and percent, in the page's language
    cells.register(app)  # a row's state badge and product name
    app.jinja_env.globals.update(labels.ALL)
    app.jinja_env.globals["get_locale"] = i18n.page_locale
    from .services.scoring import writing  # the services import this package

    # A KPI's figure and interval on every scorecard page (functions: the card page writes
    # forty-five, and a macro call costs several times a function's).
    app.jinja_env.globals.update(kpi_value=writing.kpi_value,
                                 kpi_interval=writing.kpi_interval)
    # The page's strings through the request's catalogue, found once per locale (i18n.py).
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: i18n.catalogue().ugettext(s),
        ngettext=lambda s, p, n: i18n.catalogue().ungettext(s, p, n),
        pgettext=lambda c, s: i18n.catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: i18n.catalogue().unpgettext(c, s, p, n),
        newstyle=True)
    app.jinja_env.globals["_"] = i18n.page_gettext
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.template_filter("dt")
    def _dt(value, fmt=DATE_TIME):
        if not value:
            return "—"
        if fmt == DATE_TIME and isinstance(value, datetime):
            # The default pattern has no word of any language: the bank's wall clock by strftime,
            # a twentieth of Babel's cost, paid by every row of every list.
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)  # stored naive means UTC, as Babel reads it
            return value.astimezone(bank_time.bank_zone()).strftime("%Y-%m-%d %H:%M")
        return format_datetime(value, fmt)

    @app.template_filter("hours")
    def _hours(seconds):
        if seconds is None:
            return "—"
        hours = seconds / 3600
        # Through the request's catalogue (i18n.gettext): Flask-Babel's cost 12 µs a call, and
        # the queue writes one a row.
        if hours < 48:
            return i18n.gettext("%(n)s h", n=f"{hours:.1f}")
        return i18n.gettext("%(n)s d", n=f"{hours / 24:.1f}")


def register_cli(app: Flask) -> None:
    from .cli import register

    register(app)
