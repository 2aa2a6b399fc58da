"""History imports: referral histories and loan statements, replayed, malformed, partly wrong;
through the service, the CLI and the admin upload page."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import (
    Agreement,
    ImportBatch,
    ImportReject,
    LoanPerformance,
    Referral,
    ReferralEvent,
)
from portal import import_runner
from portal.extensions import db
from portal.services import Ctx, imports
from tests import factories

SYSTEM = Ctx(user=None, ip="test")
HEADER = ("org_code,external_ref,product,buyer_name,national_id,mobile,industry,monthly_income,"
          "amount,term_months,submitted_at,status_history")


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def row(org="PARTNERA", ref="H-1", product="housing_mortgage", name="王芳", nid=None,
        mobile=None, industry="government", income="20000", amount="600000", term="240",
        submitted="2026-03-01T09:00:00+08:00",
        history="under_review@2026-03-02T10:00:00+08:00|approved@2026-03-04T16:30:00+08:00"):
    nid = nid or factories.national_id()
    mobile = mobile or factories.mobile()
    return ",".join([org, ref, product, name, nid, mobile, industry, income, amount, term,
                     submitted, history])


def csv_bytes(*rows, header=HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_referral_history_is_imported_through_the_lifecycle(world):
    data = csv_bytes(
        row(ref="H-1"),
        row(ref="H-2", industry="other", history="documents_requested@2026-03-01T12:00:00+08:00"
            "|under_review@2026-03-03T12:00:00+08:00|declined@2026-03-05T09:00:00+08:00"),
        row(org="PARTNERB", ref="H-1", product="auto_loan", amount="150000", term="36",
            history="under_review@2026-03-01T10:00:00+08:00|approved@2026-03-01T18:00:00+08:00"
            "|contract_signed@2026-03-02T10:00:00+08:00|disbursed@2026-03-03T10:00:00+08:00"),
        row(ref="H-3", history=""),
    )
    report = imports.import_referrals(SYSTEM, data, "history.csv")
    assert (report.created, report.skipped, report.rejected) == (4, 0, 0), report.rejects
    h1 = db.session.scalar(select(Referral).where(Referral.external_ref == "H-1",
                                                  Referral.org_id == world.org_a.id))
    assert h1.status == "approved"
    assert h1.submitted_at == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    assert h1.decided_at == datetime(2026, 3, 4, 8, 30, tzinfo=UTC)
    assert h1.bank_seconds == (3 * 24 + 7.5) * 3600  # 1 March 09:00 to 4 March 16:30
    assert h1.asset_price is None  # the history had no asset details
    assert [e.to_state for e in h1.events] == ["submitted", "under_review", "approved"]
    h2 = db.session.scalar(select(Referral).where(Referral.external_ref == "H-2"))
    assert h2.status == "declined" and h2.decline_reason == "other"
    assert h2.ever_documents_requested and h2.partner_seconds == 48 * 3600
    assert h2.customer_class == 3
    b1 = db.session.scalar(select(Referral).where(Referral.org_id == world.org_b.id))
    assert b1.status == "disbursed" and b1.closed_at is not None
    h3 = db.session.scalar(select(Referral).where(Referral.external_ref == "H-3"))
    assert h3.status == "submitted"
    batch = db.session.get(ImportBatch, report.batch_id)
    assert (batch.kind, batch.created, batch.filename) == ("referrals", 4, "history.csv")


def test_a_replay_skips_what_is_there(world):
    data = csv_bytes(row(ref="H-1"), row(ref="H-2"))
    first = imports.import_referrals(SYSTEM, data)
    assert first.created == 2
    events = count(ReferralEvent)
    again = imports.import_referrals(SYSTEM, data)
    assert (again.created, again.skipped, again.rejected) == (0, 2, 0)
    assert count(Referral) == 2 and count(ReferralEvent) == events


@pytest.mark.parametrize("data,why", [
    (b"org_code,external_ref\nPARTNERA,H-1\n", "missing column"),
    (csv_bytes(row(), header=HEADER + ",colour"), "unknown column"),
    (csv_bytes(row()).replace("王芳".encode(), "王芳".encode("gb18030")), "UTF-8"),
    (csv_bytes(row(ref="H-1"), row(ref="H-2") + ",extra"), "Line 3 has 13 fields"),
    (b"", "empty"),
])
def test_a_malformed_file_writes_nothing(world, data, why):
    report = imports.import_referrals(SYSTEM, data)
    assert report.malformed and why in report.malformed
    assert report.created == 0 and count(Referral) == 0
    batch = db.session.get(ImportBatch, report.batch_id)
    assert batch.malformed == report.malformed


def test_a_partly_wrong_file_imports_the_good_rows_and_reports_the_bad(world):
    data = csv_bytes(
        row(ref="OK-1"),
        row(org="NOSUCH", ref="X-1"),
        row(ref="X-2", nid="110105198506120000"),
        row(ref="X-3", history="approved@2026-03-02T10:00:00+08:00"),  # submitted -> approved
        row(ref="X-4", history="under_review@2026-02-27T10:00:00+08:00"),  # before submission
        row(ref="X-5", history="under_review@2099-01-01T10:00:00+08:00"),
        row(ref="X-6", submitted="2026-03-01 09:00"),  # no time zone
        row(ref="X-7", history="approved"),
        row(ref="OK-1"),  # repeats line 2
        row(ref="OK-2", amount="1"),  # below the product's minimum
        row(ref="OK-3"),
    )
    report = imports.import_referrals(SYSTEM, data)
    assert report.created == 2, report.rejects
    lines = dict(report.rejects)
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "NOSUCH" in lines[3]
    assert "national_id" in lines[4]
    assert "does not allow submitted → approved" in lines[5]
    assert "back in time" in lines[6]
    assert "future" in lines[7]
    assert "time zone" in lines[8]
    assert "state@time" in lines[9]
    assert "repeats line 2" in lines[10]
    assert "amount" in lines[11]
    assert {r.external_ref for r in db.session.scalars(select(Referral))} == {"OK-1", "OK-3"}


def test_a_history_that_ignores_attribution_is_rejected(world):
    buyer = factories.national_id()
    report = imports.import_referrals(SYSTEM, csv_bytes(
        row(org="PARTNERA", ref="A-1", nid=buyer, submitted="2026-03-01T09:00:00+08:00"),
        row(org="PARTNERB", ref="B-1", nid=buyer, submitted="2026-03-02T09:00:00+08:00"),
        row(org="PARTNERB", ref="B-2", submitted="2026-03-02T09:00:00+08:00",
            history="conflict@2026-03-02T09:00:00+08:00|rejected_duplicate@"
                    "2026-03-03T09:00:00+08:00"),
    ))
    lines = dict(report.rejects)
    # B's referral of A's buyer would have gone to conflict: its history must say so.
    assert "must start in conflict" in lines[3]
    assert "no other partner held" in lines[4]
    assert report.created == 1
    fixed = imports.import_referrals(SYSTEM, csv_bytes(
        row(org="PARTNERB", ref="B-1", nid=buyer, submitted="2026-03-02T09:00:00+08:00",
            history="conflict@2026-03-02T09:00:00+08:00|rejected_duplicate@"
                    "2026-03-03T09:00:00+08:00")))
    assert fixed.created == 1, fixed.rejects
    b1 = db.session.scalar(select(Referral).where(Referral.external_ref == "B-1"))
    assert b1.status == "rejected_duplicate"


def test_history_is_not_gated_by_agreements(world):
    db.session.execute(Agreement.__table__.delete())
    org = factories.OrgFactory(code="NOAGREE", agreement=False)
    db.session.commit()
    report = imports.import_referrals(SYSTEM, csv_bytes(row(org="NOAGREE", ref="N-1")))
    assert report.created == 1, report.rejects
    assert count(Referral, Referral.org_id == org.id) == 1


LOANS = "org_code,external_ref,as_of,outstanding,days_past_due,status\n"


@pytest.fixture
def disbursed(world):
    report = imports.import_referrals(SYSTEM, csv_bytes(
        row(ref="L-1", history="under_review@2026-01-02T10:00:00+08:00|approved@2026-01-04T"
            "16:30:00+08:00|contract_signed@2026-01-05T10:00:00+08:00|disbursed@2026-01-08T"
            "10:00:00+08:00", submitted="2026-01-01T09:00:00+08:00"),
        row(ref="L-2")))
    assert report.created == 2
    return report


def test_loans_import_keeps_the_latest_flags_and_is_idempotent(world, disbursed):
    data = (LOANS + "PARTNERA,L-1,2026-01-31,600000,0,current\n"
            "PARTNERA,L-1,2026-02-15,598000,0,current\n"
            "PARTNERA,L-1,2026-02-28,598000,31,delinquent\n"
            "PARTNERA,L-1,2026-03-31,597000,62,delinquent\n").encode()
    report = imports.import_loans(SYSTEM, data)
    assert (report.created, report.rejected) == (4, 0), report.rejects
    rows = {r.as_of.isoformat(): r for r in db.session.scalars(select(LoanPerformance))}
    assert [d for d, r in sorted(rows.items()) if r.month_latest] == [
        "2026-01-31", "2026-02-28", "2026-03-31"]
    assert [d for d, r in rows.items() if r.is_latest] == ["2026-03-31"]
    assert rows["2026-01-31"].days_on_book == 23
    assert rows["2026-01-31"].org_id == world.org_a.id
    again = imports.import_loans(SYSTEM, data)
    assert (again.created, again.skipped, again.updated) == (0, 4, 0)
    corrected = imports.import_loans(
        SYSTEM, (LOANS + "PARTNERA,L-1,2026-03-31,597000,92,npl\n").encode())
    assert corrected.updated == 1
    assert count(LoanPerformance) == 4
    assert db.session.scalar(select(LoanPerformance.status).where(
        LoanPerformance.is_latest)) == "npl"


def test_loans_import_reports_bad_rows(world, disbursed):
    data = (LOANS + "PARTNERA,L-1,2026-01-31,600000,0,current\n"
            "PARTNERA,NOPE,2026-01-31,1,0,current\n"
            "PARTNERA,L-2,2026-03-31,1,0,current\n"
            "PARTNERA,L-1,2025-12-31,1,0,current\n"
            "PARTNERA,L-1,31/01/2026,1,0,current\n"
            "PARTNERA,L-1,2026-02-28,-5,0,current\n"
            "PARTNERA,L-1,2026-02-28,5,x,current\n"
            "PARTNERA,L-1,2026-02-28,5,0,written_off\n"
            "PARTNERA,L-1,2026-02-28,5,0,closed\n"
            "PARTNERA,L-1,2026-01-31,600000,0,current\n").encode()
    report = imports.import_loans(SYSTEM, data)
    assert report.created == 1
    reasons = dict(report.rejects)
    assert sorted(reasons) == list(range(3, 12))
    assert "import its history first" in reasons[3]
    assert "never disbursed" in reasons[4]
    assert "before the disbursement" in reasons[5]
    assert "not a date" in reasons[6]
    assert "outstanding" in reasons[7]
    assert "days_past_due" in reasons[8]
    assert "status must be one of" in reasons[9]
    assert "closed loan" in reasons[10]
    assert "same loan and as_of as line 2" in reasons[11]
    bad_header = imports.import_loans(SYSTEM, b"org_code,external_ref\n")
    assert bad_header.malformed and count(LoanPerformance) == 1


def test_cli_imports_print_counts_and_reasons(app, world, tmp_path):
    path = tmp_path / "history.csv"
    path.write_bytes(csv_bytes(row(ref="C-1"), row(org="NOSUCH", ref="C-2")))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["referrals", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 rows: 1 created, 0 updated, 0 skipped (already imported), 1 rejected." \
        in result.output
    assert "line 3: Unknown partner organisation code NOSUCH" in result.output
    again = runner.invoke(args=["referrals", "import", str(path)])
    assert "0 created, 0 updated, 1 skipped" in again.output
    loans = tmp_path / "loans.csv"
    loans.write_bytes(b"not,a,loans,file\n")
    bad = runner.invoke(args=["loans", "import", str(loans)])
    assert bad.exit_code == 1
    assert "nothing was written" in bad.output
    recompute = runner.invoke(args=["scores", "recompute"])
    assert recompute.exit_code == 0 and "Recomputed all partners" in recompute.output


def _job_id(response) -> int:
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def test_admin_uploads_and_reads_the_report(world, as_user):
    client = as_user(world.admin)
    data = csv_bytes(row(ref="U-1"), row(ref="U-2", history="approved@2026-03-02T10:00:00"
                                                            "+08:00"))
    response = client.post("/admin/imports", data={
        "kind": "referrals", "file": (io.BytesIO(data), "upload.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    queued = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Queued" in queued and "Cancel the import" in queued
    assert import_runner.run(_job_id(response)) is False  # what the worker does
    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert "2 rows: 1 created, 0 updated, 0 skipped (already there), 1 rejected." in html
    assert "does not allow submitted → approved" in html
    assert "Cancel the import" not in html
    # Read in Chinese, the reason is in Chinese; the stored reason (and the CSV) keep the
    # worker's English and the file's column names.
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    chinese = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "推荐流程不允许 submitted → approved。" in chinese
    assert "does not allow" not in chinese
    stored = db.session.scalar(select(ImportReject.reason))
    assert "The lifecycle does not allow submitted → approved." in stored
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    assert count(Referral) == 1
    listing = client.get("/admin/imports").get_data(as_text=True)
    assert "upload.csv" in listing
    # The uploaded copy held buyers' data: it is gone with the job.
    assert not db.session.get(ImportBatch, _job_id(response)).path or not Path(
        db.session.get(ImportBatch, _job_id(response)).path).exists()


@pytest.mark.parametrize("who", ["manager", "officer", "partner_a"])
def test_only_admins_upload(world, as_user, who):
    client = as_user(getattr(world, who))
    assert client.get("/admin/imports").status_code == 403
    response = client.post("/admin/imports", data={
        "kind": "referrals", "file": (io.BytesIO(csv_bytes(row())), "x.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 403
    assert count(Referral) == 0


def test_the_upload_page_alone_takes_files_past_the_request_limit_and_gzip(
        app, world, as_user, monkeypatch):
    # No row limit: the file goes to disk and the worker streams it. Only this page may send
    # more than MAX_CONTENT_LENGTH (a million rows is far more than 12 MB).
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 2000)
    client = as_user(world.admin)
    rows = [row(ref=f"B-{i}", nid=factories.national_id(900 + i)) for i in range(30)]
    data = gzip.compress(csv_bytes(*rows))
    assert len(csv_bytes(*rows)) > 2000
    response = client.post("/admin/imports", data={
        "kind": "referrals", "file": (io.BytesIO(csv_bytes(*rows)), "big.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    import_runner.run(_job_id(response))
    assert count(Referral) == 30
    gzipped = client.post("/admin/imports", data={
        "kind": "referrals", "file": (io.BytesIO(data), "big.csv.gz")},
        content_type="multipart/form-data")
    import_runner.run(_job_id(gzipped))
    job = db.session.get(ImportBatch, _job_id(gzipped))
    assert (job.status, job.total_rows, job.skipped) == ("done", 30, 30)
    # Anywhere else the limit holds.
    elsewhere = client.post("/admin/users", data={"email": "x" * 3000})
    assert elsewhere.status_code == 413


def test_a_row_reports_its_first_bad_column_in_column_order(world, disbursed):
    # The row models validate every column; the report gives the first failure, as before.
    loans = imports.import_loans(SYSTEM, (LOANS + "NOSUCH,L-1,31/01/2026,-5,x,gone\n"
                                          "PARTNERA,L-1,31/01/2026,-5,x,gone\n").encode())
    reasons = dict(loans.rejects)
    assert "Unknown partner organisation code NOSUCH" in reasons[2]
    assert "not a date" in reasons[3]
    history = imports.import_referrals(SYSTEM, csv_bytes(
        row(org="NOSUCH", ref="", submitted="yesterday", mobile="1"),
        row(ref="H-9", submitted="yesterday", mobile="1")))
    reasons = dict(history.rejects)
    assert "Unknown partner organisation code NOSUCH" in reasons[2]
    assert "submitted_at is not an ISO-8601 time" in reasons[3]


def test_a_forged_upload_without_the_form_token_queues_nothing(app, world, as_user,
                                                               monkeypatch):
    # The upload page checks its form's CSRF token itself (the app-wide check would read the
    # body before the page raised the size limit): a cross-site POST is still refused.
    client = as_user(world.admin)
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    saved = set(Path(app.config["UPLOAD_DIR"]).rglob("*"))
    response = client.post("/admin/imports", data={
        "kind": "referrals", "file": (io.BytesIO(csv_bytes(row())), "forged.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0
    assert set(Path(app.config["UPLOAD_DIR"]).rglob("*")) == saved
