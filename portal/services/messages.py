"""Messages on a referral: one thread between the partner's users and the bank's staff.

What is written here is read by both sides, so it is partner text from the first keystroke; the
bank's internal notes stay on events, documents and follow-ups and never enter a thread. Each
message is unread until someone on the side it was written to reads the thread (or answers it).

A partner's message tells the bank contact (`bank_contact`: the officer who last acted on the
referral; the credit officers together while none has) and the partner's channel manager; a
bank's message tells the partner organisation's users, in the portal and by e-mail, and the
partner's systems by the `referral.message` webhook.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Select, func, or_, select, update

from models import Organization, Referral, ReferralMessage, Role, User, utcnow
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, branches, disclosure, notifications, webhooks
from .errors import Forbidden, NotFound, StateConflict
from .referrals import visible_referrals
from .validation import checked, refusal

MAX_LENGTH = 2000
# What a notice repeats of the message; the rest is read in the portal.
EXCERPT = 200


class MessageInput(BaseModel):
    """One message, from the page's form or the API's body."""

    model_config = ConfigDict(extra="ignore")
    body: str = Field(description=f"The message, 1 to {MAX_LENGTH} characters. Both sides read "
                                  "it: the partner's users and the bank's staff.",
                      json_schema_extra={"minLength": 1, "maxLength": MAX_LENGTH})

    @field_validator("body", mode="before")
    @classmethod
    def _body(cls, value):
        if not isinstance(value, str):
            raise refusal(_l("Write the message as text."))
        # One form of line break, and no blank edges: what is kept is what both sides read.
        value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
        if not value:
            raise refusal(_l("Write a message before sending it."))
        if "\x00" in value:
            raise refusal(_l("The message contains a character that cannot be kept."))
        if len(value) > MAX_LENGTH:
            raise refusal(_l("A message can be at most %(max)d characters; this one has "
                             "%(n)d. Shorten it or send it in two parts.",
                             max=MAX_LENGTH, n=len(value)))
        return value


def side_of(user: User) -> str:
    return "partner" if user.is_partner else "bank"


def _other(side: str) -> str:
    return "bank" if side == "partner" else "partner"


def _writer(ctx: Ctx, referral: Referral) -> User:
    """The person writing or reading a thread: the partner's own user or bank staff."""
    user = ctx.user
    if user is None or not (user.is_partner or user.is_bank):
        raise Forbidden(_l("Only the partner's users and the bank's staff write on a referral."))
    if user.is_partner and user.org_id != referral.org_id:
        raise NotFound()
    return user


# --- the named people --------------------------------------------------------------------------

def bank_contact(referral: Referral) -> User | None:
    """The officer the partner deals with on this referral: the one assigned to it when
    referrals have one, else the credit officer who last acted on it (a move, or a message);
    None while no officer has, and the credit officers answer together."""
    assigned = getattr(referral, "assigned_to", None)
    if isinstance(assigned, User) and assigned.active:
        return assigned
    latest: tuple | None = None
    for event in referral.events:
        actor = event.actor
        if actor is not None and actor.role == Role.credit_officer.value and actor.active:
            if latest is None or event.at >= latest[0]:
                latest = (event.at, actor)
    written = db.session.scalar(
        select(ReferralMessage).join(User, User.id == ReferralMessage.author_id)
        .where(ReferralMessage.referral_id == referral.id,
               User.role == Role.credit_officer.value, User.active.is_(True))
        .order_by(ReferralMessage.id.desc()).limit(1))
    if written is not None and (latest is None or written.created_at >= latest[0]):
        return written.author
    return latest[1] if latest else None


def channel_manager(referral: Referral) -> User | None:
    manager = referral.org.channel_manager
    return manager if manager is not None and manager.active and manager.is_bank else None


def _officers(referral: Referral) -> list[User]:
    """The credit officers who may open the referral (its partner is in their branch's tree)."""
    return [user for user in db.session.scalars(select(User).where(
        User.role == Role.credit_officer.value, User.active.is_(True)).order_by(User.id))
        if branches.may_see_org(user, referral.org)]


# --- the thread --------------------------------------------------------------------------------

def thread(referral: Referral) -> list[ReferralMessage]:
    return list(db.session.scalars(
        select(ReferralMessage).where(ReferralMessage.referral_id == referral.id)
        .order_by(ReferralMessage.id)))


def thread_page(referral: Referral) -> Select:
    """The thread for a paged list (the API), oldest first."""
    return (select(ReferralMessage).where(ReferralMessage.referral_id == referral.id)
            .order_by(ReferralMessage.id))


