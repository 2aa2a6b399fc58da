"""Who may manage agreements and their templates."""

from __future__ import annotations

from models import Role
from portal.i18n import lazy_gettext as _l

from .. import Ctx
from ..errors import Forbidden

MANAGER_ROLES = frozenset({Role.channel_manager.value, Role.admin.value})
SYSTEM = Ctx(user=None, ip=None)


def require_manager(ctx: Ctx) -> None:
    # ctx.user None is the system (demo data, CLI); anyone else must be a channel manager or admin.
    if ctx.user is not None and ctx.user.role not in MANAGER_ROLES:
        raise Forbidden(_l("Only channel managers and administrators manage agreements."))


def require_admin(ctx: Ctx) -> None:
    if ctx.user is not None and ctx.user.role != Role.admin.value:
        raise Forbidden(_l("Only administrators edit agreement templates."))
