from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db


class Product(db.Model):
    __tablename__ = "product"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_en: Mapped[str] = mapped_column(String(100))
    name_zh: Mapped[str] = mapped_column(String(100))
    # "property", "vehicle" or "none": which asset details the intake form asks for.
    asset_kind: Mapped[str] = mapped_column(String(20))
    min_amount: Mapped[int] = mapped_column(default=10_000)
    max_amount: Mapped[int] = mapped_column(default=10_000_000)
    max_term_months: Mapped[int] = mapped_column(default=360)
    active: Mapped[bool] = mapped_column(default=True)

    required_documents: Mapped[list[ProductDocument]] = relationship(
        order_by="ProductDocument.position", cascade="all, delete-orphan"
    )
    rates: Mapped[list[ProductRate]] = relationship(
        order_by="ProductRate.min_term_months", cascade="all, delete-orphan"
    )

    def display_name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


class ProductDocument(db.Model):
    """One line of a product's required-document checklist (the standing stipulations)."""

    __tablename__ = "product_document"

    product_code: Mapped[str] = mapped_column(ForeignKey("product.code"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(default=0)


class ProductRate(db.Model):
    """One band of a product's rate table: loans of `min_term_months` to `max_term_months`
    (inclusive) are quoted at `annual_rate` percent a year. The bands of a product cover its
    terms from one month to its longest, without overlap (services/product_tools.py checks)."""

    __tablename__ = "product_rate"
    __table_args__ = (
        UniqueConstraint("product_code", "min_term_months", name="uq_product_rate_band"),
        CheckConstraint("min_term_months >= 1 AND max_term_months >= min_term_months",
                        name="ck_product_rate_terms"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_code: Mapped[str] = mapped_column(ForeignKey("product.code"), index=True)
    min_term_months: Mapped[int]
    max_term_months: Mapped[int]
    # Percent a year, as the bank quotes it (4.9 for 4.9 %).
    annual_rate: Mapped[Decimal] = mapped_column(Numeric(6, 3))
