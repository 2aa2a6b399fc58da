"""The CLI commands of docs/contract.md, configuration rules, and /healthz."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import request
from sqlalchemy import func, select

from models import Organization, Referral, User
from portal import create_app
from portal.config import ConfigError
from portal.extensions import db


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def test_orgs_create_and_refuse_a_taken_code(cli, world):
    result = cli.invoke(args=["orgs", "create", "--code", "ACME", "--name", "Acme Cars",
                              "--type", "car_dealer", "--manager", world.manager.email])
    assert result.exit_code == 0, result.output
    org = db.session.scalar(select(Organization).where(Organization.code == "ACME"))
    assert (org.kind, org.status, org.channel_manager_id) == ("car_dealer", "active",
                                                             world.manager.id)
    again = cli.invoke(args=["orgs", "create", "--code", "ACME", "--name", "Other",
                             "--type", "car_dealer"])
    assert again.exit_code != 0 and "already exists" in again.output
    bad = cli.invoke(args=["orgs", "create", "--code", "X1", "--name", "Y", "--type", "bakery"])
    assert bad.exit_code != 0


def test_users_create_prints_a_one_time_password_that_works(cli, world, client):
    result = cli.invoke(args=["users", "create", "--email", "new.agent@a.test", "--role",
                              "partner_agent", "--org", world.org_a.code])
    assert result.exit_code == 0, result.output
    password = result.output.split("One-time password: ")[1].strip()
    response = client.post("/login", data={"email": "new.agent@a.test", "password": password})
    assert response.status_code == 302


def test_users_create_checks_role_organisation_and_password(cli, world):
    assert cli.invoke(args=["users", "create", "--email", "x@a.test", "--role",
                            "partner_agent"]).exit_code != 0  # a partner user needs --org
    assert cli.invoke(args=["users", "create", "--email", "y@bank.test", "--role",
                            "credit_officer", "--org", world.org_a.code]).exit_code != 0
    short = cli.invoke(args=["users", "create", "--email", "z@bank.test", "--role", "admin",
                             "--password", "short"])
    assert short.exit_code != 0 and "12" in short.output
    ok = cli.invoke(args=["users", "create", "--email", "z@bank.test", "--role", "admin",
                          "--password", "a-long-enough-password"])
    assert ok.exit_code == 0 and "One-time password" not in ok.output


def test_demo_seed_builds_the_contract_accounts_once(cli, app, client):
    result = cli.invoke(args=["demo", "seed", "--if-empty"])
    assert result.exit_code == 0, result.output
    emails = set(db.session.scalars(select(User.email)))
    assert {"admin@bank.example", "manager@bank.example", "officer@bank.example",
            "sales@sunrise-homes.example", "agent@sunrise-homes.example",
            "sales@northstar-auto.example", "desk@bridge-study.example",
            "sales@harbor-realty.example"} <= emails
    codes = set(db.session.scalars(select(Organization.code)))
    assert {"SUNRISE", "NORTHSTAR", "BRIDGE", "HARBOR"} <= codes
    assert db.session.scalar(select(func.count(Referral.id))) > 300
    assert db.session.scalar(select(func.count(Referral.id)).where(
        Referral.status == "conflict")) >= 1
    # Every buyer consented before the referral went in.
    assert not db.session.scalar(select(func.count(Referral.id)).where(
        Referral.consent_obtained_at >= Referral.submitted_at))
    from models import Agreement, LoanPerformance

    assert db.session.scalar(select(func.count(LoanPerformance.id))) > 1000
    # Decided demo referrals carry their terms; some are counter-offers (issue 13).
    from models import LoanDecision

    approved = db.session.scalars(select(Referral).where(
        Referral.status.in_(("approved", "contract_signed", "disbursed")))).all()
    assert approved and all(r.decision and r.decision.approved_amount for r in approved)
    assert any(r.decision.approved_amount < r.amount for r in approved)
    assert all(r.decision.disbursed_amount == r.amount for r in approved
               if r.status == "disbursed")
    assert db.session.scalar(select(func.count()).select_from(LoanDecision).where(
        LoanDecision.contract_number.is_not(None))) > 100
    covered = {}
    for agreement in db.session.scalars(select(Agreement).where(Agreement.status == "active")):
        covered.setdefault(agreement.org.code, set()).update(agreement.products)
    assert covered == {"SUNRISE": {"housing_mortgage"}, "HARBOR": {"housing_mortgage"},
                       "NORTHSTAR": {"auto_loan"}, "BRIDGE": {"study_abroad_loan"}}
    # The study's table, on first look.
    from portal.services import portfolio

    table = portfolio.portfolio(portfolio.PortfolioQuery())
    by_class = {g.key: g for g in table.groups}
    assert abs(by_class["1"].borrower_share - 0.42) < 0.02 and by_class["1"].npl_rate < 0.01
    assert abs(by_class["2"].borrower_share - 0.33) < 0.02
    assert 0.015 < by_class["2"].npl_rate < 0.04
    assert abs(by_class["3"].borrower_share - 0.25) < 0.02
    assert abs(by_class["3"].balance_share - 0.184) < 0.01
    assert 0.055 < by_class["3"].npl_rate < 0.08
    estate = next(g for g in portfolio.portfolio(portfolio.PortfolioQuery(
        group_by="industry")).groups if g.key == "real_estate_construction")
    assert estate.npl_rate > 0.02
    again = cli.invoke(args=["demo", "seed", "--if-empty"])
    assert "left as it is" in again.output
    response = client.post("/login", data={"email": "sales@sunrise-homes.example",
                                           "password": "demo-pass-2026"})
    assert response.status_code == 302


def test_production_refuses_demo_data_and_a_missing_secret(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        create_app({"PORTAL_ENV": "production"})
    with pytest.raises(ConfigError):  # too short
        create_app({"PORTAL_ENV": "production", "SECRET_KEY": "short"})
    app = create_app({"PORTAL_ENV": "production", "SECRET_KEY": "p" * 40,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}"})
    assert app.config["SESSION_COOKIE_SECURE"]
    with app.app_context():  # the CLI runner uses the app whose context is active
        result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code != 0 and "production" in result.output


def test_healthz_is_503_when_the_database_does_not_answer(tmp_path):
    app = create_app({"PORTAL_ENV": "testing", "SECRET_KEY": "t" * 40,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/dir/x.db"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] != "ok"


@pytest.mark.parametrize(("trusted", "seen"), [(0, "10.1.1.1"), (1, "203.0.113.7")])
def test_the_client_address_comes_from_a_proxy_only_when_it_is_trusted(tmp_path, trusted, seen):
    app = create_app({"PORTAL_ENV": "testing", "SECRET_KEY": "t" * 40,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db",
                      "TRUSTED_PROXIES": trusted})

    @app.get("/test-address")
    def address():
        return {"address": request.remote_addr, "scheme": request.scheme}

    response = app.test_client().get(
        "/test-address", environ_base={"REMOTE_ADDR": "10.1.1.1"},
        headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert response.get_json() == {"address": seen,
                                   "scheme": "https" if trusted else "http"}


def test_trusted_proxies_must_be_a_count(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", "yes")
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        create_app({"PORTAL_ENV": "testing", "SECRET_KEY": "t" * 40})


def test_a_command_refused_after_a_flush_leaves_nothing_behind(cli, world, monkeypatch):
    from models import AuditEntry
    from portal.services import accounts
    from portal.services.errors import DomainError

    create_org = accounts.create_org
    flushed = []

    def create_then_refuse(ctx, **kwargs):
        org = create_org(ctx, **kwargs)  # flushes the organisation and its audit entry
        flushed.append(org.id)
        raise DomainError("Refused after the flush.", {"code": "taken meanwhile"})

    monkeypatch.setattr(accounts, "create_org", create_then_refuse)
    audit_entries = db.session.scalar(select(func.count(AuditEntry.id)))
    result = cli.invoke(args=["orgs", "create", "--code", "HALF", "--name", "Half Written",
                              "--type", "car_dealer"])
    assert flushed and flushed[0] is not None
    assert result.exit_code == 1
    assert "Refused after the flush. (code: taken meanwhile)" in result.output
    db.session.expire_all()
    assert db.session.scalar(select(Organization).where(Organization.code == "HALF")) is None
    assert db.session.scalar(select(func.count(AuditEntry.id))) == audit_entries


def test_a_housekeeping_step_that_fails_after_a_flush_leaves_nothing_behind(app, world,
                                                                            monkeypatch):
    from datetime import timedelta

    from models import Agreement, Notification
    from portal import worker
    from portal.services import agreements, scoring

    soon = db.session.scalar(select(Agreement).where(
        Agreement.org_id == world.org_a.id, Agreement.status == "active"))
    soon.expires_on = agreements.local_today() + timedelta(days=20)
    db.session.commit()

    def fail(now=None):
        raise RuntimeError("scorecards unavailable")

    monkeypatch.setattr(scoring, "maintain", fail)  # runs after the expiry notices flushed
    with pytest.raises(RuntimeError):
        worker.housekeeping()
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Notification.id)).where(
        Notification.kind == "agreement_expiring")) == 0
    monkeypatch.undo()
    assert worker.housekeeping()["expiring_notices"] == 2  # nothing was half-written before


def test_the_cli_names_a_missing_secret_in_one_line_instead_of_a_traceback(tmp_path):
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "PORTAL_ENV")}
    env["PORTAL_ENV"] = "production"
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "orgs", "--help"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "SECRET_KEY must be set" in done.stderr and "PORTAL_ENV=development" in done.stderr
