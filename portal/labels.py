"""Display names of the codes the portal uses, in both languages (through Flask-Babel)."""

from portal.i18n import lazy_gettext as _l

STATES = {
    "submitted": _l("Submitted"),
    "documents_requested": _l("Documents requested"),
    "under_review": _l("Under review"),
    "approved": _l("Approved"),
    "contract_signed": _l("Contract signed"),
    "disbursed": _l("Disbursed"),
    "declined": _l("Declined"),
    "withdrawn": _l("Withdrawn"),
    "conflict": _l("Already registered (conflict)"),
    "rejected_duplicate": _l("Rejected as duplicate"),
    "expired": _l("Expired"),
    "held": _l("Held for review (probing)"),
    "refused": _l("Refused after review"),
}

# What the partner sees for a conflict: only that the buyer is already registered.
PARTNER_STATES = {**STATES, "conflict": _l("Buyer already registered"),
                  "rejected_duplicate": _l("Not processed: buyer already registered"),
                  "held": _l("Held for review by the bank"),
                  "refused": _l("Not accepted by the bank")}

STATE_BADGES = {
    "submitted": "primary", "documents_requested": "warning", "under_review": "info",
    "approved": "success", "contract_signed": "success", "disbursed": "dark",
    "declined": "danger", "withdrawn": "secondary", "conflict": "warning",
    "rejected_duplicate": "secondary", "expired": "secondary", "held": "warning",
    "refused": "secondary",
}

ACTIONS = {
    "under_review": _l("Start review"),
    "documents_requested": _l("Request documents"),
    "approved": _l("Approve"),
    "declined": _l("Decline"),
    "contract_signed": _l("Record contract signed"),
    "disbursed": _l("Record disbursement"),
    "withdrawn": _l("Withdraw"),
    "expired": _l("Mark expired"),
    "submitted": _l("Grant to this partner"),
    "rejected_duplicate": _l("Reject as duplicate"),
    "refused": _l("Refuse"),
}

ROLES = {
    "partner_agent": _l("Partner sales agent"),
    "partner_admin": _l("Partner administrator"),
    "credit_officer": _l("Credit officer"),
    "channel_manager": _l("Channel manager"),
    "admin": _l("Administrator"),
}

PARTNER_TYPES = {
    "real_estate_developer": _l("Real-estate developer"),
    "property_broker": _l("Property broker"),
    "car_dealer": _l("Car dealer"),
    "car_manufacturer": _l("Car manufacturer"),
    "study_abroad_agency": _l("Study-abroad agency"),
    "retail_mall": _l("Retail mall"),
    "law_firm": _l("Law firm"),
    "appraiser": _l("Appraiser"),
    "guarantee_company": _l("Guarantee company"),
    "credit_rating_agency": _l("Credit rating agency"),
    "insurer": _l("Insurer"),
    "bank": _l("Bank"),
}

ORG_STATUSES = {
    "pending": _l("Pending"),
    "active": _l("Active"),
    "suspended": _l("Suspended"),
    "terminated": _l("Terminated"),
}

INDUSTRIES = {
    "government": _l("Government bodies"),
    "education_science_culture_health": _l("Education, science, culture and health"),
    "military": _l("Military"),
    "finance_insurance": _l("Finance and insurance"),
    "post_telecom": _l("Post and telecom"),
    "utilities": _l("Water, power and gas utilities"),
    "industry_transport": _l("Industry and transport"),
    "commerce_trade": _l("Commerce and trade"),
    "real_estate_construction": _l("Real estate and construction"),
    "agriculture": _l("Agriculture, forestry, husbandry and fishery"),
    "social_services": _l("Social services"),
    "other": _l("Other"),
}

DOCUMENT_KINDS = {
    "id_card": _l("ID card"),
    "income_proof": _l("Proof of income"),
    "purchase_contract": _l("Purchase contract"),
    "down_payment_receipt": _l("Down-payment receipt"),
    "vehicle_invoice": _l("Vehicle invoice"),
    "admission_letter": _l("Admission letter"),
    "bank_statement": _l("Bank statement"),
    "other": _l("Other document"),
}

STIPULATION_STATUSES = {
    "missing": _l("Missing"),
    "uploaded": _l("Uploaded, awaiting review"),
    "accepted": _l("Accepted"),
    "rejected": _l("Rejected"),
    "pending": _l("Awaiting review"),
    # A file sent again (or reviewed in a newer file), and what a closed referral leaves behind.
    "superseded": _l("Replaced by a newer upload"),
    "not_reviewed": _l("Not reviewed — decision made"),
    "not_needed": _l("No longer needed — decision made"),
}

DECLINE_REASONS = {
    "credit_policy": _l("Does not meet credit policy"),
    "income_insufficient": _l("Income insufficient"),
    "documents_unverifiable": _l("Documents could not be verified"),
    "collateral_insufficient": _l("Collateral insufficient"),
    "other": _l("Other reason"),
}

