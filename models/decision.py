from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

from .base import PARTNER_TEXT, UTCDateTime

Money = Numeric(14, 2)


class LoanDecision(db.Model):
    """What the bank decided, signed and paid out on one referral: the approved terms (a lower
    amount or another term than asked is a counter-offer), the contract and the disbursement.
    One row per referral, filled in by the lifecycle moves that record them
    (services/decisions.py); the partner reads all of it, through services/disclosure.py."""

    __tablename__ = "loan_decision"

    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), primary_key=True)

    approved_amount: Mapped[Decimal | None] = mapped_column(Money)
    approved_term_months: Mapped[int | None]
    # Annual, in percent (3.850 is 3.85 %).
    rate_percent: Mapped[Decimal | None] = mapped_column(Numeric(6, 3))
    # The conditions of the approval, one per line, written for the partner and the buyer
    # (e.g. the co-borrower's income proof before signing).
    conditions: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    contract_number: Mapped[str | None] = mapped_column(String(64))
    contract_amount: Mapped[Decimal | None] = mapped_column(Money)
    contract_signed_on: Mapped[date | None]

    disbursed_amount: Mapped[Decimal | None] = mapped_column(Money)
    # The value date: the bank day the money was paid out.
    disbursed_on: Mapped[date | None]
    # The loan note (借据) number the disbursement opened, when the bank gives it.
    loan_number: Mapped[str | None] = mapped_column(String(64))

