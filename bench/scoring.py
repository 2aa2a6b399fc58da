"""Partner scorecards at scale: 500 partners and 10k / 100k / 1M referrals with history.

Seeds by bulk SQL (executemany on SQLite, COPY on PostgreSQL; not the services), then measures
the full `scores recompute` and the channel manager's cockpit page (median and p95 through the
Flask test client, which reads the stored snapshots only).

    python -m bench scoring                      # bounded: 10k and 100k on SQLite (+ PostgreSQL
                                                 # when BENCH_POSTGRES_URL is set)
    python -m bench.scoring --sizes 10000,100000,1000000 \\
        --postgres postgresql+psycopg://postgres@127.0.0.1:5432/helper_f

BENCH_SCORING_SIZES and BENCH_SCORING_FULL=1 (adds 1,000,000) steer the `python -m bench` run.
Targets: full recompute under 60 s, cockpit median and p95 under 300 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

TARGET_RECOMPUTE_S = 60
TARGET_PAGE_MS = 300
PARTNERS = 500
PASSWORD = "bench-password-0123"  # noqa: S105 — a throwaway bench database
KINDS = ["real_estate_developer", "property_broker", "car_dealer", "car_manufacturer",
         "study_abroad_agency", "retail_mall", "law_firm", "appraiser", "guarantee_company",
         "credit_rating_agency", "insurer"]
PRODUCT_OF = {"real_estate_developer": "housing_mortgage", "property_broker": "housing_mortgage",
              "car_dealer": "auto_loan", "car_manufacturer": "auto_loan",
              "study_abroad_agency": "study_abroad_loan"}
INDUSTRIES = {1: ["government", "education_science_culture_health", "finance_insurance",
                  "post_telecom", "utilities", "industry_transport", "military"],
              2: ["commerce_trade", "real_estate_construction", "agriculture", "social_services"],
              3: ["other"]}
CLOCK = {"submitted": "bank", "documents_requested": "partner", "under_review": "bank",
         "approved": "bank", "contract_signed": "bank", "conflict": "bank"}
HISTORY_DAYS = 730
REF_COLUMNS = ["id", "org_id", "product_code", "external_ref", "buyer_name", "national_id_hash",
               "national_id_enc", "national_id_masked", "mobile_enc", "mobile_masked",
               "employer", "industry", "customer_class", "monthly_income", "amount",
               "term_months", "consent_notice_version", "consent_obtained_at", "status",
               "clock", "status_changed_at", "bank_seconds", "partner_seconds",
               "ever_documents_requested", "decline_reason", "submitted_at", "decided_at",
               "disbursed_at", "closed_at", "version", "buyer_name_key", "external_ref_key",
               "bank_clock_origin"]
EVENT_COLUMNS = ["referral_id", "at", "from_state", "to_state", "clock", "reason_code"]
LOAN_COLUMNS = ["referral_id", "org_id", "as_of", "days_on_book", "outstanding",
                "days_past_due", "status", "month_latest", "is_latest", "imported_at"]


# --- synthetic history ------------------------------------------------------------------------

class Partner:
    def __init__(self, rng: random.Random, org_id: int, kind: str):
        self.id = org_id
        self.product = PRODUCT_OF.get(kind, "consumer_loan")
        self.volume = rng.lognormvariate(0, 1.0)
        self.approve = min(0.97, max(0.25, rng.gauss(0.70, 0.12)))
        self.docs = min(0.8, max(0.02, rng.gauss(0.30, 0.15)))
        self.class1 = min(0.9, max(0.05, rng.gauss(0.42, 0.15)))
        self.conflict = max(0.0, rng.gauss(0.03, 0.02))
        self.bad = max(0.0, rng.gauss(0.03, 0.02))
        self.partner_hours = rng.uniform(12, 120)
        self.bank_hours = rng.uniform(10, 40)


def _path(rng: random.Random, p: Partner, start: datetime, now: datetime):
    """A referral's moves [(state, at, reason)] from submission, cut at `now`."""
    moves = []
    at = start
    state = "submitted"
    if rng.random() < p.conflict:
        state = "conflict"
    moves.append((state, at, None))

    def go(to, hours, reason=None):
        nonlocal at, state
        nxt = at + timedelta(hours=hours)
        if nxt >= now:
            return False
        at, state = nxt, to
        moves.append((to, at, reason))
        return True

    def bank():
        return rng.expovariate(1 / p.bank_hours)

    if state == "conflict":
        if rng.random() < 0.7:
            go("rejected_duplicate", bank() * 2)
            return moves
        if not go("submitted", bank() * 2):
            return moves
    if rng.random() < 0.03:
        go("withdrawn", bank())
        return moves
    if rng.random() < p.docs:
        if not go("documents_requested", bank()):
            return moves
        r = rng.random()
        if r < 0.06:
            go("expired", 24 * 30)
            return moves
        if r < 0.10:
            go("withdrawn", rng.expovariate(1 / p.partner_hours))
            return moves
        if not go("under_review", rng.expovariate(1 / p.partner_hours)):
            return moves
    elif not go("under_review", bank()):
        return moves
    if rng.random() < p.docs / 3:
        if not go("documents_requested", bank()):
            return moves
        if not go("under_review", rng.expovariate(1 / p.partner_hours)):
            return moves
    if rng.random() > p.approve:
        go("declined", bank(), "credit_policy")
        return moves
    if not go("approved", bank()):
        return moves
    if rng.random() < 0.08:
        go("withdrawn", bank() * 3)
        return moves
    if not go("contract_signed", bank() * 2):
        return moves
    go("disbursed", bank() * 2)
    return moves


