"""Settings read from the environment when the app is created (never at import time)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

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
                f"(PORTAL_ENV={portal_env!r})"
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
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL")
        or f"sqlite:///{INSTANCE / 'portal.db'}",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
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
        "UPLOAD_DIR": env.get("UPLOAD_DIR") or str(INSTANCE / "uploads"),
        # Cooperation agreements: the bank as the documents name it (甲方), and the PDF cache.
        "BANK_LEGAL_NAME": env.get("BANK_LEGAL_NAME") or "示范银行股份有限公司",
        "BANK_UNIT_NAME": env.get("BANK_UNIT_NAME") or "个人贷款业务部 · 合作渠道管理",
        "PDF_CACHE_DIR": env.get("PDF_CACHE_DIR") or str(INSTANCE / "pdf-cache"),
        "PROTECTION_WINDOW_DAYS": int(env.get("PROTECTION_WINDOW_DAYS", "90")),
        # Reverse proxies in front of the portal whose X-Forwarded-* headers to believe: the
        # client's address (audit log, rate limits) and scheme come from them. 0 believes none,
        # so a client cannot claim another address.
        "TRUSTED_PROXIES": _count("TRUSTED_PROXIES", env.get("TRUSTED_PROXIES", "0")),
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


def _refuse_insecure(cfg: dict) -> None:
    if len(cfg["SECRET_KEY"]) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters in production")
    if not cfg["SESSION_COOKIE_SECURE"]:
        raise ConfigError("SESSION_COOKIE_SECURE must be on in production")
