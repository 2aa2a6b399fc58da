"""Demo data for development: the accounts of docs/contract.md and months of referral history."""

from __future__ import annotations

import io
import random
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

import pikepdf
from sqlalchemy import func, select
from stdnum.cn import ric, uscc

from models import PartnerSite, User, utcnow

from ..bank_time import bank_today
from ..extensions import db
from . import (
    Ctx,
    accounts,
    admission,
    agreements,
    annual_reviews,
    branches,
    demo_history,
    referrals,
    sites,
)

PASSWORD = "demo-pass-2026"  # noqa: S105  # nosec B105  # the contract's published demo password
SYSTEM = Ctx(user=None, ip="demo")

PARTNERS = [
    ("SUNRISE", "Sunrise Homes", "real_estate_developer", "sales@sunrise-homes.example",
     ["agent@sunrise-homes.example"], "housing_mortgage"),
    ("NORTHSTAR", "Northstar Auto", "car_dealer", "sales@northstar-auto.example", [], "auto_loan"),
    ("BRIDGE", "Bridge Study Abroad", "study_abroad_agency", "desk@bridge-study.example", [],
     "study_abroad_loan"),
    ("HARBOR", "Harbor Realty", "property_broker", "sales@harbor-realty.example", [],
     "housing_mortgage"),
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
         "明", "超", "秀英", "华", "慧"]
EMPLOYERS = ["市第一中学", "国家电网", "华信贸易有限公司", "城建集团", "个体经营"]
INDUSTRIES = ["government", "education_science_culture_health", "finance_insurance",
              "industry_transport", "post_telecom", "commerce_trade", "real_estate_construction",
              "social_services", "other", "other"]
ASSETS = {
    "housing_mortgage": ("Unit 12-0{n}, Sunrise Garden Phase 2", 1_200_000, 400_000, 700_000, 240),
    "auto_loan": ("Northstar SUV model {n}", 260_000, 80_000, 150_000, 36),
    "study_abroad_loan": ("MSc tuition, University {n}", 0, 0, 300_000, 60),
}


def database_is_empty() -> bool:
    return not db.session.scalar(select(func.count(User.id)))


def national_id(rng: random.Random) -> str:
    region = rng.choice(["110105", "110108", "310104", "310115", "440305", "330102"])
    born = f"{rng.randint(1970, 1998)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = f"{region}{born}{rng.randint(100, 999)}"
    return body + ric.calc_check_digit(body + "0")  # the function expects a check-digit slot


def mobile(rng: random.Random) -> str:
    return rng.choice(["138", "139", "186", "150", "177"]) + f"{rng.randint(0, 99_999_999):08d}"


def intake_data(rng: random.Random, product: str, n: int) -> dict:
    description, price, down, amount, term = ASSETS[product]
    return {
        "product": product,
        "buyer_name": rng.choice(SURNAMES) + rng.choice(GIVEN),
        "national_id": national_id(rng),
        "mobile": mobile(rng),
        "employer": rng.choice(EMPLOYERS),
        "industry": rng.choice(INDUSTRIES),
        "monthly_income": rng.randint(8, 40) * 1000,
        "amount": amount + rng.randint(-5, 2) * 10_000,
        "term_months": term,
        "asset_description": description.format(n=n) if price else None,
        "asset_price": price or None,
        "down_payment": down or None,
        "consent": True,
        "external_ref": f"DEMO-{product[:4].upper()}-{n:04d}",
    }


# The demo's branch tree under the province: (code, name, parent, distribution model).
DEMO_BRANCHES = [
    ("EAST", "东区二级分行 East", None, "loan_centre_deep"),
    ("EAST_PUDONG", "浦东经营行 Pudong", "EAST", "joint_deep"),
    ("WEST", "西区二级分行 West", None, "key_account"),
    ("WEST_MINHANG", "闵行经营行 Minhang", "WEST", "joint_deep"),
]
# Each partner's branch and channel manager: manager@bank.example works at the province (and
# sees everything, for the tour); each second-level branch has its own channel manager.
DEMO_PLACES = {
    "SUNRISE": ("EAST_PUDONG", "manager@bank.example"),
    "HARBOR": ("EAST", "manager.east@bank.example"),
    "NORTHSTAR": ("WEST_MINHANG", "manager.west@bank.example"),
    "BRIDGE": ("WEST", "manager@bank.example"),
}