def _referral(rng, rid: int, p: Partner, now: datetime):
    submitted = now - timedelta(seconds=rng.uniform(0, HISTORY_DAYS * 86400))
    moves = _path(rng, p, submitted, now)
    bank_s = partner_s = 0
    decided = disbursed = closed = None
    ever_docs = False
    prev_state, prev_at = moves[0][0], moves[0][1]
    events = [(rid, submitted, None, prev_state, CLOCK.get(prev_state), None)]
    decline = None
    for state, at, reason in moves[1:]:
        elapsed = int((at - prev_at).total_seconds())
        if CLOCK.get(prev_state) == "bank":
            bank_s += elapsed
        elif CLOCK.get(prev_state) == "partner":
            partner_s += elapsed
        if state == "documents_requested":
            ever_docs = True
        if state in ("approved", "declined") and decided is None:
            decided = at
        if state == "declined":
            decline = reason
        if state == "disbursed":
            disbursed = at
        if state not in CLOCK:
            closed = at
        events.append((rid, at, prev_state, state, CLOCK.get(state), reason))
        prev_state, prev_at = state, at
    klass = 1 if rng.random() < p.class1 else (2 if rng.random() < 0.57 else 3)
    industry = rng.choice(INDUSTRIES[klass])
    amount = round(rng.uniform(50_000, 2_000_000) / 1000) * 1000
    row = (rid, p.id, p.product, f"B{rid}", "测试客户", f"{rng.getrandbits(128):032x}{rid:032x}",
           "bench", "1101**********1234", "bench", "139****0000", "bench employer", industry,
           klass, 20000, amount, 120, "bench", submitted, prev_state, CLOCK.get(prev_state),
           prev_at, bank_s, partner_s, ever_docs, decline, submitted, decided, disbursed, closed,
           1, "测试客户", f"b{rid}",  # the search keys (services/referral_search.search_key)
           prev_at - timedelta(seconds=bank_s))  # models.referral.clock_origin
    return row, events, klass


def _statements(rng, rid: int, p: Partner, klass: int, disbursed: datetime, now: datetime,
                amount: float):
    """Month-end statements of a disbursed loan, for the last 13 months."""
    bad = rng.random() < p.bad * (0.5, 1.0, 3.0)[klass - 1]
    default_month = rng.randint(1, 12) if bad else None
    closes_after = rng.randint(6, 60) if rng.random() < 0.2 else None
    horizon = (now - timedelta(days=400)).date()
    first = disbursed.date()
    out = []
    month = 1
    y, m = first.year, first.month
    dpd = 0
    while True:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        as_of = date(y, m, 1) - timedelta(days=1)
        if as_of <= first:
            continue
        if as_of > now.date():
            break
        if closes_after and month >= closes_after:
            if as_of >= horizon:
                out.append([rid, p.id, as_of, (as_of - first).days, 0, 0, "closed", True, False])
            break
        if default_month is not None and month >= default_month:
            dpd = dpd + 30 if dpd else 31
        status = "npl" if dpd >= 90 else ("delinquent" if dpd > 0 else "current")
        if as_of >= horizon:
            outstanding = round(amount * max(0.05, 1 - month / 120), 2)
            out.append([rid, p.id, as_of, (as_of - first).days, outstanding, dpd, status, True,
                        False])
        month += 1
    if out:
        out[-1][-1] = True  # the loan's latest statement
    return out


