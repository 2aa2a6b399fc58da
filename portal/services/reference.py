"""Reference codes the contract fixes: industries and their customer class, document kinds."""

from __future__ import annotations

INDUSTRY_CLASS: dict[str, int] = {
    "government": 1,
    "education_science_culture_health": 1,
    "military": 1,
    "finance_insurance": 1,
    "post_telecom": 1,
    "utilities": 1,
    "industry_transport": 1,
    "commerce_trade": 2,
    "real_estate_construction": 2,
    "agriculture": 2,
    "social_services": 2,
    "other": 3,
}

DOCUMENT_KINDS = (
    "id_card",
    "income_proof",
    "purchase_contract",
    "down_payment_receipt",
    "vehicle_invoice",
    "admission_letter",
    "bank_statement",
    "other",
)

PRODUCT_CODES = ("housing_mortgage", "auto_loan", "study_abroad_loan", "consumer_loan")