def _demo_branches() -> None:
    root = branches.ensure_root(SYSTEM)
    for code, name, parent, model in DEMO_BRANCHES:
        branches.create(SYSTEM, code=code, name=name, parent=parent or root, model=model)
    for email, name, branch in [("manager.east@bank.example", "渠道经理 陈东", "EAST"),
                                ("manager.west@bank.example", "渠道经理 赵西", "WEST")]:
        accounts.create_user(SYSTEM, email=email, role="channel_manager", name=name,
                             password=PASSWORD, branch=branch)


def seed(rng_seed: int = 2026) -> str:
    rng = random.Random(rng_seed)  # nosec B311  # seeded: the same demo data every time
    accounts.bank_org()
    staff = {}
    for email, role, name in [("admin@bank.example", "admin", "系统管理员"),
                              ("manager@bank.example", "channel_manager", "渠道经理 王敏"),
                              ("officer@bank.example", "credit_officer", "信贷员 李强")]:
        staff[role], _ = accounts.create_user(SYSTEM, email=email, role=role, name=name,
                                              password=PASSWORD)
    _demo_branches()
    officer = Ctx(user=staff["credit_officer"], ip="demo")
    now = utcnow()
    partners = {}
    for code, name, kind, admin_email, agents, product in PARTNERS:
        branch, manager_email = DEMO_PLACES[code]
        org = accounts.create_org(SYSTEM, code=code, name=name, kind=kind, branch=branch,
                                  manager_email=manager_email)
        admin, _ = accounts.create_user(SYSTEM, email=admin_email, role="partner_admin", org=org,
                                        password=PASSWORD)
        for agent_email in agents:
            accounts.create_user(SYSTEM, email=agent_email, role="partner_agent", org=org,
                                 password=PASSWORD)
        partner = Ctx(user=admin, ip="demo")
        _demo_agreements(Ctx(user=staff["channel_manager"], ip="demo"), partner, org, product, now)
        partners[code] = (partner, org)
    manager = Ctx(user=staff["channel_manager"], ip="demo")
    site_codes = _demo_sites(manager, partners)
    planned = demo_history.plan(rng, now)
    count = demo_history.write(rng, planned, partners, officer, now, national_id, mobile,
                               site_codes)
    _demo_quota(manager)
    _demo_conflict(rng, now)
    _demo_messages()
    _demo_admission(partners)
    _demo_leads(now)
    from . import scoring

    scoring.recompute_all()  # so the scorecard pages have something to show
    return f"{len(PARTNERS)} partners, {count + 1} referrals"


# Each partner's projects, showrooms and offices (code, kind, name, address, permit, quota).
DEMO_SITES = {
    "SUNRISE": [("SUNRISE-GARDEN-2", "project", "旭日花园二期 Sunrise Garden Phase 2",
                 "浦东新区锦绣路 1888 号", "浦东预许字(2026)第0042号", "60000000"),
                ("SUNRISE-LAKESIDE", "project", "旭日湖畔 Sunrise Lakeside",
                 "浦东新区滨湖大道 66 号", "浦东预许字(2026)第0107号", "150000000")],
    "NORTHSTAR": [("NS-MINHANG", "showroom", "北辰汽车闵行展厅 Minhang showroom",
                   "闵行区沪闵路 3000 号", None, "20000000")],
    "HARBOR": [("HB-CENTRAL", "office", "港湾地产中心门店 Central office",
                "黄浦区南京东路 100 号", None, None)],
    "BRIDGE": [("BR-XUHUI", "office", "桥梁留学徐汇中心 Xuhui centre", "徐汇区漕溪北路 18 号",
                None, None)],
}
# Who sits at which site on which days (驻点): e-mail, site code, days, work telephone.
DEMO_ONSITE = [
    ("manager.east@bank.example", "SUNRISE-GARDEN-2", ["mon", "wed", "fri"], "021-5888 1234"),
    ("officer@bank.example", "SUNRISE-LAKESIDE", ["sat", "sun"], None),
    ("manager.west@bank.example", "NS-MINHANG", ["tue", "thu", "sat"], "021-6400 5678"),
]


def _demo_sites(manager: Ctx, partners: dict) -> dict[str, list[str]]:
    codes = {}
    for org_code, entries in DEMO_SITES.items():
        _partner, org = partners[org_code]
        for code, kind, name, address, permit, quota in entries:
            sites.create(manager, org, {
                "kind": kind, "code": code, "name": name, "address": address,
                "presale_permit": permit, "quota_amount": quota, "active": True,
                "staged_guarantee": kind == "project",
                "guarantee_contract_number": f"BZ-{code}" if kind == "project" else None})
            codes.setdefault(org_code, []).append(code)
    for email, code, days, phone in DEMO_ONSITE:
        site = db.session.scalar(select(PartnerSite).where(PartnerSite.code == code))
        user = db.session.scalar(select(User).where(User.email == email))
        sites.assign(manager, site, user, days, phone)
    return codes