# Reason codes on the bank's timeline: the decline categories, and why a referral went to conflict.
EVENT_REASONS = {
    **DECLINE_REASONS,
    "already_registered": _l("Same buyer and product registered by another partner within the "
                             "protection window"),
    "probe_hold": _l("Held: the partner withdrew too many already-registered submissions today"),
}

# Why a buyer's full ID number and mobile are revealed (services/reveals.py).
REVEAL_REASONS = {
    "identity_verification": _l("Identity verification with the buyer"),
    "credit_bureau_check": _l("Credit bureau check"),
    "fraud_investigation": _l("Fraud investigation"),
    "customer_complaint": _l("Customer complaint"),
    "other": _l("Other (say why)"),
}
REVEAL_REQUEST_STATUSES = {"pending": _l("Waiting for a manager"), "approved": _l("Approved"),
                           "refused": _l("Refused"), "used": _l("Used")}

CLOCKS = {"bank": _l("Bank"), "partner": _l("Partner")}

# A loan statement's status (loan performance imports).
LOAN_STATUSES = {"current": _l("Current"), "delinquent": _l("Delinquent"),
                 "npl": _l("Non-performing"), "closed": _l("Closed")}

# How a loan is repaid (the partners' payment calculator).
REPAYMENT_METHODS = {"equal_instalment": _l("Equal instalments (level monthly payment)"),
                     "equal_principal": _l("Equal principal (payments fall month by month)")}

ASSET_KINDS = {"property": _l("Property"), "vehicle": _l("Vehicle"), "none": _l("None")}

ALL = {
    "STATES": STATES, "PARTNER_STATES": PARTNER_STATES, "STATE_BADGES": STATE_BADGES,
    "ACTIONS": ACTIONS, "ROLES": ROLES, "PARTNER_TYPES": PARTNER_TYPES,
    "ORG_STATUSES": ORG_STATUSES, "INDUSTRIES": INDUSTRIES, "DOCUMENT_KINDS": DOCUMENT_KINDS,
    "STIPULATION_STATUSES": STIPULATION_STATUSES, "DECLINE_REASONS": DECLINE_REASONS,
    "EVENT_REASONS": EVENT_REASONS,
    "CLOCKS": CLOCKS, "LOAN_STATUSES": LOAN_STATUSES,
    "REVEAL_REASONS": REVEAL_REASONS, "REVEAL_REQUEST_STATUSES": REVEAL_REQUEST_STATUSES,
    "REPAYMENT_METHODS": REPAYMENT_METHODS, "ASSET_KINDS": ASSET_KINDS,
}

# Cooperation agreements.
AGREEMENT_STATUSES = {
    "draft": _l("Draft"),
    "issued": _l("Issued, awaiting acceptance"),
    "accepted": _l("Accepted, not yet effective"),
    "active": _l("Active"),
    "expired": _l("Expired"),
    "superseded": _l("Superseded by a renewal"),
    "terminated": _l("Terminated"),
}

AGREEMENT_BADGES = {
    "draft": "secondary", "issued": "primary", "accepted": "info", "active": "success",
    "expired": "dark", "superseded": "secondary", "terminated": "danger",
}

PARTNER_FAMILIES = {
    "real_estate": _l("Real estate (developers, brokers)"),
    "auto": _l("Automotive (dealers, manufacturers)"),
    "study_abroad": _l("Study-abroad agencies"),
    "retail": _l("Retail malls"),
    "service": _l("Service partners (law firms, appraisers, guarantors, raters, insurers)"),
}

ALL.update({"AGREEMENT_STATUSES": AGREEMENT_STATUSES, "AGREEMENT_BADGES": AGREEMENT_BADGES,
            "PARTNER_FAMILIES": PARTNER_FAMILIES})

# Follow-up pool and contact log.
FOLLOW_UP_REASONS = {
    "declined": _l("Declined (not for credit policy)"),
    "withdrawn": _l("Withdrawn"),
    "expired": _l("Expired waiting for documents"),
    "stalled": _l("Stalled"),
    "other": _l("Other"),
}
FOLLOW_UP_STATUSES = {"open": _l("Open"), "in_progress": _l("In progress"), "closed": _l("Closed")}
FOLLOW_UP_OUTCOMES = {
    "converted": _l("Came back: new referral or application"),
    "not_interested": _l("Not interested now"),
    "unreachable": _l("Could not be reached"),
    "other": _l("Other"),
}
FOLLOW_UP_NOTE_KINDS = {"call": _l("Call"), "visit": _l("Visit"), "message": _l("Message"),
                        "note": _l("Note")}
CONTACT_KINDS = {"visit": _l("Visit"), "call": _l("Call"), "meeting": _l("Meeting")}

