"""History imports through the job runner (the path the admin page's worker and the CLI take):
rows per second for referral histories and for loan statements, on a fresh SQLite database (and
PostgreSQL when BENCH_POSTGRES_URL is set).

    python -m bench imports                 # 5,000 history rows, then their loan statements
    BENCH_IMPORT_ROWS=50000 python -m bench imports
    BENCH_IMPORT_ROWS=1000000 BENCH_IMPORT_STATEMENTS=1000000 python -m bench imports  # the aim

The issue 15 aim is a million rows in under ten minutes (1,667 rows/s).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from stdnum.cn import ric

PASSWORD = "bench-password-0123"  # noqa: S105 — a throwaway bench database
HEADER = ("org_code,external_ref,product,buyer_name,national_id,mobile,industry,monthly_income,"
          "amount,term_months,submitted_at,status_history")
HISTORIES = [
    "",
    "under_review@{d}T10:00:00+08:00",
    "under_review@{d}T10:00:00+08:00|declined@{d}T16:00:00+08:00",
    "under_review@{d}T10:00:00+08:00|approved@{d}T12:00:00+08:00|contract_signed@{d}T14:00:00"
    "+08:00|disbursed@{d}T16:00:00+08:00",
]


def national_id(i: int) -> str:
    born = (date(1960, 1, 1) + timedelta(days=i // 1000)).strftime("%Y%m%d")
    body = f"110105{born}{i % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def history_csv(path: Path, n: int, orgs: list[str], start: date) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        for i in range(n):
            d = (start + timedelta(days=i * 300 // max(n, 1))).isoformat()
            history = HISTORIES[i % len(HISTORIES)].format(d=d)
            f.write(f"{orgs[i % len(orgs)]},R-{i},auto_loan,买家{i},{national_id(i)},"
                    f"139{i:08d},government,20000,150000,36,{d}T09:00:00+08:00,{history}\n")


def loans_csv(path: Path, n: int, orgs: list[str], start: date) -> int:
    """Monthly statements of the disbursed loans among `n` histories (a quarter of them): three
    each, or as many as make BENCH_IMPORT_STATEMENTS rows (a million: four each of 250,000)."""
    disbursed = sum(1 for i in range(n) if i % len(HISTORIES) == 3)
    wanted = int(os.environ.get("BENCH_IMPORT_STATEMENTS", 3 * disbursed))
    months = max(1, -(-wanted // max(disbursed, 1)))
    rows = 0
    with path.open("w", encoding="utf-8") as f:
        f.write("org_code,external_ref,as_of,outstanding,days_past_due,status\n")
        for i in range(n):
            if i % len(HISTORIES) != 3:
                continue
            d = start + timedelta(days=i * 300 // max(n, 1))
            for month in range(1, months + 1):
                as_of = d + timedelta(days=30 * month)
                f.write(f"{orgs[i % len(orgs)]},R-{i},{as_of.isoformat()},"
                        f"{150000 - 4000 * month},0,current\n")
                rows += 1
    return rows


def _measure(url: str, n: int) -> dict:
    from flask_migrate import upgrade

    from portal import create_app, import_runner
    from portal.extensions import db
    from portal.services import Ctx, accounts, imports
    from portal.unit_of_work import unit_of_work

    folder = Path(tempfile.mkdtemp(prefix="bench-imports-"))
    app = create_app({"PORTAL_ENV": "testing", "SECRET_KEY": "bench-secret-" + "x" * 40,
                      "SQLALCHEMY_DATABASE_URI": url or f"sqlite:///{folder / 'bench.db'}",
                      "UPLOAD_DIR": str(folder / "uploads"), "RATELIMIT_STORAGE_URI": "memory://"})
    result = {}
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        upgrade()
        codes = [f"BENCH{k}" for k in range(20)]
        with unit_of_work():
            for code in codes:
                accounts.create_org(Ctx(user=None, ip="bench"), code=code, name=code,
                                    kind="car_dealer")
        # Histories over 300 days ending 160 days ago: statements up to five months after a
        # disbursement are still dated in the past (a later one the import refuses as future).
        start = date.today() - timedelta(days=460)
        for kind, write in (("referrals", history_csv), ("loans", loans_csv)):
            path = folder / f"{kind}.csv"
            rows = write(path, n, codes, start) or n
            with unit_of_work():
                job_id = imports.jobs.create(Ctx(user=None, ip="bench"), kind, str(path),
                                             path.name, owns_file=False, recompute=False,
                                             hold=True).id
            began = time.perf_counter()
            import_runner.run(job_id, held=True)
            seconds = time.perf_counter() - began
            with unit_of_work():
                job = db.session.get(imports.jobs.ImportBatch, job_id)
                summary = imports.jobs.summary(job)
            result[kind] = {"rows": rows, "seconds": round(seconds, 1),
                            "rows_per_second": round(rows / seconds), "summary": summary}
            print(f"  {db.engine.dialect.name} {kind}: {rows} rows in {seconds:.1f} s = "
                  f"{rows / seconds:,.0f} rows/s ({summary})")
        db.session.remove()
        db.engine.dispose()
    return result


def run(_n: int = 1) -> dict:
    n = int(os.environ.get("BENCH_IMPORT_ROWS", "5000"))
    out = {"sqlite": _measure("", n)}
    if os.environ.get("BENCH_POSTGRES_URL"):
        out["postgresql"] = _measure(os.environ["BENCH_POSTGRES_URL"], n)
    return out
