"""Retention (issue 11): only referrals closed longer ago than RETENTION_YEARS lose the buyer's
data; the scorecards give the same figures before and after; the audit trail records each batch
and still verifies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import AuditEntry, Document, Referral, ReferralEvent, ScorecardSnapshot, utcnow
from portal.extensions import db
from portal.services import Ctx, documents, referrals, retention, scoring
from portal.services.audit import chain
from portal.services.errors import StateConflict
from portal.worker import records_housekeeping
from tests import factories
from tests.integration_helpers import pdf_bytes

NOW = utcnow()


def _cards() -> list:
    scoring.recompute_all(NOW)
    db.session.flush()
    cards = []
    for snapshot in db.session.scalars(select(ScorecardSnapshot).order_by(
            ScorecardSnapshot.org_id, ScorecardSnapshot.period_kind,
            ScorecardSnapshot.period_key)):
        card = scoring.card_json(snapshot)
        card.pop("computed_at")
        cards.append(card)
    return cards


def _history(world):
    officer = Ctx(user=world.officer)

    def referral(days_ago, *moves, **intake):
        made = factories.submit(world.partner_a, at=NOW - timedelta(days=days_ago), **intake)
        documents.upload(Ctx(user=world.partner_a), made, "id_card", "张伟-id.pdf", pdf_bytes())
        for state, days, extra in moves:
            referrals.transition(officer, made, state, at=NOW - timedelta(days=days),
                                 note="Called the buyer 张伟 at 139…", **extra)
        return made

    declined = referral(40, ("under_review", 39, {}),
                        ("declined", 30, {"reason_code": "income_insufficient"}),
                        industry="government")
    disbursed = referral(50, ("under_review", 49, {}), ("approved", 45, {}),
                         ("contract_signed", 40, {}), ("disbursed", 20, {}))
    recent = referral(12, ("withdrawn", 2, {}))
    open_one = referral(5, ("under_review", 4, {}))
    db.session.commit()
    return declined, disbursed, recent, open_one


def test_only_old_closed_referrals_are_anonymised_and_the_scorecards_stay(world, app):
    declined, disbursed, recent, open_one = _history(world)
    before = _cards()
    kept = {r.id: r.buyer_name for r in (recent, open_one)}
    files = {d.referral_id: documents.path_of(d) for d in db.session.scalars(select(Document))}
    assert all(path.exists() for path in files.values())
    db.session.commit()

    # Five years after the two oldest closed, but not the recent withdrawal.
    later = NOW + timedelta(days=5 * 365 + 2) - timedelta(days=10)
    assert retention.due(later) == [declined.id, disbursed.id]
    done = records_housekeeping(later)
    assert done["anonymised"] == 2
    db.session.expire_all()

    for gone in (declined, disbursed):
        row = db.session.get(Referral, gone.id)
        assert (row.buyer_name, row.national_id_masked, row.mobile_masked) == ("—", "—", "—")
        assert (row.national_id_enc, row.national_id_hash, row.mobile_enc, row.employer) == (
            "", "", "", "")
        assert row.anonymised_at is not None and row.status == gone.status
        assert not files[gone.id].exists()
        assert not db.session.scalars(select(Document).where(
            Document.referral_id == gone.id)).all()
        assert {e.note for e in db.session.scalars(select(ReferralEvent).where(
            ReferralEvent.referral_id == gone.id))} == {None}
        with pytest.raises(StateConflict):
            referrals.reveal(Ctx(user=world.officer), row, "identity_verification")
    for id_, name in kept.items():
        row = db.session.get(Referral, id_)
        assert row.buyer_name == name and row.anonymised_at is None and files[id_].exists()
        shown = referrals.reveal(Ctx(user=world.officer), row, "identity_verification")
        assert shown["national_id"]
    db.session.rollback()

    assert _cards() == before
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "retention.anonymise"))
    assert entry.detail["referral_ids"] == [declined.id, disbursed.id]
    assert entry.detail["referrals"] == 2 and entry.detail["documents_removed"] == 2
    assert chain.walk().ok
    assert retention.due(later) == []  # done once


def test_the_bank_page_of_an_anonymised_referral_still_opens(world, as_user):
    declined, *_ = _history(world)
    retention.anonymise_batch(Ctx(user=None), NOW + timedelta(days=6 * 365))
    db.session.commit()
    page = as_user(world.officer).get(f"/bank/referrals/{declined.id}")
    assert page.status_code == 200 and "张伟" not in page.get_data(as_text=True)


def test_the_command_counts_what_is_due_and_can_be_switched_off(world, app, monkeypatch):
    cli = app.test_cli_runner()
    _history(world)
    result = cli.invoke(args=["retention", "run", "--dry-run"])
    assert result.exit_code == 0 and "0 referrals closed before" in result.output
    monkeypatch.setitem(app.config, "RETENTION_YEARS", 0)
    assert "Retention is off" in cli.invoke(args=["retention", "run"]).output
