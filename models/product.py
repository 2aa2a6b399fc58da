from __future__ import annotations

from sqlalchemy import ForeignKey, String
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

    def display_name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


class ProductDocument(db.Model):
    """One line of a product's required-document checklist (the standing stipulations)."""

    __tablename__ = "product_document"

    product_code: Mapped[str] = mapped_column(ForeignKey("product.code"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(default=0)
