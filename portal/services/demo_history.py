"""A year of demo referrals and loans whose customer classes and defaults follow the source
study (shared/seed): class 1 about 42% of borrowers with NPL under 1%; class 2 about 33% near the
average, real estate and construction over 2%; class 3 about 25% of borrowers, 18.4% of the
balance and NPL about 6.8%. So the portfolio page tells the study's story on first look.

Planned first (who, when, which class, which outcome, which loans fall behind), then written
through the real services: each referral submitted after its buyer's consent and moved along the
lifecycle; the month-end statements inserted as the loans import keeps them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert

from models import LoanPerformance

from ..bank_time import bank_date
from ..extensions import db
from . import Ctx, documents, referrals
from .lifecycle import State
from .reference import INDUSTRY_CLASS

# Per partner: referrals in the year, and its buyers' class mix (the study's 42/33/25 overall:
# a study-abroad agency's families are mostly civil servants and teachers, a car dealer's less).
VOLUME = {"SUNRISE": (150, (0.45, 0.35, 0.20)), "HARBOR": (110, (0.35, 0.33, 0.32)),
          "NORTHSTAR": (130, (0.32, 0.34, 0.34)), "BRIDGE": (90, (0.60, 0.28, 0.12))}
# Per class: the share of its loans non-performing and 30-89 days past due on the last statement.
NPL = {1: 0.006, 2: 0.027, 3: 0.068}
LATE = {1: 0.01, 2: 0.025, 3: 0.06}
CLASS3_BALANCE_SHARE = 0.184
CLASS_INDUSTRIES = {c: [i for i, k in INDUSTRY_CLASS.items() if k == c] for c in (1, 2, 3)}
# Product, base amount range (step 10,000), term, asset description.
PRODUCT = {
    "SUNRISE": ("housing_mortgage", (50, 120), 240, "Unit {n}, Sunrise Garden Phase 2"),
    "HARBOR": ("housing_mortgage", (40, 100), 240, "Resale flat {n}, Harbor district"),
    "NORTHSTAR": ("auto_loan", (8, 25), 36, "Northstar SUV, order {n}"),
    "BRIDGE": ("study_abroad_loan", (15, 50), 60, None),
}
# Per product: the annual rate the demo approves at, and the condition it sets (the partner
# reads it). No random draw: the rest of the history stays as it was planned.
RATES = {"housing_mortgage": "3.55", "auto_loan": "4.20", "study_abroad_loan": "4.35"}
CONDITIONS = {
    "housing_mortgage": "签约前提供共同借款人收入证明 / Co-borrower's income proof before signing",
    "auto_loan": "放款前办理车辆抵押登记 / Vehicle pledge registered before disbursement",
    "study_abroad_loan": "放款前提供签证 / Student visa before disbursement",
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
         "明", "超", "秀英", "华", "慧"]
EMPLOYERS = {1: ["市第一中学", "国家电网", "市人民医院", "中国移动", "市税务局"],
             2: ["华信贸易有限公司", "城建集团", "绿野农业合作社", "阳光家政服务"],
             3: ["个体经营", "自由职业"]}


@dataclass
class Planned:
    org: str
    n: int
    submitted: datetime
    path: list[tuple[str, float]]  # (state, hours after the previous move)
    cls: int = 3
    industry: str = "other"
    base: float = 0.0  # the amount before class 3's scaling
    amount: int = 0
    falls_behind: str | None = None  # "npl" | "late"
    disbursed: datetime | None = None
    statements: list[tuple[date, float, int, str]] = field(default_factory=list)


def _path(rng: random.Random, age_days: float) -> list[tuple[str, float]]:
    """Where a referral submitted `age_days` ago has got to (hours between the moves)."""
    docs = rng.random() < 0.3
    review = [("under_review", rng.uniform(4, 30))]
    if docs:
        review += [("documents_requested", rng.uniform(4, 24)),
                   ("under_review", rng.uniform(20, 90))]
    to_loan = [("approved", rng.uniform(20, 70)), ("contract_signed", rng.uniform(30, 96)),
               ("disbursed", rng.uniform(24, 72))]
    if age_days > 30:
        roll = rng.random()
        if roll < 0.70:
            return review + to_loan
        if roll < 0.86:
            return review + [("declined", rng.uniform(10, 60))]
        if roll < 0.94:
            return [("withdrawn", rng.uniform(30, 200))]
        return review + to_loan[:2]  # approved and signed, disbursement pending
    # Recent: still on the way, each stage about as likely.
    return (review + to_loan)[:rng.randint(0, len(review) + 2)]


def plan(rng: random.Random, now: datetime) -> list[Planned]:
    out: list[Planned] = []
    for code, (count, mix) in VOLUME.items():
        mine = []
        for n in range(1, count + 1):
            age = rng.uniform(1, 365) if n > 6 else rng.uniform(0.2, 5)  # a few in this week
            submitted = now - timedelta(days=age)
            p = Planned(code, n, submitted, _path(rng, age))
            at = submitted
            for state, hours in p.path:
                at += timedelta(hours=hours)
                if state == "disbursed":
                    p.disbursed = at
            mine.append(p)
        loans = [p for p in mine if p.disbursed and p.disbursed < now]
        others = [p for p in mine if p not in loans]
        # The loans get the partner's mix exactly; the rest draw from it.
        quota = [c for c, share in zip((1, 2, 3), mix, strict=True)
                 for _ in range(round(share * len(loans)))]
        quota = (quota + [3] * len(loans))[:len(loans)]
        rng.shuffle(quota)
        for p, cls in zip(loans, quota, strict=True):
            p.cls = cls
        for p in others:
            p.cls = rng.choices((1, 2, 3), weights=mix)[0]
        out += mine
    for p in out:
        p.industry = _industry(rng, p.cls)
        low, high = PRODUCT[p.org][1]
        p.base = rng.randint(low, high) * 10_000
    _fall_behind(rng, [p for p in out if p.disbursed and p.disbursed < now], now)
    _amounts(out, now)
    return out


def _industry(rng: random.Random, cls: int) -> str:
    if cls == 2:  # real estate and construction: about a third of class 2
        return "real_estate_construction" if rng.random() < 0.33 else rng.choice(
            ["commerce_trade", "agriculture", "social_services"])
    return rng.choice(CLASS_INDUSTRIES[cls])


def _months_on_book(p: Planned, now: datetime) -> int:
    start, today = bank_date(p.disbursed), bank_date(now)
    return (today.year - start.year) * 12 + today.month - start.month


def _fall_behind(rng: random.Random, loans: list[Planned], now: datetime) -> None:
    """Which loans are non-performing and 30-89 days late on their last statement, by class;
    in class 2, real estate and construction takes its share first (over 2%, as in the study)."""
    for cls in (1, 2, 3):
        mine = [p for p in loans if p.cls == cls and _months_on_book(p, now) >= 1]
        seasoned = [p for p in mine if _months_on_book(p, now) >= 5]
        rng.shuffle(seasoned)
        npl = max(1, round(NPL[cls] * len(mine)))
        if cls == 2:  # about half of class 2's defaults are in real estate and construction
            estate = [p for p in seasoned if p.industry == "real_estate_construction"]
            rest = [p for p in seasoned if p not in estate]
            seasoned = estate[:(npl + 1) // 2] + rest + estate[(npl + 1) // 2:]
        for p in seasoned[:npl]:
            p.falls_behind = "npl"
        late = [p for p in mine if p.falls_behind is None and _months_on_book(p, now) >= 2]
        rng.shuffle(late)
        for p in late[:round(LATE[cls] * len(mine))]:
            p.falls_behind = "late"


def _statements(p: Planned, now: datetime, amount: float) -> list[tuple[date, float, int, str]]:
    """Month-end statements from the disbursement to the last month end before today."""
    term = PRODUCT[p.org][2]
    start, today = bank_date(p.disbursed), bank_date(now)
    months = _months_on_book(p, now)
    out = []
    paid = 0
    for m in range(1, months + 1):
        y, mo = divmod(start.year * 12 + start.month - 1 + m, 12)
        as_of = date(y, mo + 1, 1) - timedelta(days=1)  # the end of the month before
        if as_of >= today or as_of <= start:
            continue
        behind = 0
        if p.falls_behind == "npl":
            behind = max(0, m - (months - 4))  # four months behind by the last statement
        elif p.falls_behind == "late":
            behind = max(0, m - (months - 1))
        dpd = 30 * behind
        if not behind:
            paid += 1
        outstanding = round(amount * max(0.0, 1 - paid / term), 2)
        status = "npl" if dpd >= 90 else "delinquent" if dpd else "current"
        out.append((as_of, outstanding, dpd, status))
    return out


def _amounts(planned: list[Planned], now: datetime) -> None:
    """Class 3 borrows less: its amounts are scaled so that its share of the balance on the last
    statements comes to the study's 18.4%."""
    balance = {1: 0.0, 2: 0.0, 3: 0.0}
    for p in planned:
        if p.disbursed and p.disbursed < now:
            last = _statements(p, now, p.base)
            balance[p.cls] += last[-1][1] if last else p.base
    others = balance[1] + balance[2]
    factor = (CLASS3_BALANCE_SHARE / (1 - CLASS3_BALANCE_SHARE) * others / balance[3]
              if balance[3] else 1.0)
    for p in planned:
        scale = factor if p.cls == 3 else 1.0
        p.amount = max(20_000, int(round(p.base * scale / 1000.0)) * 1000)