def _demo_quota(manager: Ctx) -> None:
    """Phase 2 near the end of its quota, so that the tour shows the 80 % warning."""
    site = db.session.scalar(select(PartnerSite).where(PartnerSite.code == "SUNRISE-GARDEN-2"))
    used = sites.usage(site).used
    if used:
        data = {name: getattr(site, name) for name in sites.FIELDS}
        millions = (used / Decimal("0.85") / 1_000_000).to_integral_value(ROUND_CEILING)
        data["quota_amount"] = millions * 1_000_000
        sites.update(manager, site, data)


def _demo_conflict(rng: random.Random, now) -> None:
    """Harbor refers a buyer Sunrise already registered: the attribution case on the demo."""
    from models import Organization, Referral

    sunrise_ref = db.session.scalar(
        select(Referral).join(Organization).where(Organization.code == "SUNRISE",
                                                  Referral.status.in_(["submitted",
                                                                       "under_review"]))
        .order_by(Referral.submitted_at.desc()))
    harbor = db.session.scalar(select(Organization).where(Organization.code == "HARBOR"))
    if sunrise_ref is None or harbor is None:
        return
    harbor_admin = db.session.scalar(select(User).where(User.org_id == harbor.id))
    data = intake_data(rng, "housing_mortgage", 99)
    from . import pii

    data["national_id"] = pii.decrypt(sunrise_ref.national_id_enc)
    data["buyer_name"] = sunrise_ref.buyer_name
    at = now - timedelta(hours=5)
    data["consent_obtained_at"] = at - timedelta(minutes=20)  # consent first, always
    referrals.submit(Ctx(user=harbor_admin, ip="demo"), harbor, data, at=at)


def _demo_messages() -> None:
    """A question from Sunrise's agent on a referral the officer is reviewing, answered, and a
    second question still unread: the thread and the menu counts on both faces."""
    from models import Organization, Referral

    from . import messages

    reviewed = db.session.scalars(
        select(Referral).join(Organization).where(Organization.code == "SUNRISE",
                                                  Referral.status == "under_review")
        .order_by(Referral.submitted_at.desc()).limit(1)).first()
    agent = db.session.scalar(select(User).where(User.email == "agent@sunrise-homes.example"))
    officer = db.session.scalar(select(User).where(User.email == "officer@bank.example"))
    if reviewed is None or agent is None or officer is None:
        return
    messages.post(Ctx(user=agent, ip="demo"), reviewed,
                  "买方下周出差，面签可以安排在周五下午吗？")
    messages.post(Ctx(user=officer, ip="demo"), reviewed,
                  "可以，周五14:00在浦东支行。请提醒买方带身份证原件和近六个月银行流水。")
    messages.post(Ctx(user=agent, ip="demo"), reviewed, "好的，已通知买方。谢谢！")


# Bank customers referred to partners (the other direction of the exchange): (partner, staff
# who referred them, name, mobile, need, note for the partner, internal note, days ago, answers).
DEMO_LEADS = [
    ("NORTHSTAR", "manager.west@bank.example", "周建国", "13812340001", "car_purchase",
     "想换一辆七座SUV，周末方便到店。", "房贷客户，还款记录良好。", 20,
     [("accept", {}), ("report", {"outcome": "won", "note": "已签约购车，车贷由贵行办理。"})]),
    ("SUNRISE", "manager@bank.example", "吴晓梅", "13912340002", "home_purchase",
     "首套房，预算三百万以内，倾向浦东。", "代发工资客户。", 2, []),
    ("BRIDGE", "officer@bank.example", "郑凯", "18612340003", "study_abroad",
     "孩子明年申请英国硕士。", "理财客户，资产较高。", 9,
     [("decline", {"reason": "该客户所需院校不在我司服务范围。"})]),
    ("HARBOR", "manager.east@bank.example", "孙丽", "15012340004", "home_purchase",
     "想看学区二手房。", "按揭到期客户。", 6,
     [("accept", {}), ("report", {"outcome": "contacted"})]),
]


