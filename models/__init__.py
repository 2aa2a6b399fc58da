"""Typed SQLAlchemy models, one module per aggregate."""

from .audit import AuditEntry
from .base import UTCDateTime, utcnow
from .document import Document, Stipulation
from .org import BANK_KIND, Organization, OrgStatus, PartnerType
from .product import Product, ProductDocument
from .referral import BuyerRegistration, Referral, ReferralEvent
from .user import BANK_ROLES, PARTNER_ROLES, Role, User, UserSession

__all__ = [
    "AuditEntry",
    "BANK_KIND",
    "BANK_ROLES",
    "BuyerRegistration",
    "Document",
    "Organization",
    "OrgStatus",
    "PARTNER_ROLES",
    "PartnerType",
    "Product",
    "ProductDocument",
    "Referral",
    "ReferralEvent",
    "Role",
    "Stipulation",
    "User",
    "UserSession",
    "UTCDateTime",
    "utcnow",
]