def _intake(rng: random.Random, p: Planned, national_id: str, mobile: str) -> dict:
    product, _range, term, asset = PRODUCT[p.org]
    price = round(p.amount / 0.65, -4) if asset else None
    return {
        "product": product, "buyer_name": rng.choice(SURNAMES) + rng.choice(GIVEN),
        "national_id": national_id, "mobile": mobile,
        "employer": rng.choice(EMPLOYERS[p.cls]), "industry": p.industry,
        "monthly_income": rng.randint(8, 40) * 1000, "amount": p.amount, "term_months": term,
        "asset_description": asset.format(n=p.n) if asset else None,
        "asset_price": price, "down_payment": price - p.amount if price else None,
        "consent": True, "external_ref": f"DEMO-{p.org[:4]}-{p.n:04d}",
    }


def _terms(p: Planned, referral, state: str, at: datetime, now: datetime) -> dict | None:
    """What the demo's officer records with an approval, a contract and a disbursement. Every
    fourth referral still on its way to the loan is approved for less (a counter-offer); loans
    paid out before now lend what was asked, as their statements were planned on it."""
    if state == State.approved:
        counter = p.n % 4 == 0 and not (p.disbursed and p.disbursed < now)
        amount = referral.amount
        if counter:
            amount = max(referral.product.min_amount, round(referral.amount * 8 / 10, -4))
        return {"amount": amount, "term_months": referral.term_months,
                "rate_percent": RATES.get(referral.product_code, "4.35"),
                "conditions": [CONDITIONS[referral.product_code]]
                if referral.product_code in CONDITIONS and p.n % 3 == 0 else []}
    approved = referral.decision.approved_amount if referral.decision else referral.amount
    if state == State.contract_signed:
        return {"number": f"GR{bank_date(at):%Y}{referral.id:06d}", "amount": approved,
                "date": bank_date(at)}
    if state == State.disbursed:
        return {"amount": referral.decision.contract_amount if referral.decision else approved,
                "date": bank_date(at), "number": f"JJ{referral.id:08d}"}
    return None


