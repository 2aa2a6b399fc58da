"""Settings read from the environment when the app is created (never at import time)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import pydantic_core

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


class ConfigError(RuntimeError):
    pass


def _development_secret() -> str:
    # A development machine gets its own random key kept under instance/, so there is never a
    # shared fallback secret in the code.
    INSTANCE.mkdir(exist_ok=True)
    path = INSTANCE / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def load(overrides: dict | None = None) -> dict:
    env = os.environ
    portal_env = (overrides or {}).get("PORTAL_ENV") or env.get("PORTAL_ENV", "production")
    secret = (overrides or {}).get("SECRET_KEY") or env.get("SECRET_KEY")
    if not secret:
        if portal_env in ("development", "testing"):
            secret = _development_secret()
        else:
            raise ConfigError(
                "SECRET_KEY must be set when PORTAL_ENV is not 'development' "
                f"(PORTAL_ENV={portal_env!r}). On a development machine: "
                "export PORTAL_ENV=development (the .venv that `make run` creates sets it)"
            )
    redis_url = env.get("REDIS_URL") or None
    upload_max = int(env.get("UPLOAD_MAX_BYTES", str(10 * 1024 * 1024)))
    cfg = {
        "PORTAL_ENV": portal_env,
        "SECRET_KEY": secret,
        # Keyed hash of buyers' national IDs for attribution; rotating it breaks duplicate
        # detection for existing referrals, so it may be set apart from SECRET_KEY.
        "ID_HASH_KEY": env.get("ID_HASH_KEY") or secret,
        "PII_KEY": env.get("PII_KEY") or secret,
        # Key rotation (docs/operations.md): while set, new data is written under these, reads
        # and lookups accept both, and `pii rotate-key` moves existing data over.
        "ID_HASH_KEY_NEXT": env.get("ID_HASH_KEY_NEXT") or None,
        "PII_KEY_NEXT": env.get("PII_KEY_NEXT") or None,
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL")
        or f"sqlite:///{INSTANCE / 'portal.db'}",
        # JSON columns (a scorecard's KPIs, the portfolio's monthly totals) decoded by
        # pydantic-core's parser, the same values at a third of json.loads' time: a card page
        # decodes 28 of them (issue 15). On PostgreSQL psycopg is handed it for jsonb.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True,
                                      "json_deserializer": pydantic_core.from_json},
        "REDIS_URL": redis_url,
        # Limits and login throttles are counted in Redis, so that every instance spends one
        # budget (docs/deploy.md). Should Redis stop answering, each instance counts on its own
        # until it is back, rather than failing every request; a short timeout keeps a
        # vanished Redis from holding requests up.
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": bool(redis_url),
        "RATELIMIT_STORAGE_OPTIONS": ({"socket_connect_timeout": 1, "socket_timeout": 1}
                                      if redis_url else {}),
        "RATELIMIT_HEADERS_ENABLED": True,
        # A whole sales office shares one address: generous per address, strict per account.
        "LOGIN_RATE_LIMIT_PER_ADDRESS": env.get("LOGIN_RATE_LIMIT_PER_ADDRESS", "60 per 5 minutes"),
        "LOGIN_MAX_FAILURES": int(env.get("LOGIN_MAX_FAILURES", "5")),
        "LOGIN_LOCK_MINUTES": int(env.get("LOGIN_LOCK_MINUTES", "15")),
        "IDLE_TIMEOUT": timedelta(minutes=int(env.get("IDLE_TIMEOUT_MINUTES", "30"))),
        **_accounts(env, portal_env),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": portal_env == "production",
        "SESSION_COOKIE_NAME": "portal_session",
        "REMEMBER_COOKIE_DURATION": timedelta(days=0),
        "WTF_CSRF_TIME_LIMIT": None,
        "UPLOAD_MAX_BYTES": upload_max,
        # A whole request: the largest upload plus room for the rest of its form. nginx's
        # client_max_body_size is the same figure (deploy/nginx/portal.conf).
        "MAX_CONTENT_LENGTH": upload_max + 2 * 1024 * 1024,
        # Images are decoded only below this many pixels (a 50-megapixel photo of a document is
        # plenty; a PNG claiming 30000 x 30000 is a decompression bomb).
        "UPLOAD_MAX_PIXELS": int(env.get("UPLOAD_MAX_PIXELS", "50000000")),
        "UPLOAD_DIR": env.get("UPLOAD_DIR") or str(INSTANCE / "uploads"),
        # A history import uploaded on the admin page (a million rows is some 250 MB of CSV, or
        # a tenth of that gzipped): the only request allowed past MAX_CONTENT_LENGTH.
        "IMPORT_MAX_BYTES": int(env.get("IMPORT_MAX_BYTES", str(1024 * 1024 * 1024))),
        # Cooperation agreements: the bank as the documents name it (甲方), and the PDF cache.
        "BANK_LEGAL_NAME": env.get("BANK_LEGAL_NAME") or "示范银行股份有限公司",
        "BANK_UNIT_NAME": env.get("BANK_UNIT_NAME") or "个人贷款业务部 · 合作渠道管理",
        "PDF_CACHE_DIR": env.get("PDF_CACHE_DIR") or str(INSTANCE / "pdf-cache"),
        "PROTECTION_WINDOW_DAYS": int(env.get("PROTECTION_WINDOW_DAYS", "90")),
        # Reverse proxies in front of the portal whose X-Forwarded-* headers to believe: the
        # client's address (audit log, rate limits) and scheme come from them. 0 believes none,
        # so a client cannot claim another address.
        "TRUSTED_PROXIES": _count("TRUSTED_PROXIES", env.get("TRUSTED_PROXIES", "0")),
        # Plain-HTTP requests are redirected to HTTPS (Talisman, portal/headers.py). Behind a
        # proxy that ends TLS this needs TRUSTED_PROXIES, or every request looks like HTTP.
        "FORCE_HTTPS": env.get("FORCE_HTTPS", "1" if portal_env == "production" else "0") == "1",
        "CONSENT_NOTICE_VERSION": env.get("CONSENT_NOTICE_VERSION", "2026-01"),
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "LANGUAGES": ["zh_CN", "en"],
        "PER_PAGE": 25,
        # Scorecards (docs/scoring.md): prior strength k in referrals, the interval shown with
        # each rate, the SLA without an agreement's own, early-default days, months kept, the
        # rolling window, how many stale partners go one by one, SQLite's page cache (KiB).
        "SCORING_PARTNER_MIN_LOANS": int(env.get("SCORING_PARTNER_MIN_LOANS", "5")),
        "SCORING_PRIOR_STRENGTH": int(env.get("SCORING_PRIOR_STRENGTH", "20")),
        "SCORING_INTERVAL": float(env.get("SCORING_INTERVAL", "0.90")),
        "SCORING_SLA_HOURS": int(env.get("SCORING_SLA_HOURS", "72")),
        "SCORING_EPD_DAYS": int(env.get("SCORING_EPD_DAYS", "90")),
        "SCORING_MONTHS": int(env.get("SCORING_MONTHS", "12")),
        "SCORING_ROLLING_DAYS": int(env.get("SCORING_ROLLING_DAYS", "90")),
        "SCORING_INCREMENTAL_MAX_ORGS": int(env.get("SCORING_INCREMENTAL_MAX_ORGS", "50")),
        "SCORING_SQLITE_CACHE_KIB": int(env.get("SCORING_SQLITE_CACHE_KIB", "262144")),
        "MAIL_SERVER": env.get("MAIL_SERVER"),
        "MAIL_PORT": int(env.get("MAIL_PORT", "25")),
        "MAIL_USERNAME": env.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER", "portal@bank.example"),
        **_integration(env, portal_env),
        **_confidentiality(env),
        **_records(env),
        **_work_queue(env),
    }
    if overrides:
        cfg.update(overrides)
    if cfg["PORTAL_ENV"] == "production":
        _refuse_insecure(cfg)
    return cfg


def _count(name: str, value: str) -> int:
    if not value.strip().isdigit():
        raise ConfigError(f"{name} must be a whole number of 0 or more (got {value!r})")
    return int(value)


def _integration(env, portal_env: str) -> dict:
    """API, webhook, e-mail and worker settings (partner integration)."""
    local = portal_env in ("development", "testing")
    return {
        "MAIL_USE_TLS": env.get("MAIL_USE_TLS", "0") == "1",
        "MAIL_USE_SSL": env.get("MAIL_USE_SSL", "0") == "1",
        "MAIL_TIMEOUT": float(env.get("MAIL_TIMEOUT", "10")),
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT", "600 per minute"),
        # Calls without a valid key (missing, wrong, revoked) share one budget per address.
        "API_UNAUTHENTICATED_RATE_LIMIT": env.get("API_UNAUTHENTICATED_RATE_LIMIT",
                                                  "30 per minute"),
        "WEBHOOK_TIMEOUT": float(env.get("WEBHOOK_TIMEOUT", "10")),
        "WEBHOOK_MAX_ATTEMPTS": int(env.get("WEBHOOK_MAX_ATTEMPTS", "12")),
        "WEBHOOK_BACKOFF_SECONDS": float(env.get("WEBHOOK_BACKOFF_SECONDS", "30")),
        # Loopback and private addresses as webhook targets: only on a developer's machine.
        "WEBHOOK_ALLOW_PRIVATE": env.get("WEBHOOK_ALLOW_PRIVATE", "1" if local else "0") == "1",
        "WEBHOOK_ALLOW_HTTP": env.get("WEBHOOK_ALLOW_HTTP", "1" if local else "0") == "1",
        "WORKER_POLL_SECONDS": float(env.get("WORKER_POLL_SECONDS", "2")),
        "IDEMPOTENCY_TTL_HOURS": int(env.get("IDEMPOTENCY_TTL_HOURS", "24")),
        # Agreement PDFs unused this long leave the disk cache (they render again, identical).
        "PDF_CACHE_DAYS": _count("PDF_CACHE_DAYS", env.get("PDF_CACHE_DAYS", "30")),
        # The portal's address as people reach it: links in e-mails.
        "PORTAL_URL": env.get("PORTAL_URL", "http://127.0.0.1:5000"),
    }


def _accounts(env, portal_env: str) -> dict:
    """Sessions, passwords and the second factor (issue 10)."""
    # The second factor is required of these roles; on a developer's machine and in the test
    # suite of none (the demo logs in with a password), unless MFA_REQUIRED_ROLES says so.
    local = portal_env in ("development", "testing")
    roles = env.get("MFA_REQUIRED_ROLES", "" if local else "admin,credit_officer")
    return {
        "MFA_REQUIRED_ROLES": frozenset(r.strip() for r in roles.split(",") if r.strip()),
        # Sensitive actions (reveal, CSV export, agreement issue, user changes) need a login or
        # re-authentication this recent.
        "FRESH_LOGIN_MINUTES": _count("FRESH_LOGIN_MINUTES", env.get("FRESH_LOGIN_MINUTES", "5")),
        # A session ends this long after login however active it is (IDLE_TIMEOUT_MINUTES ends
        # it sooner when unused).
        "SESSION_MAX_AGE": timedelta(hours=_count("SESSION_MAX_HOURS",
                                                  env.get("SESSION_MAX_HOURS", "12"))),
        "ONE_TIME_PASSWORD_HOURS": _count("ONE_TIME_PASSWORD_HOURS",
                                          env.get("ONE_TIME_PASSWORD_HOURS", "72")),
        "PASSWORD_RESET_LINK_HOURS": _count("PASSWORD_RESET_LINK_HOURS",
                                            env.get("PASSWORD_RESET_LINK_HOURS", "24")),
    }


def _confidentiality(env) -> dict:
    """Probing the attribution answer and revealing buyers' data (docs/attribution.md,
    services/reveals.py)."""
    return {
        # Conflicting submissions a partner may withdraw in a bank day before its further
        # submissions that day are held for a channel manager; 0 turns holding off.
        "PROBE_HOLD_THRESHOLD": _count("PROBE_HOLD_THRESHOLD",
                                       env.get("PROBE_HOLD_THRESHOLD", "3")),
        # Reveals one person may make in an hour before each further one needs a manager.
        "REVEAL_LIMIT_PER_HOUR": _count("REVEAL_LIMIT_PER_HOUR",
                                        env.get("REVEAL_LIMIT_PER_HOUR", "20")),
    }


def _records(env) -> dict:
    """The audit trail, backups and retention (docs/audit.md, docs/operations.md)."""
    return {
        # Refused requests recorded one by one per address and minute; beyond, only counted.
        "AUDIT_DENIED_PER_MINUTE": _count("AUDIT_DENIED_PER_MINUTE",
                                          env.get("AUDIT_DENIED_PER_MINUTE", "20")),
        # Housekeeping stores an anchor of the chain's head, and walks the whole chain, this often.
        "AUDIT_ANCHOR_HOURS": _count("AUDIT_ANCHOR_HOURS", env.get("AUDIT_ANCHOR_HOURS", "24")),
        "AUDIT_FULL_VERIFY_HOURS": _count("AUDIT_FULL_VERIFY_HOURS",
                                          env.get("AUDIT_FULL_VERIFY_HOURS", "24")),
        # Closed referrals lose the buyer's personal data this long after closing (0: never).
        "RETENTION_YEARS": _count("RETENTION_YEARS", env.get("RETENTION_YEARS", "5")),
        # Where pg_dump and pg_restore are, when not on PATH (else the newest under
        # /usr/lib/postgresql).
        "PG_BIN_DIR": env.get("PG_BIN_DIR") or None,
    }


def _work_queue(env) -> dict:
    """The officers' queue colours a wait on the bank's clock amber, then red, from these ages."""
    amber = _count("QUEUE_SLA_AMBER_HOURS", env.get("QUEUE_SLA_AMBER_HOURS", "24"))
    red = _count("QUEUE_SLA_RED_HOURS", env.get("QUEUE_SLA_RED_HOURS", "48"))
    if not 0 < amber < red:
        raise ConfigError("QUEUE_SLA_AMBER_HOURS must be more than 0 and less than "
                          f"QUEUE_SLA_RED_HOURS (got {amber} and {red})")
    return {"QUEUE_SLA_AMBER_HOURS": amber, "QUEUE_SLA_RED_HOURS": red}


def _refuse_insecure(cfg: dict) -> None:
    if len(cfg["SECRET_KEY"]) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters in production")
    if not cfg["SESSION_COOKIE_SECURE"]:
        raise ConfigError("SESSION_COOKIE_SECURE must be on in production")