# --- bulk writes --------------------------------------------------------------------------------

def _sqlite_ts(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _writer(engine):
    raw = engine.raw_connection()
    dialect = engine.dialect.name

    def write(table: str, columns: list[str], rows: list[tuple]):
        if not rows:
            return
        if dialect == "sqlite":
            marks = ", ".join("?" for _ in columns)
            cur = raw.cursor()
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                            [tuple(_sqlite_ts(v) for v in row) for row in rows])
            cur.close()
        else:
            cur = raw.cursor()
            with cur.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
            cur.close()

    return raw, write


def seed(app, size: int, seed_value: int = 2026, big_partner_share: float | None = None) -> dict:
    """500 partners and `size` referrals with their timelines and loan statements; with
    `big_partner_share`, the first partner brings that share of all referrals (a provincial
    channel has one or two partners far larger than the rest)."""
    from sqlalchemy import text

    from models import Organization, User
    from portal.extensions import db
    from portal.services import accounts

    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with app.app_context():
        bank = accounts.bank_org()
        hashed = accounts.hash_password(PASSWORD)
        managers = []
        for i in range(10):
            user = User(email=f"manager{i}@bank.bench", name=f"Manager {i}",
                        role="channel_manager", org_id=bank.id, password_hash=hashed)
            db.session.add(user)
            managers.append(user)
        db.session.add(User(email="admin@bank.bench", name="Admin", role="admin",
                            org_id=bank.id, password_hash=hashed))
        db.session.flush()
        partners = []
        for i in range(PARTNERS):
            kind = rng.choice(KINDS)
            org = Organization(code=f"P{i:04d}", name=f"Partner {i:04d}", kind=kind,
                               status="active",
                               channel_manager_id=rng.choice(managers).id)
            db.session.add(org)
            db.session.flush()
            partners.append(Partner(rng, org.id, kind))
        db.session.commit()
        if big_partner_share:
            rest = sum(p.volume for p in partners[1:])
            partners[0].volume = rest * big_partner_share / (1 - big_partner_share)
        total_volume = sum(p.volume for p in partners)
        cumulative = []
        acc = 0.0
        for p in partners:
            acc += p.volume / total_volume
            cumulative.append(acc)
        raw, write = _writer(db.engine)
        counts = {"referrals": 0, "events": 0, "statements": 0}
        import bisect

        batch, events, loans = [], [], []
        for rid in range(1, size + 1):
            p = partners[min(len(partners) - 1, bisect.bisect_left(cumulative, rng.random()))]
            row, evs, klass = _referral(rng, rid, p, now)
            batch.append(row)
            events.extend(evs)
            if row[27] is not None:  # disbursed_at
                loans.extend(_statements(rng, rid, p, klass, row[27], now, row[14]))
            if len(batch) >= 20_000:
                write("referral", REF_COLUMNS, batch)
                write("referral_event", EVENT_COLUMNS, events)
                write("loan_performance", LOAN_COLUMNS, [(*lo, now) for lo in loans])
                counts["referrals"] += len(batch)
                counts["events"] += len(events)
                counts["statements"] += len(loans)
                batch, events, loans = [], [], []
        write("referral", REF_COLUMNS, batch)
        write("referral_event", EVENT_COLUMNS, events)
        write("loan_performance", LOAN_COLUMNS, [(*lo, now) for lo in loans])
        counts["referrals"] += len(batch)
        counts["events"] += len(events)
        counts["statements"] += len(loans)
        raw.commit()
        raw.close()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT setval(pg_get_serial_sequence('referral', 'id'), "
                                    "(SELECT MAX(id) FROM referral))"))
        db.session.commit()
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


# --- measurements -------------------------------------------------------------------------------