def write(rng: random.Random, planned: list[Planned], partners: dict, officer: Ctx,
          now: datetime, national_id, mobile, site_codes: dict | None = None) -> int:
    """Submit each planned referral (its buyer consented minutes before) and replay its moves;
    then import every loan's statements. Referrals older than the agreements in force came in
    under earlier ones the demo does not draw, so only the last weeks are gated."""
    rows = []
    for p in sorted(planned, key=lambda p: p.submitted):
        partner, org = partners[p.org]
        data = _intake(rng, p, national_id(rng), mobile(rng))
        data["consent_obtained_at"] = p.submitted - timedelta(minutes=rng.randint(5, 90))
        codes = (site_codes or {}).get(p.org)
        if codes and p.n % 5:  # most name their site; a few came in by telephone
            data["site"] = codes[p.n % len(codes)]
        result = referrals.submit(partner, org, data, at=p.submitted,
                                  gate=now - p.submitted < timedelta(days=25))
        referral, at = result.referral, p.submitted
        for state, hours in p.path:
            at += timedelta(hours=hours)
            if at >= now:
                break
            if state == "documents_requested":
                documents.request_documents(officer, referral, ["income_proof"],
                                            "请补充近六个月工资流水 / Six months of payslips",
                                            at=at)
                continue
            actor = officer
            if state == "under_review" and referral.status == "documents_requested":
                actor = partner
                for stip in referral.stipulations:
                    if stip.requested:  # what was asked is answered; the checklist stays a guide
                        stip.status = "uploaded"
            referrals.transition(actor, referral, state, at=at, note="demo history",
                                 reason_code="credit_policy" if state == State.declined else None,
                                 terms=_terms(p, referral, state, at, now))
        if referral.status == State.disbursed.value:
            statements = _statements(p, now, float(referral.amount))
            disbursed_on = bank_date(referral.disbursed_at)
            rows += [{"referral_id": referral.id, "org_id": referral.org_id, "as_of": as_of,
                      "days_on_book": (as_of - disbursed_on).days,
                      "outstanding": Decimal(f"{outstanding:.2f}"), "days_past_due": dpd,
                      "status": status, "month_latest": True,
                      "is_latest": i == len(statements) - 1, "imported_at": now}
                     for i, (as_of, outstanding, dpd, status) in enumerate(statements)]
    # One month-end statement per loan and month: every row is its month's latest and the last
    # is the loan's latest, as the loans import would flag them (inserted at once: the import's
    # row-by-row savepoints would double the seed's time).
    db.session.execute(insert(LoanPerformance), rows)
    return len(planned)