def _demo_leads(now) -> None:
    from models import Organization

    from . import customer_leads

    for code, staff_email, name, mobile_no, need, detail, note, days, answers in DEMO_LEADS:
        org = db.session.scalar(select(Organization).where(Organization.code == code))
        staff = db.session.scalar(select(User).where(User.email == staff_email))
        partner = db.session.scalar(select(User).where(User.org_id == org.id)
                                    .order_by(User.id).limit(1))
        lead = customer_leads.create(Ctx(user=staff, ip="demo"), org, {
            "customer_name": name, "mobile": mobile_no, "need": need, "need_detail": detail,
            "internal_note": note, "consent": True, "consent_method": "signed_form",
            "consent_at": now - timedelta(days=days, hours=1)})
        lead.created_at = lead.status_changed_at = now - timedelta(days=days)
        answering = Ctx(user=partner, ip="demo")
        for step, data in answers:
            if step == "accept":
                customer_leads.accept(answering, lead)
            else:
                getattr(customer_leads, step)(answering, lead, data)


# Each partner's agreement: (days since it took effect, days left, particulars). Harbor's ends
# within 30 days, so the dashboards show the expiry warning; Sunrise also has an older version
# its renewal superseded, so the history shows.
DEMO_AGREEMENTS = {
    "SUNRISE": (30, 335, {
        "projects": ["Sunrise Garden Phase 2 旭日花园二期", "Sunrise Plaza 旭日广场"],
        "stage_guarantee": "乙方为购房人提供阶段性连带责任保证，并按贷款金额的5%存入保证金。",
        "onsite_staff": "甲方每周二、周六派驻客户经理一名至旭日花园售楼部。"}),
    "NORTHSTAR": (200, 165, {"brands": ["Northstar", "Northstar EV"],
                             "onsite_staff": "甲方每周五派员至乙方展厅驻场。"}),
    "BRIDGE": (300, 65, {}),
    "HARBOR": (345, 20, {"onsite_staff": "甲方按需派员至乙方门店。"}),
}


def _demo_agreements(manager: Ctx, partner: Ctx, org, product: str, now) -> None:
    """Issue and accept (with a proof record) the partner's agreement in force."""
    agreements.ensure_default_templates()  # a no-op after the migrations seeded them
    since, left, extra = DEMO_AGREEMENTS[org.code]
    today = agreements.local_today()
    terms = {"products": [product], "bank_sla_hours": 72, "partner_doc_days": 5,
             "effective_from": today - timedelta(days=since),
             "expires_on": today + timedelta(days=left), **extra}
    if org.code == "SUNRISE":  # last year's version, superseded by this year's renewal
        old_terms = {**terms, "effective_from": today - timedelta(days=since + 365),
                     "expires_on": today - timedelta(days=since + 1), "bank_sla_hours": 96}
        old = agreements.draft(manager, org, old_terms, at=now - timedelta(days=since + 380))
        agreements.issue(manager, old, at=now - timedelta(days=since + 375))
        agreements.accept(partner, old, user_agent="demo", at=now - timedelta(days=since + 370))
        current = agreements.renew(manager, old, terms, at=now - timedelta(days=since + 20))
    else:
        current = agreements.draft(manager, org, terms, at=now - timedelta(days=since + 15))
    agreements.issue(manager, current, at=now - timedelta(days=since + 10))
    agreements.accept(partner, current, user_agent="demo", at=now - timedelta(days=since + 5))


def _demo_admission(partners: dict) -> None:
    """One application waiting for East's channel managers, and Bridge's annual review of 13
    months ago, so the cockpit shows one overdue (the tour of partner admission)."""
    licence = io.BytesIO()
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    pdf.save(licence, deterministic_id=True)
    body = "91310115MA1H7Y2K0"  # 17 characters; the 18th is the check digit
    admission.submit(SYSTEM, {
        "company_name": "晨光置业有限公司 Morning Light Realty",
        "uscc": body + uscc.calc_check_digit(body),
        "kind": "property_broker", "branch": "EAST", "contact_name": "周晨",
        "contact_mobile": "13916881234", "contact_email": "zhou@morning-light.example",
        "products": ["housing_mortgage"]}, filename="营业执照.pdf", licence=licence.getvalue(),
        locale="zh_CN")
    _partner, bridge = partners["BRIDGE"]
    annual_reviews.record(SYSTEM, bridge, outcome="passed", note="首次年审：资质齐全，合作正常。",
                          reviewed_on=bank_today() - timedelta(days=400))
