"""Typed SQLAlchemy models, one module per aggregate."""

from .admission import (
    OPEN_APPLICATION,
    AnnualReview,
    ApplicationStatus,
    PartnerApplication,
    ReviewOutcome,
)
from .agreement import (
    AGREEMENT_TRANSITIONS,
    BRAND_KINDS,
    FAMILY_OF,
    PROJECT_KINDS,
    Agreement,
    AgreementAcceptance,
    AgreementStatus,
    AgreementTemplate,
    PartnerFamily,
)
from .audit import AuditAnchor, AuditChainHead, AuditCheck, AuditDenialCount, AuditEntry
from .base import UTCDateTime, utcnow
from .branch import Branch, BranchLevel, DirectoryStamp, DistributionModel
from .decision import LoanDecision
from .dispute import Dispute
from .document import Document, Stipulation
from .followup import ContactCadence, ContactLog, FollowUp, FollowUpNote
from .integration import (
    WEBHOOK_EVENT_TYPES,
    ApiKey,
    DeliveryAttempt,
    IdempotencyRecord,
    Notification,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from .lead import LEAD_OUTCOMES, LEAD_TRANSITIONS, CustomerLead, LeadStatus
from .message import ReferralMessage
from .org import BANK_KIND, Organization, OrgStatus, PartnerType
from .product import Product, ProductDocument, ProductRate
from .queue_filter import SavedQueueFilter
from .referral import BuyerRegistration, Referral, ReferralEvent, ReferralTally
from .reveal import Reveal, RevealRequest
from .scorecard import (
    ImportBatch,
    ImportReject,
    LoanPerformance,
    ScorecardSnapshot,
    ScoreChange,
    ScoringWeights,
    TierState,
)
from .site import WEEKDAYS, PartnerSite, SiteKind, SiteStaff
from .user import (
    BANK_ROLES,
    PARTNER_ROLES,
    PasswordResetToken,
    RecoveryCode,
    Role,
    Throttle,
    User,
    UserSession,
)

__all__ = [
    "OPEN_APPLICATION",
    "AnnualReview",
    "ApplicationStatus",
    "PartnerApplication",
    "ReviewOutcome",
    "AGREEMENT_TRANSITIONS",
    "Agreement",
    "AgreementAcceptance",
    "AgreementStatus",
    "AgreementTemplate",
    "BRAND_KINDS",
    "FAMILY_OF",
    "PROJECT_KINDS",
    "PartnerFamily",
    "AuditAnchor",
    "AuditChainHead",
    "AuditCheck",
    "AuditDenialCount",
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
    "ProductRate",
    "Referral",
    "ReferralEvent",
    "ReferralTally",
    "Role",
    "Stipulation",
    "User",
    "UserSession",
    # accounts: second factor, password resets, shared login throttles (issue 10)
    "PasswordResetToken",
    "RecoveryCode",
    "Throttle",
    "UTCDateTime",
    "utcnow",
    "ApiKey",
    "DeliveryAttempt",
    "IdempotencyRecord",
    "Notification",
    "OutboxEvent",
    "WEBHOOK_EVENT_TYPES",
    "WebhookDelivery",
    "WebhookEndpoint",
    # scorecards, imports, follow-up pool and contact log (issue 4)
    "ContactCadence",
    "ContactLog",
    "FollowUp",
    "FollowUpNote",
    "ImportBatch",
    "ImportReject",
    "LoanPerformance",
    "ScoreChange",
    "ScorecardSnapshot",
    "ScoringWeights",
    "TierState",
    # reveals with a purpose (issue 10)
    "Reveal",
    "RevealRequest",
    # disputes of scorecard figures and loan records (issue 12)
    "Dispute",
    # messages on a referral between the partner and the bank (issue 13)
    "ReferralMessage",
    # the officers' work queue: saved filters (issue 13)
    "SavedQueueFilter",
    # the bank's branch tree (issue 14)
    "Branch",
    "BranchLevel",
    "DirectoryStamp",
    "DistributionModel",
    # decisions with terms (issue 13)
    "LoanDecision",
    # customers the bank refers to partners (issue 14)
    "CustomerLead",
    "LEAD_OUTCOMES",
    "LEAD_TRANSITIONS",
    "LeadStatus",
    # partners' projects, showrooms and offices, with on-site staff (issue 14)
    "PartnerSite",
    "SiteKind",
    "SiteStaff",
    "WEEKDAYS",
]