def _ms(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {"median_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(p95 * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1),
            "n": len(ordered)}


def _make_app(url: str, tmp: Path):
    from portal import create_app

    return create_app({
        "PORTAL_ENV": "testing", "TESTING": True,
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": url, "UPLOAD_DIR": str(tmp / "uploads"),
        "WTF_CSRF_ENABLED": False, "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_ENABLED": False,
    })


def _fresh_schema(app) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import text

    from portal.extensions import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
        db.session.remove()
        db.engine.dispose()


def measure(url: str, size: int, pages: int, tmp: Path) -> dict:
    from models import ScorecardSnapshot
    from portal.extensions import db
    from portal.services import scoring

    app = _make_app(url, tmp)
    _fresh_schema(app)
    seeded = seed(app, size)
    with app.app_context():
        started = time.perf_counter()
        result = scoring.recompute_all()
        db.session.commit()
        recompute = time.perf_counter() - started
        org_id = db.session.scalar(db.select(db.func.min(ScorecardSnapshot.org_id)))
        started = time.perf_counter()
        scoring.recompute_org(org_id)
        db.session.commit()
        one_org = time.perf_counter() - started
        db.session.remove()
    timings = {"cockpit": [], "cockpit_sorted": [], "detail": []}
    client = app.test_client()
    with app.app_context():
        response = client.post("/login", data={"email": "manager0@bank.bench",
                                               "password": PASSWORD})
        assert response.status_code == 302, response.status_code
        urls = {"cockpit": "/bank/scorecards",
                "cockpit_sorted": "/bank/scorecards?sort=approval_rate&dir=asc&type=car_dealer",
                "detail": f"/bank/scorecards/{org_id}"}
        for name, path in urls.items():
            for _ in range(2):  # warm-up
                assert client.get(path).status_code == 200, path
            for _ in range(pages):
                started = time.perf_counter()
                response = client.get(path)
                timings[name].append(time.perf_counter() - started)
                assert response.status_code == 200
        db.session.remove()
        db.engine.dispose()
    return {"seed": seeded, "recompute_s": round(recompute, 2),
            "snapshots": result.snapshots, "recompute_one_org_s": round(one_org, 3),
            **{f"{name}_page": _ms(samples) for name, samples in timings.items()}}


def run(n: int = 10, sizes: list[int] | None = None, postgres: str | None = None,
        sqlite: bool = True) -> dict:
    if sizes is None:
        raw = os.environ.get("BENCH_SCORING_SIZES", "10000,100000")
        sizes = [int(s) for s in raw.split(",") if s.strip()]
        if os.environ.get("BENCH_SCORING_FULL") == "1" and 1_000_000 not in sizes:
            sizes.append(1_000_000)
    postgres = postgres or os.environ.get("BENCH_POSTGRES_URL")
    pages = max(n, 20)
    results: dict = {"partners": PARTNERS, "targets": {"recompute_s": TARGET_RECOMPUTE_S,
                                                       "page_ms": TARGET_PAGE_MS}, "runs": []}
    databases = ([("sqlite", None)] if sqlite else []) + (
        [("postgresql", postgres)] if postgres else [])
    for name, url in databases:
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
                root = Path(tmp)
                db_url = url or f"sqlite:///{root / 'bench.db'}"
                print(f"-- {name}: {PARTNERS} partners, {size:,} referrals", flush=True)
                outcome = measure(db_url, size, pages, root)
                outcome.update(database=name, referrals=size)
                results["runs"].append(outcome)
                _print(outcome)
    return results


def _print(o: dict) -> None:
    ok = "ok" if o["recompute_s"] < TARGET_RECOMPUTE_S else "OVER"
    s = o["seed"]
    print(f"   seeded {s['referrals']:,} referrals, {s['events']:,} events, "
          f"{s['statements']:,} loan statements in {s['seconds']} s")
    print(f"   full recompute {o['recompute_s']:7.2f} s  [{ok} < {TARGET_RECOMPUTE_S} s]"
          f"   one partner {o['recompute_one_org_s'] * 1000:.0f} ms")
    for name in ("cockpit", "cockpit_sorted", "detail"):
        t = o[f"{name}_page"]
        ok = "ok" if t["p95_ms"] < TARGET_PAGE_MS else "OVER"
        print(f"   {name:15s} median {t['median_ms']:6.1f} ms  p95 {t['p95_ms']:6.1f} ms"
              f"  [{ok} < {TARGET_PAGE_MS} ms]")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scoring", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000",
                        help="referral counts, comma separated (e.g. 10000,100000,1000000)")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL"),
                        help="also run on this PostgreSQL database (its schema is dropped!)")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-only", action="store_true")
    parser.add_argument("--pages", type=int, default=20, help="page requests per measurement")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    result = run(args.pages, sizes, None if args.sqlite_only else args.postgres,
                 sqlite=not args.postgres_only)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
