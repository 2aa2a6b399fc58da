"""An officer's named sets of work-queue filters: saved, listed and deleted by their owner only."""

from __future__ import annotations

from sqlalchemy import func, select

from models import SavedQueueFilter, User
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx
from .errors import NotFound, ValidationFailed

# The queue's query-string parameters a saved set may hold (not the page: a saved set starts at
# the first page); anything else in the query string is left out.
PARAMS = ("q", "status", "product", "org", "partner_type", "customer_class", "view", "sort",
          "dir")
MAX_PER_USER = 20
NAME_LENGTH = 60


def list_for(user: User) -> list[SavedQueueFilter]:
    return list(db.session.scalars(
        select(SavedQueueFilter).where(SavedQueueFilter.user_id == user.id)
        .order_by(SavedQueueFilter.name, SavedQueueFilter.id)))


def get_own(user: User, filter_id: int) -> SavedQueueFilter:
    """The user's own saved set; another user's is simply not found."""
    saved = db.session.get(SavedQueueFilter, filter_id)
    if saved is None or saved.user_id != user.id:
        raise NotFound()
    return saved


def save(ctx: Ctx, name: str | None, params: dict[str, str]) -> SavedQueueFilter:
    """Save `params` (already checked by the queue's filter form) under `name`; a name the user
    already has is replaced, so saving again updates a set."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed({"name": _l("Give the filter a name.")})
    if len(name) > NAME_LENGTH:
        raise ValidationFailed({"name": _l("Keep the name to %(n)d characters.", n=NAME_LENGTH)})
    kept = {key: str(value) for key, value in params.items()
            if key in PARAMS and value not in (None, "")}
    if not kept:
        raise ValidationFailed({"name": _l("Choose at least one filter or order to save.")})
    user = ctx.user
    saved = db.session.scalar(select(SavedQueueFilter).where(
        SavedQueueFilter.user_id == user.id, SavedQueueFilter.name == name))
    if saved is not None:
        saved.params = kept
        db.session.flush()
        return saved
    count = db.session.scalar(select(func.count()).select_from(SavedQueueFilter)
                              .where(SavedQueueFilter.user_id == user.id))
    if count >= MAX_PER_USER:
        raise ValidationFailed({"name": _l("You have %(n)d saved filters, the most there can be. "
                                           "Delete one first.", n=MAX_PER_USER)})
    saved = SavedQueueFilter(user_id=user.id, name=name, params=kept)
    db.session.add(saved)
    db.session.flush()
    return saved


def delete(ctx: Ctx, filter_id: int) -> SavedQueueFilter:
    saved = get_own(ctx.user, filter_id)
    db.session.delete(saved)
    db.session.flush()
    return saved
