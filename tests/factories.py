"""factory_boy factories and helpers that build test data through the real services."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

import factory
from factory.alchemy import SQLAlchemyModelFactory
from stdnum.cn import ric

from models import Agreement, Organization, User, utcnow
from portal.extensions import db
from portal.services import Ctx, agreements, referrals
from portal.services.accounts import bank_org, hash_password

PASSWORD = "correct-horse-battery-staple"
_password_hash: str | None = None


def password_hash() -> str:
    # argon2 is slow on purpose; hash the shared test password once.
    global _password_hash
    if _password_hash is None:
        _password_hash = hash_password(PASSWORD)
    return _password_hash


class OrgFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Organization
        sqlalchemy_session = db.session
        sqlalchemy_session_persistence = "flush"

    code = factory.Sequence(lambda n: f"ORG{n:03d}")
    name = factory.Sequence(lambda n: f"Partner {n}")
    kind = "real_estate_developer"
    status = "active"

    @factory.post_generation
    def agreement(obj, create, extracted, **kwargs):
        """Referrals need an agreement in force: each partner gets an ACTIVE one covering every
        product. OrgFactory(agreement=False) for none; agreement=["auto_loan"] for some."""
        if not create or extracted is False or obj.kind == "bank":
            return
        active_agreement(obj, extracted if isinstance(extracted, list | tuple) else ALL_PRODUCTS)


ALL_PRODUCTS = ("auto_loan", "consumer_loan", "housing_mortgage", "study_abroad_loan")


def active_agreement(org: Organization, products=ALL_PRODUCTS, *, days_left: int = 335,
                     status: str = "active") -> Agreement:
    """An agreement in force for `org`, inserted directly (no PDF rendering: tests stay fast).
    Tests of the agreement lifecycle itself go through portal.services.agreements."""
    agreements.ensure_default_templates()
    template = agreements.default_template_for(org)
    today = agreements.local_today()
    agreement = Agreement(
        org=org, number=agreements.next_number(org, today.year), version=1, template=template,
        template_version=template.version, products=sorted(products), projects=[], brands=[],
        effective_from=today - timedelta(days=30), expires_on=today + timedelta(days=days_left),
        status=status, activated_at=utcnow() if status == "active" else None)
    db.session.add(agreement)
    db.session.flush()
    return agreement


class UserFactory(SQLAlchemyModelFactory):
    class Meta:
        model = User
        sqlalchemy_session = db.session
        sqlalchemy_session_persistence = "flush"

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    name = factory.Sequence(lambda n: f"User {n}")
    role = "partner_agent"
    org = factory.SubFactory(OrgFactory)
    password_hash = factory.LazyFunction(password_hash)

    @classmethod
    def bank(cls, role: str, **kwargs) -> User:
        return cls(role=role, org=bank_org(), **kwargs)


_ids = itertools.count(1)


def national_id(seq: int | None = None, born: str = "19850612") -> str:
    """A valid 18-character PRC ID, different for each seq."""
    seq = next(_ids) if seq is None else seq
    body = f"110105{born}{seq % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def mobile(seq: int | None = None) -> str:
    seq = random.randint(0, 99_999_999) if seq is None else seq
    return f"139{seq % 100_000_000:08d}"


def intake(**overrides) -> dict:
    data = {
        "product": "housing_mortgage",
        "buyer_name": "张伟",
        "national_id": national_id(),
        "mobile": mobile(),
        "employer": "市第一中学",
        "industry": "education_science_culture_health",
        "monthly_income": "25000",
        "amount": "700000",
        "term_months": "240",
        "asset_description": "Unit 12-01, Sunrise Garden",
        "asset_price": "1200000",
        "down_payment": "400000",
        "consent": True,
    }
    data.update(overrides)
    return data


def submit(user: User, at=None, **overrides):
    """Submit a referral through the real intake service and flush it."""
    result = referrals.submit(Ctx(user=user, ip="127.0.0.1"), user.org, intake(**overrides), at=at)
    db.session.flush()
    return result.referral


def branch(code: str, parent=None, *, name: str | None = None, model: str | None = None):
    """A branch of the bank's tree under `parent` (a Branch or code; default the province, made
    when the tree is empty), through the real service."""
    from portal.services import branches

    root = branches.ensure_root(Ctx(user=None))
    return branches.create(Ctx(user=None), code=code, name=name or code.title(),
                           parent=parent or root, model=model)


_uscc_seq = itertools.count(1)


def uscc(seq: int | None = None) -> str:
    """A valid unified social credit code: 17 characters and the check digit python-stdnum
    computes for them."""
    from stdnum.cn import uscc as stdnum_uscc

    body = f"91440300{seq if seq is not None else next(_uscc_seq):09d}"
    return body + stdnum_uscc.calc_check_digit(body)


def application(branch_code: str, **overrides):
    """A partner application through the real public intake (a real PDF as its licence)."""
    from portal.services import admission
    from tests.integration_helpers import pdf_bytes

    data = {"company_name": "Applicant Homes Ltd", "uscc": uscc(), "kind": "property_broker",
            "branch": branch_code, "contact_name": "Li Lei", "contact_mobile": mobile(),
            "contact_email": f"owner{next(_uscc_seq)}@applicant.test",
            "products": ["housing_mortgage"], **overrides}
    result = admission.submit(Ctx(user=None, ip="127.0.0.1"), data, filename="licence.pdf",
                              licence=pdf_bytes(), locale="en")
    db.session.flush()
    return result