# In-app and e-mail notifications.
NOTIFICATION_KINDS = {
    "referral_status": _l("Referral status changed"),
    "documents_requested": _l("Documents requested"),
    "item_rejected": _l("Document rejected"),
    "agreement_issued": _l("Agreement issued"),
    "agreement_expiring": _l("Agreement expiring"),
    "probe_hold": _l("Submissions held for review"),
    "referral_message": _l("Message on a referral"),
    "lead_received": _l("A customer referred by the bank"),
    "lead_answered": _l("A partner answered a customer referral"),
    "site_quota": _l("Site quota nearly used"),
}

# Partner tiers (scorecards); the KPIs' own labels sit with their definitions in scoring/kpis.py.
TIER_LABELS = {
    "strategic": _l("Strategic"),
    "core": _l("Core"),
    "watch": _l("Watch"),
    "exit": _l("Exit"),
}
TIER_BADGES = {"strategic": "success", "core": "primary", "watch": "warning", "exit": "danger"}
TIER_COLOURS = {"strategic": "#198754", "core": "#0d6efd", "watch": "#ffc107", "exit": "#dc3545"}

# Import jobs (portal/services/imports/jobs.py).
IMPORT_STATUSES = {
    "queued": _l("Queued"),
    "running": _l("Running"),
    "done": _l("Done"),
    "refused": _l("Refused"),
    "cancelled": _l("Cancelled"),
    "failed": _l("Failed"),
}
ALL.update({"IMPORT_STATUSES": IMPORT_STATUSES})

# The bank's branch tree (portal/services/branches.py): levels, and how a branch works its
# region's partners (the source study's three ways).
BRANCH_LEVELS = {0: _l("Province"), 1: _l("Second-level branch"), 2: _l("Operating branch")}
DISTRIBUTION_MODELS = {
    "loan_centre_deep": _l("Loan-centre deep distribution"),
    "joint_deep": _l("Joint deep distribution with operating branch"),
    "key_account": _l("Key-account maintenance"),
}
ALL.update({"BRANCH_LEVELS": BRANCH_LEVELS, "DISTRIBUTION_MODELS": DISTRIBUTION_MODELS})

# Partner admission (portal/services/admission.py): applications and annual reviews.
APPLICATION_STATUSES = {
    "submitted": _l("Waiting for the bank"),
    "info_requested": _l("Waiting for the applicant"),
    "approved": _l("Approved"),
    "declined": _l("Declined"),
}
APPLICATION_BADGES = {"submitted": "primary", "info_requested": "warning",
                      "approved": "success", "declined": "secondary"}
REVIEW_OUTCOMES = {
    "passed": _l("Passed"),
    "conditional": _l("Passed with conditions"),
    "failed": _l("Failed"),
}
REVIEW_DUE_STATES = {"due": _l("Due soon"), "overdue": _l("Overdue"), "ok": _l("Up to date")}
ALL.update({"APPLICATION_STATUSES": APPLICATION_STATUSES,
            "APPLICATION_BADGES": APPLICATION_BADGES, "REVIEW_OUTCOMES": REVIEW_OUTCOMES,
            "REVIEW_DUE_STATES": REVIEW_DUE_STATES})
# Customers the bank refers to partners (portal/services/customer_leads.py).
LEAD_STATUSES = {
    "sent": _l("Waiting for the partner"),
    "accepted": _l("Accepted"),
    "declined": _l("Declined"),
    "contacted": _l("Contacted"),
    "won": _l("Deal made"),
    "lost": _l("No deal"),
}
LEAD_BADGES = {"sent": "warning", "accepted": "primary", "declined": "secondary",
               "contacted": "info", "won": "success", "lost": "dark"}
LEAD_NEEDS = {
    "home_decoration": _l("Home decoration"),
    "home_purchase": _l("Buying a home"),
    "car_purchase": _l("Buying a car"),
    "study_abroad": _l("Studying abroad"),
    "other": _l("Something else"),
}
CONSENT_METHODS = {
    "signed_form": _l("Signed consent form at the branch"),
    "recorded_call": _l("Recorded telephone call"),
    "mobile_app": _l("In the bank's mobile app"),
}
ALL.update({"LEAD_STATUSES": LEAD_STATUSES, "LEAD_BADGES": LEAD_BADGES, "LEAD_NEEDS": LEAD_NEEDS,
            "CONSENT_METHODS": CONSENT_METHODS})
# Partners' sites (models/site.py) and the days of the week on-site staff sit there.
SITE_KINDS = {
    "project": _l("Real-estate project"),
    "showroom": _l("Dealer showroom"),
    "office": _l("Agency office"),
}
WEEKDAY_LABELS = {
    "mon": _l("Mon"), "tue": _l("Tue"), "wed": _l("Wed"), "thu": _l("Thu"), "fri": _l("Fri"),
    "sat": _l("Sat"), "sun": _l("Sun"),
}
ALL.update({"SITE_KINDS": SITE_KINDS, "WEEKDAY_LABELS": WEEKDAY_LABELS})
