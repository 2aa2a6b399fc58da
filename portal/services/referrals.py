"""Referral intake, attribution and the lifecycle moves, shared by the web pages, API and CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

from flask import current_app
from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, bindparam, false, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from models import (
    BuyerRegistration,
    Organization,
    Product,
    Referral,
    ReferralEvent,
    ReferralTally,
    Stipulation,
    User,
    utcnow,
)
from models.referral import clock_origin
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import (
    Ctx,
    agreements,
    audit,
    branches,
    conditions,
    decisions,
    events,
    pii,
    probes,
    referral_counts,
    referral_intake,
    referral_search,
    reveals,
    sites,
)
from .errors import (
    AlreadyRegistered,
    Forbidden,
    NeverAllowed,
    NotFound,
    StateConflict,
    ValidationFailed,
)
from .lifecycle import (
    AWAITING_ATTRIBUTION,
    CLOCK,
    DECLINE_REASONS,
    HOLD_REVIEW,
    NOTE_REQUIRED,
    TERMINAL,
    State,
    allowed,
    may_ever_move_to,
)
from .scoring import staleness
from .sql import add_inserted, per_dialect
from .validation import field_errors

# States in which a referral does not hold the buyer for its partner.
NOT_HOLDING = (State.withdrawn, State.expired, State.rejected_duplicate, State.declined,
               State.refused)


# Built once: they run on every intake, where building a statement costs more than running it.
_HOLDERS = (select(Referral)
            .where(Referral.national_id_hash.in_([bindparam("id_hash"), bindparam("other_hash")]),
                   Referral.product_code == bindparam("product_code"),
                   Referral.submitted_at >= bindparam("since"),
                   Referral.status.not_in([s.value for s in NOT_HOLDING]))
            .order_by(Referral.submitted_at, Referral.id))
_REFERENCE_USED = select(Referral.id).where(Referral.org_id == bindparam("org_id"),
                                            Referral.external_ref == bindparam("external_ref"))
_PRODUCT = (select(Product).where(Product.code == bindparam("code"))
            .options(joinedload(Product.required_documents)))


@dataclass
class IntakeResult:
    referral: Referral
    conflict: bool
    # Held for a channel manager (docs/attribution.md): then `conflict` is False whatever the
    # attribution check found, so that the answer tells a probing partner nothing.
    held: bool = False


def validate_intake(data: dict, *, today=None, org_id: int | None = None) -> dict:
    """Check a flat intake dict against the intake schema (referral_intake.ReferralIntake);
    return cleaned values, `product` being the Product, or raise ValidationFailed with every
    error by its flat field name. `org_id`: the submitting partner, whose active sites alone
    an intake may name."""
    product = db.session.scalars(_PRODUCT, {"code": data.get("product") or ""}).unique().first()
    try:
        intake = referral_intake.check(data, {
            "product": product, "today": today, "find_site": sites.finder(org_id),
            "notice_version": current_app.config["CONSENT_NOTICE_VERSION"]})
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None
    return {**dict(intake), "product": product, "customer_class": intake.customer_class}


@per_dialect
def _lock_statement(insert):
    statement = insert(BuyerRegistration.__table__)
    return statement.on_conflict_do_update(
        index_elements=["national_id_hash", "product_code"],
        set_={"touched_at": statement.excluded.touched_at})


def _lock_buyer(id_hash: str, product_code: str) -> None:
    """Serialise intakes of one buyer and product so two at once cannot both pass the check.

    One upsert: on PostgreSQL its update takes the row lock (a concurrent first insert waits for
    the other's commit, then updates); on SQLite any write takes the database's write lock.
    """
    db.session.execute(_lock_statement(), {"national_id_hash": id_hash,
                                           "product_code": product_code, "touched_at": utcnow()})


def find_holders(id_hash: str, product_code: str, at: datetime,
                 other_hash: str | None = None) -> list[Referral]:
    """Referrals holding the buyer; `other_hash` is their hash under the other key while keys
    are rotated (pii.id_hashes)."""
    window = timedelta(days=current_app.config["PROTECTION_WINDOW_DAYS"])
    return list(db.session.scalars(_HOLDERS, {
        "id_hash": id_hash, "other_hash": other_hash or id_hash, "product_code": product_code,
        "since": at - window}))


@dataclass
class Intake:
    """A checked intake, ready to register: everything `prepare` read and computed."""
    org: Organization
    product: Product
    clean: dict
    id_hash: str
    other_hash: str
    national_id_enc: str
    mobile_enc: str
    at: datetime | None


def prepare(ctx: Ctx, org: Organization, data: dict, *, check_product=None, gate: bool = True,
            at: datetime | None = None) -> Intake:
    """Check an intake for `org` without writing anything, or refuse it.

    `check_product(org, product)` refuses a product not covered; by default the organisation's
    cooperation agreements in force decide (agreements.check_product_covered). `gate=False`
    skips that check: history imports predate the portal. `at` backdates the submission
    (history imports and demo data only). Nothing here writes, so that on SQLite, where one
    writer holds the whole database, the write lock is held only while `register` runs.
    """
    if not org.can_submit:
        raise Forbidden(_l("Only an active partner organisation can submit referrals."))
    clean = validate_intake(data, today=at.date() if at else None, org_id=org.id)
    product: Product = clean["product"]
    if check_product is None and gate:
        check_product = agreements.check_product_covered
    if check_product is not None:
        check_product(org, product)
    if clean["external_ref"] and db.session.scalar(
            _REFERENCE_USED, {"org_id": org.id, "external_ref": clean["external_ref"]}):
        raise _reference_taken()
    id_hash, other_hash = pii.id_hashes(clean["national_id"])
    return Intake(org=org, product=product, clean=clean, id_hash=id_hash, other_hash=other_hash,
                  national_id_enc=pii.encrypt(clean["national_id"]),
                  mobile_enc=pii.encrypt(clean["mobile"]), at=at)


def _reference_taken() -> ValidationFailed:
    return ValidationFailed({"external_ref": _l("This reference is already used by another of "
                                                "your referrals.")})


def register(ctx: Ctx, intake: Intake, *, import_batch_id: int | None = None,
             hold: bool | None = None) -> IntakeResult:
    """Register a prepared intake, or put it in conflict when another partner holds the buyer.
    `import_batch_id`: the import job bringing it in as history. `hold`: the probe-hold verdict
    (probes.should_hold) when the caller has it already: a batch of one partner's buyers asks
    once, as nothing inside the batch withdraws."""
    org, product, clean = intake.org, intake.product, intake.clean
    now = intake.at or utcnow()
    _lock_buyer(intake.id_hash, product.code)
    holders = find_holders(intake.id_hash, product.code, now, intake.other_hash)
    if any(h.org_id == org.id for h in holders):
        raise AlreadyRegistered()
    conflict = any(h.status not in AWAITING_ATTRIBUTION for h in holders)
    held = probes.should_hold(org.id, now) if hold is None else hold
    status = State.held if held else State.conflict if conflict else State.submitted
    referral = Referral(
        org_id=org.id, submitted_by_id=ctx.user.id if ctx.user else None,
        product_code=product.code, external_ref=clean["external_ref"],
        buyer_name=clean["buyer_name"], national_id_hash=intake.id_hash,
        national_id_enc=intake.national_id_enc,
        national_id_masked=pii.mask_national_id(clean["national_id"]),
        mobile_enc=intake.mobile_enc, mobile_masked=pii.mask_mobile(clean["mobile"]),
        employer=clean["employer"], industry=clean["industry"],
        customer_class=clean["customer_class"], monthly_income=clean["monthly_income"],
        amount=clean["amount"], term_months=clean["term_months"],
        asset_description=clean["asset_description"], asset_price=clean["asset_price"],
        down_payment=clean["down_payment"],
        **referral_search.stored_keys(buyer_name=clean["buyer_name"],
                                      external_ref=clean["external_ref"], mobile=clean["mobile"]),
        consent_notice_version=clean["consent_notice_version"],
        consent_obtained_at=clean["consent_obtained_at"],
        status=status.value, clock=CLOCK[status], status_changed_at=now, submitted_at=now,
        import_batch_id=import_batch_id, site_id=clean["site"],
    )
    try:
        # No savepoint: a caller that goes on after a refusal (the imports) holds its own. A
        # reference taken by a concurrent intake since `prepare` looked ends up here.
        add_inserted(referral)
    except IntegrityError:
        raise _reference_taken() from None
    event = ReferralEvent(
        referral_id=referral.id, at=now, actor_id=referral.submitted_by_id, from_state=None,
        to_state=status.value, clock=CLOCK[status],
        reason_code="probe_hold" if held else "already_registered" if conflict else None)
    checklist = [Stipulation(referral_id=referral.id, kind=doc.kind, requested_at=now)
                 for doc in product.required_documents]
    set_committed_value(referral, "events", add_inserted(event))
    set_committed_value(referral, "stipulations", add_inserted(*checklist))
    audit.record(ctx, "referral.submit", referral, status=status.value)
    if held:
        probes.held(ctx, referral, now)  # audited, and the channel manager alerted
    staleness.mark_stale(org.id)  # the partner's scorecards need a recompute
    return IntakeResult(referral, conflict and not held, held)


def submit(ctx: Ctx, org: Organization, data: dict, *, import_batch_id: int | None = None,
           **options) -> IntakeResult:
    """Check and register a referral in one go (`prepare`'s options apply)."""
    return register(ctx, prepare(ctx, org, data, **options), import_batch_id=import_batch_id)


def transition(ctx: Ctx, referral: Referral, to: str, *, note: str | None = None,
               partner_note: str | None = None, reason_code: str | None = None,
               expected_version: int | None = None, at: datetime | None = None,
               hold_review: bool = False, terms: dict | None = None) -> ReferralEvent:
    """Move a referral along the lifecycle, or refuse with StateConflict.

    A move out of `held` is made only by the held-submission review (`hold_review`,
    services/holds.py), which decides between submitted and conflict. `terms` are what an
    approval, a contract or a disbursement records (services/decisions.py): checked, then
    written with the move; None records none."""
    try:
        target = State(to)
    except ValueError:
        raise ValidationFailed({"to": _l("Unknown state.")}) from None
    if not may_ever_move_to(target.value, ctx.role):
        raise NeverAllowed(_l("Your role may not move a referral to %(to)s.", to=target.value))
    if expected_version is not None and expected_version != referral.version:
        raise StateConflict(_l("Someone else changed this referral while you were looking at it. "
                               "Reload it and try again."))
    current = referral.status
    if not allowed(current, target.value, ctx.role):
        raise StateConflict(_l("A referral that is %(from)s cannot move to %(to)s.",
                               **{"from": current, "to": target.value}))
    if (State(current), target) in HOLD_REVIEW and not hold_review:
        raise StateConflict(_l("Release or refuse a held submission from the list of held "
                               "submissions."))
    note = (note or "").strip() or None
    if (State(current), target) in NOTE_REQUIRED and not note:
        raise ValidationFailed({"note": _l("Write the reason for this decision.")})
    if target == State.declined:
        if reason_code not in DECLINE_REASONS:
            raise ValidationFailed({"reason_code": _l("Choose a reason category.")})
    elif reason_code is not None and reason_code not in DECLINE_REASONS:
        reason_code = None
    if (ctx.user is not None and ctx.user.is_partner and current == State.documents_requested
            and target == State.under_review):
        if conditions.outstanding(referral):
            raise StateConflict(_l("Upload every requested document before sending it back."))
    now = at or utcnow()
    checked_terms = decisions.check(referral, target, terms, at=now)
    # No autoflush while the referral changes: the version check must happen in the one flush
    # below, where a lost race becomes a StateConflict.
    with db.session.no_autoflush:
        event = _apply(ctx, referral, target, now, note=note,
                       partner_note=partner_note, reason_code=reason_code)
        if checked_terms is not None:
            decisions.record(referral, checked_terms, now)
        if target in TERMINAL:
            conditions.settle_on_close(referral)
    try:
        db.session.flush()
    except StaleDataError:
        raise StateConflict(_l("Someone else changed this referral at the same moment. "
                               "Reload it and try again.")) from None
    audit.record(ctx, "referral.transition", referral, **{"from": current, "to": target.value},
                 **decisions.audit_detail(checked_terms))
    events.referral_transitioned(ctx, referral, event)  # webhooks and notifications, same txn
    if checked_terms is not None or target in sites.COUNTED:
        sites.check_quota(ctx, referral)  # the site's quota: warn at 80 % and 100 %, once each
    staleness.mark_stale(referral.org_id)  # the partner's scorecards need a recompute
    return event


def replay(ctx: Ctx, referral, target: State, now: datetime, *, note=None,
           reason_code=None) -> ReferralEvent:
    """Apply a move already checked against the lifecycle to a referral not yet written (the
    bulk history import builds referrals in memory): the same clocks, milestones and event as
    `transition`. `referral` may be any object with the referral's fields and an `events`
    list; the event is a plain namespace of the event's fields (the caller inserts the rows
    itself: a mapped object would only cost its instrumentation)."""
    return _apply(ctx, referral, target, now, note=note, partner_note=None,
                  reason_code=reason_code, event_type=SimpleNamespace)


def _apply(ctx: Ctx, referral: Referral, target: State, now: datetime, *, note, partner_note,
           reason_code, event_type=ReferralEvent) -> ReferralEvent:
    """Move the referral to `target` at `now`: clocks, milestone dates and the timeline event."""
    elapsed = max(0, int((now - referral.status_changed_at).total_seconds()))
    if referral.clock == "bank":
        referral.bank_seconds += elapsed
    elif referral.clock == "partner":
        referral.partner_seconds += elapsed
    event = event_type(at=now, actor_id=ctx.user.id if ctx.user else None,
                       from_state=referral.status, to_state=target.value, clock=CLOCK[target],
                       note=note, partner_note=(partner_note or "").strip() or None,
                       reason_code=reason_code)
    referral.status = target.value
    referral.clock = CLOCK[target]
    referral.status_changed_at = now
    # The queue orders by this (models/referral.py): it moves with every banked second.
    referral.bank_clock_origin = clock_origin(now, referral.bank_seconds)
    if target == State.documents_requested:
        referral.ever_documents_requested = True
    if target in (State.approved, State.declined) and referral.decided_at is None:
        referral.decided_at = now
    if target == State.declined:
        referral.decline_reason = reason_code
    if target == State.disbursed:
        referral.disbursed_at = now
    if CLOCK[target] is None:
        referral.closed_at = now
    referral.events.append(event)
    return event


def visible_referrals(user: User) -> Select:
    """Every referral this user may see: their own organisation's, or for bank staff those of
    their branch's partners (services/branches.py)."""
    return select(Referral).where(visible_orgs(user, Referral.org_id))


def visible_orgs(user: User, org_column) -> ColumnElement[bool]:
    """The condition on an organisation id column (Referral.org_id, ReferralTally.org_id) that
    keeps the organisations whose referrals `user` may see."""
    if user.is_partner:
        return org_column == user.org_id
    if not user.is_bank:
        return false()
    return branches.in_scope(user, org_column)


def visible_count(user: User, *, statuses: tuple[str, ...] | None = None,
                  org_code: str | None = None) -> int:
    """How many of `visible_referrals(user)` there are (in `statuses`; of the partner `org_code`
    names), exactly, from the tally rather than by counting them (services/referral_counts.py)."""
    where = [visible_orgs(user, ReferralTally.org_id)]
    if org_code is not None:
        where.append(ReferralTally.org_id.in_(
            select(Organization.id).where(Organization.code == org_code)))
    return referral_counts.total(*where, statuses=statuses)


def get_for(user: User, referral_id: int) -> Referral:
    """Load a referral the user may see; another organisation's, or another branch's, is simply
    not found."""
    referral = db.session.get(Referral, referral_id)
    if referral is None or (user.is_partner and referral.org_id != user.org_id) or not (
            user.is_partner or user.is_bank):
        raise NotFound()
    if user.is_bank and not branches.may_see_org(user, referral.org):
        raise NotFound()
    return referral


def search(query: Select, *, q: str | None = None, status: str | None = None,
           product: str | None = None, org_id: int | None = None) -> Select:
    """Narrow a referral list: `q` as the search box reads it (services/referral_search.py)."""
    condition = referral_search.matching(q)
    if condition is not None:
        query = query.where(condition)
    if status:
        query = query.where(Referral.status == status)
    if product:
        query = query.where(Referral.product_code == product)
    if org_id:
        query = query.where(Referral.org_id == org_id)
    return query


def reveal(ctx: Ctx, referral: Referral, reason_code: str | None = None,
           reason_text: str | None = None) -> dict:
    """The buyer's full ID number and mobile for bank staff: with a reason, within the hourly
    limit or on a manager's approval, recorded and audited (services/reveals.py)."""
    if referral.anonymised_at is not None:
        raise StateConflict(_l("This buyer's personal data was removed under the retention "
                               "policy."))
    return reveals.reveal(ctx, referral, reason_code, reason_text)


def bank_clock_seconds(referral: Referral, now: datetime | None = None) -> int:
    running = referral.clock == "bank"
    extra = ((now or utcnow()) - referral.status_changed_at).total_seconds() if running else 0
    return referral.bank_seconds + max(0, int(extra))


def partner_clock_seconds(referral: Referral, now: datetime | None = None) -> int:
    running = referral.clock == "partner"
    extra = ((now or utcnow()) - referral.status_changed_at).total_seconds() if running else 0
    return referral.partner_seconds + max(0, int(extra))


@dataclass(frozen=True)
class OtherBranchHolder:
    """An earlier holder that belongs to another branch's partner: the viewer learns that the
    buyer is held and since when, not by whom (that is the other branch's to see)."""

    submitted_at: datetime
    status: str
    hidden: bool = True


def conflict_holder(referral: Referral, user: User | None = None
                    ) -> Referral | OtherBranchHolder | None:
    """For bank staff: the earlier referral that holds the buyer a conflict is about (for a
    `user` outside its partner's branch, only that it exists)."""
    hashes = (referral.national_id_hash, None)
    if pii.rotating() and referral.anonymised_at is None:  # it may be held under either key
        hashes = pii.id_hashes(pii.decrypt(referral.national_id_enc))
    holders = [h for h in find_holders(hashes[0], referral.product_code,
                                       referral.submitted_at, hashes[1])
               if h.id != referral.id and h.status not in AWAITING_ATTRIBUTION]
    if not holders:
        return None
    if user is not None and not branches.may_see_org(user, holders[0].org):
        return OtherBranchHolder(holders[0].submitted_at, holders[0].status)
    return holders[0]


def with_holders(items, user: User | None = None
                 ) -> list[tuple[Referral, Referral | OtherBranchHolder | None]]:
    """Each conflict or held submission with the earlier referral that holds the buyer (for
    bank staff only: a partner never learns who holds a buyer)."""
    return [(r, conflict_holder(r, user)) for r in items]
