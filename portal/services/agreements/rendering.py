"""Agreement templates rendered in a Jinja sandbox and read into preamble and numbered clauses.

Admins write templates, so they run in a sandbox with strict undefined names: a mistake fails the
check when the template is saved, not when an agreement is drafted. The template syntax is
described in `defaults.py`.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from flask import current_app
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from models import BRAND_KINDS, FAMILY_OF, PROJECT_KINDS, PartnerFamily

from .chinese import chinese_date, clause_number

KIND_ZH = {
    "real_estate_developer": "房地产开发企业",
    "property_broker": "房地产经纪机构",
    "car_dealer": "汽车经销商",
    "car_manufacturer": "汽车生产厂商",
    "study_abroad_agency": "留学服务机构",
    "retail_mall": "零售商场",
    "law_firm": "律师事务所",
    "appraiser": "资产评估机构",
    "guarantee_company": "融资担保公司",
    "credit_rating_agency": "信用评级机构",
    "insurer": "保险公司",
}

_sandbox = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True,
                                lstrip_blocks=True)


@lru_cache(maxsize=64)
def compiled(body: str):
    return _sandbox.from_string(body)


def bank_party() -> dict:
    """The bank as the agreement names it (甲方)."""
    return {"name": current_app.config["BANK_LEGAL_NAME"],
            "unit": current_app.config["BANK_UNIT_NAME"]}


def template_context(partner: dict, terms: dict, bank: dict) -> dict:
    """The names a template may use (see `defaults.py`)."""
    kind = partner["kind"]
    agreement = dict(terms)
    agreement["products_zh"] = "、".join(p["name_zh"] for p in terms["products"])
    start, end = terms["effective_from"], terms["expires_on"]
    agreement["term_months"] = (end.year - start.year) * 12 + end.month - start.month + (
        1 if end.day >= start.day else 0)
    agreement["effective_from"] = chinese_date(start)
    agreement["expires_on"] = chinese_date(end)
    return {
        "partner": {**partner, "kind_zh": KIND_ZH.get(kind, kind)},
        "bank": bank,
        "agreement": agreement,
        "family": FAMILY_OF.get(kind, PartnerFamily.service.value),
        "is_developer": kind in PROJECT_KINDS,
        "is_dealer": kind in BRAND_KINDS,
    }


def sample_contexts(family: str) -> list[dict]:
    """One made-up context for every partner type of the family: a template must render for
    each of them before it is saved."""
    kinds = [k for k, f in FAMILY_OF.items() if f == family] or ["law_firm"]
    samples = []
    for kind in kinds:
        products = [{"code": "housing_mortgage", "name_zh": "个人住房贷款",
                     "name_en": "Housing mortgage"}]
        terms = {"number": "AGR-SAMPLE-2026-001", "version": 1, "products": products,
                 "projects": ["示例项目一期"], "stage_guarantee": "示例", "brands": ["示例品牌"],
                 "onsite_staff": "示例", "bank_sla_hours": 72, "partner_doc_days": 5,
                 "effective_from": date(2026, 1, 1), "expires_on": date(2026, 12, 31)}
        samples.append(template_context(
            {"name": "示例合作方", "code": "SAMPLE", "kind": kind, "branch": None}, terms,
            bank_party()))
    return samples


def parse(text: str) -> tuple[list[str], list[dict]]:
    """Rendered template text -> (preamble paragraphs, numbered clauses)."""
    preamble: list[str] = []
    clauses: list[dict] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("## "):
            title, _, title_en = line[3:].partition("|")
            clauses.append({"no": clause_number(len(clauses) + 1),
                            "title": title.strip(), "title_en": title_en.strip() or None,
                            "lines": []})
        elif clauses:
            lines = clauses[-1]["lines"]
            if line.startswith("- "):
                n = sum(1 for x in lines if x["n"]) + 1
                lines.append({"n": n, "text": line[2:].strip()})
            else:
                lines.append({"n": None, "text": line})
        else:
            preamble.append(line)
    return preamble, clauses