def post(ctx: Ctx, referral: Referral, body) -> ReferralMessage:
    """Write a message on the referral's thread and tell the other side (flush only)."""
    user = _writer(ctx, referral)
    if referral.anonymised_at is not None:
        # Its buyer's data is gone under retention; a new message could bring some back.
        raise StateConflict(_l("This referral's personal data has been removed under the "
                               "retention rules: its messages are closed."))
    clean = checked(MessageInput, {"body": body})
    side = side_of(user)
    message = ReferralMessage(referral_id=referral.id, author_id=user.id, side=side,
                              body=clean.body, created_at=utcnow())
    db.session.add(message)
    db.session.flush()
    # Answering a thread is reading it.
    mark_read(ctx, referral)
    _announce(ctx, referral, message)
    return message


def mark_read(ctx: Ctx, referral: Referral) -> int:
    """Everything the other side wrote on this thread is now read by the reader's side."""
    user = _writer(ctx, referral)
    return db.session.execute(
        update(ReferralMessage)
        .where(ReferralMessage.referral_id == referral.id,
               ReferralMessage.side == _other(side_of(user)),
               ReferralMessage.read_at.is_(None))
        .values(read_at=utcnow(), read_by_id=user.id)
        .execution_options(synchronize_session=False)).rowcount or 0


def _announce(ctx: Ctx, referral: Referral, message: ReferralMessage) -> None:
    params = {"referral_id": referral.id, "external_ref": referral.external_ref,
              "side": message.side, "author": message.author.name if message.author else None,
              "excerpt": _excerpt(disclosure.partner_text(message, "body"))}
    if message.side == "bank":
        notifications.notify_org(referral.org_id, "referral_message", params,
                                 exclude_user_id=ctx.user.id)
        webhooks.emit(referral.org_id, "referral.message",
                      {"referral": disclosure.webhook_referral(referral),
                       "message": disclosure.message(message, referral.org_id, iso=True)},
                      at=message.created_at)
        return
    contact = bank_contact(referral)
    staff = [contact] if contact is not None else _officers(referral)
    manager = channel_manager(referral)
    # By id: users compare equal by their session token (flask_login), None for all here.
    if manager is not None and manager.id not in {u.id for u in staff}:
        staff.append(manager)
    notifications.notify_staff(staff, "referral_message",
                               {**params, "org_name": referral.org.name,
                                "org_code": referral.org.code})


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[:EXCERPT - 1].rstrip() + "…"


# --- unread ------------------------------------------------------------------------------------

def _threads(user: User, *, my_partners: bool = False):
    """The referrals whose threads the user sees; with `my_partners`, a channel manager's own
    partners' and those of partners with no channel manager (so that none is left unseen)."""
    query = visible_referrals(user).with_only_columns(Referral.id)
    if my_partners:
        query = query.where(Referral.org_id.in_(select(Organization.id).where(or_(
            Organization.channel_manager_id == user.id,
            Organization.channel_manager_id.is_(None)))))
    return query


def _unread(user: User, *, my_partners: bool = False):
    """The condition: a message the user's side has not read, on a thread the user sees."""
    return (ReferralMessage.side == _other(side_of(user)),
            ReferralMessage.read_at.is_(None),
            ReferralMessage.referral_id.in_(_threads(user, my_partners=my_partners)))


def counts_my_partners(user: User) -> bool:
    """A channel manager's badge counts their own partners' threads; officers' and admins'
    count every one."""
    return user.role == Role.channel_manager.value


def unread_count(user: User) -> int:
    """Messages written to the user's side and not read yet (the menu's badge)."""
    if not (user.is_partner or user.is_bank):
        return 0
    return db.session.scalar(_unread_count(user)) or 0


@branches.per_scope
def _unread_count(scope: branches.Scope):
    return select(func.count(ReferralMessage.id)).where(
        *_unread(scope, my_partners=counts_my_partners(scope)))


def unread_on(user: User, referral: Referral) -> int:
    return db.session.scalar(select(func.count(ReferralMessage.id)).where(
        *_unread(user), ReferralMessage.referral_id == referral.id)) or 0


def inbox(user: User, *, unread_only: bool = False, my_partners: bool = False) -> Select:
    """The threads the user can see, as their latest message each, the newest first."""
    latest = (select(func.max(ReferralMessage.id))
              .where(ReferralMessage.referral_id.in_(_threads(user, my_partners=my_partners)))
              .group_by(ReferralMessage.referral_id))
    query = select(ReferralMessage).where(ReferralMessage.id.in_(latest))
    if unread_only:
        query = query.where(ReferralMessage.referral_id.in_(
            select(ReferralMessage.referral_id).where(*_unread(user))))
    return query.order_by(ReferralMessage.id.desc())


def unread_by_referral(user: User, referral_ids: list[int]) -> dict[int, int]:
    """{referral id: unread messages} for the rows of a list."""
    if not referral_ids:
        return {}
    rows = db.session.execute(
        select(ReferralMessage.referral_id, func.count(ReferralMessage.id))
        .where(ReferralMessage.referral_id.in_(referral_ids),
               ReferralMessage.side == _other(side_of(user)),
               ReferralMessage.read_at.is_(None))
        .group_by(ReferralMessage.referral_id))
    return {referral_id: count for referral_id, count in rows}
