"""The bank's branch tree (province → second-level branches → operating branches) and the one
rule of who sees what in it.

Bank staff see and act on the partners of their branch's subtree, and on everything of those
partners (referrals, agreements, conflicts, scorecards, follow-ups, contacts, disputes, reveals,
the portfolio); staff of the province (the root, or no branch at all) see everything. Every list
a bank user reads narrows with `in_scope(user, <org id column>)`, and every object loaded by id
checks `may_see_org(user, org)`: another branch's object is not found, as another partner's is.

A subtree is a prefix match on the materialised path ("/1/4/9/"), answered by an index.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, String, case, false, func, literal, select, true
from sqlalchemy import update as sql_update

from models import Branch, BranchLevel, DistributionModel, Organization, User
from models.user import RoleKinds
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, audit
from .errors import Forbidden, ValidationFailed

CODE = re.compile(r"^[A-Z0-9_]{2,32}$")
ROOT_CODE, ROOT_NAME = "PROVINCE", "Provincial branch"
# Province, second-level branch, operating branch: the tree is no deeper.
MAX_LEVEL = BranchLevel.operating.value
MODELS = tuple(m.value for m in DistributionModel)
T = TypeVar("T")


# --- who sees what ----------------------------------------------------------------------------

def scope_branch(user: User | None) -> Branch | None:
    """The branch whose subtree a bank user is limited to; None for provincial staff (the root,
    or no branch), who see everything."""
    if user is None:
        return None
    branch = user.branch
    if branch is None or branch.parent_id is None:
        return None
    return branch


@dataclass(frozen=True)
class ScopeBranch:
    path: str
    parent_id: int | None


@dataclass(frozen=True)
class Scope(RoleKinds):
    """All that the rule of who sees what reads of a user, as plain values: who they are, their
    role, organisation and branch (its path). It stands for the user where a statement is built
    once per scope and kept (`per_scope`); it has nothing else to read."""

    id: int
    role: str
    org_id: int | None
    branch: ScopeBranch | None


def scope_of(user: User) -> Scope:
    branch = user.branch
    return Scope(user.id, user.role, user.org_id,
                 ScopeBranch(branch.path, branch.parent_id) if branch is not None else None)


# Users × statements stay far below this; past it the kept statements are dropped and built
# again, so the store cannot grow without bound.
STATEMENTS_KEPT = 4096


def per_scope(build: Callable[..., T]) -> Callable[..., T]:
    """Decorate `build(scope, *args)`, a statement builder: called with a user, it is built once
    per `Scope` and arguments (plain values), then kept. Building a statement and its cache key
    cost as much as running it on every page's menu badges (issue 15); the values it holds are
    the scope's, so a user who moves to another branch gets another statement."""
    built: dict[tuple, T] = {}

    @wraps(build)
    def statement(user: User | Scope, *args) -> T:
        key = (user if isinstance(user, Scope) else scope_of(user), *args)
        found = built.get(key)
        if found is None:
            if len(built) >= STATEMENTS_KEPT:
                built.clear()
            found = built[key] = build(*key)
        return found

    return statement


def _orgs_under(branch: Branch) -> Select:
    return (select(Organization.id).join(Branch, Branch.id == Organization.branch_id)
            .where(Branch.path.startswith(branch.path)))


def visible_org_ids(user: User | None) -> Select | None:
    """The ids of the organisations a user may see, as a subquery; None when there is no limit
    (the system, provincial staff). A partner user sees their own organisation only."""
    if user is None:
        return None
    if user.is_partner:
        return select(Organization.id).where(Organization.id == user.org_id)
    if not user.is_bank:
        return select(Organization.id).where(false())
    branch = scope_branch(user)
    return None if branch is None else _orgs_under(branch)


def in_scope(user: User | None, org_column) -> ColumnElement[bool]:
    """The condition on an organisation id column (Referral.org_id, Organization.id, ...) that
    keeps what `user` may see: the one `.where(...)` every bank list adds."""
    ids = visible_org_ids(user)
    return true() if ids is None else org_column.in_(ids)


def may_see_org(user: User | None, org: Organization | int | None) -> bool:
    """Whether `user` may see this organisation and its objects (for one object loaded by id)."""
    if org is None:
        return False
    if isinstance(org, int):
        org = db.session.get(Organization, org)
        if org is None:
            return False
    if user is None:
        return True
    if user.is_partner:
        return org.id == user.org_id
    if not user.is_bank:
        return False
    branch = scope_branch(user)
    return branch is None or branch.contains(org.branch)


def in_branch(branch: Branch | None, org_column) -> ColumnElement[bool]:
    """Organisations in `branch`'s subtree (a filter the user chose; the root: all of them)."""
    if branch is None or branch.parent_id is None:
        return true()
    return org_column.in_(_orgs_under(branch))


def staff_in_scope(user: User | None) -> ColumnElement[bool]:
    """Bank users who work inside `user`'s subtree (for the choice of whom to assign)."""
    branch = scope_branch(user)
    if branch is None:
        return true()
    return User.branch_id.in_(select(Branch.id).where(Branch.path.startswith(branch.path)))


# --- reading the tree -------------------------------------------------------------------------

def root() -> Branch | None:
    return db.session.scalar(select(Branch).where(Branch.parent_id.is_(None))
                             .order_by(Branch.id).limit(1))


def by_code(code: str | None) -> Branch | None:
    code = (code or "").strip().upper()
    return db.session.scalar(select(Branch).where(Branch.code == code)) if code else None


def get(branch_id: int) -> Branch | None:
    return db.session.get(Branch, branch_id)


def tree(user: User | None = None) -> list[Branch]:
    """The branches a user may choose from (their subtree; all for provincial staff), in tree
    order: each branch right after its parent."""
    query = select(Branch).order_by(Branch.path)
    branch = scope_branch(user)
    if branch is not None:
        query = query.where(Branch.path.startswith(branch.path))
    rows = list(db.session.scalars(query))
    # Paths sort as text ("/1/10/" before "/1/2/"): order by the ids along the path instead.
    return sorted(rows, key=lambda b: [int(p) for p in b.path.strip("/").split("/") if p])


def choices(user: User | None = None, *, blank: str | None = None) -> list[tuple[str, str]]:
    """(code, indented name) for a select of branches in the user's subtree."""
    out = [("", blank)] if blank is not None else []
    return out + [(b.code, f"{'— ' * b.level}{b.name} ({b.code})") for b in tree(user)]


def visible_branch(user: User | None, code: str | None) -> Branch | None:
    """A branch the user named in a filter, if it is in their subtree (else None: no filter)."""
    branch = by_code(code)
    if branch is None:
        return None
    limit = scope_branch(user)
    return branch if limit is None or limit.contains(branch) else None


def children(branch: Branch | None) -> list[Branch]:
    parent = branch or root()
    if parent is None:
        return []
    return list(db.session.scalars(select(Branch).where(Branch.parent_id == parent.id)
                                   .order_by(Branch.code)))


def rollup_key(anchor: Branch | None):
    """A SQL expression (over Organization.branch_id) naming, for each partner, the branch
    directly under `anchor` (None: the root) whose subtree holds it; partners of the anchor
    itself, and of no branch, get the anchor's code. Group by it to roll figures up a level."""
    top = anchor or root()
    if top is None:
        return literal("")
    whens = [(Organization.branch_id.in_(select(Branch.id).where(
        Branch.path.startswith(child.path))), literal(child.code)) for child in children(top)]
    return case(*whens, else_=literal(top.code)) if whens else literal(top.code)


def names() -> dict[str, str]:
    return dict(db.session.execute(select(Branch.code, Branch.name)).all())


@dataclass
class Counts:
    partners: int
    staff: int


def counts() -> dict[int, Counts]:
    """Partners and bank staff placed directly in each branch."""
    partners = dict(db.session.execute(
        select(Organization.branch_id, func.count()).where(Organization.is_partner,
                                                           Organization.branch_id.is_not(None))
        .group_by(Organization.branch_id)).all())
    staff = dict(db.session.execute(
        select(User.branch_id, func.count()).where(User.branch_id.is_not(None))
        .group_by(User.branch_id)).all())
    return {i: Counts(partners.get(i, 0), staff.get(i, 0)) for i in {*partners, *staff}}


# --- changing the tree ------------------------------------------------------------------------

def _require_provincial_admin(ctx: Ctx) -> None:
    # The tree is the province's to shape: an administrator of a branch may not redraw it.
    if ctx.user is not None and (ctx.user.role != "admin" or scope_branch(ctx.user) is not None):
        raise Forbidden(_l("Only the province's administrators change the branch tree."))


def ensure_root(ctx: Ctx) -> Branch:
    """The province, created when the tree is empty (a fresh database)."""
    branch = root()
    if branch is None:
        branch = Branch(code=ROOT_CODE, name=ROOT_NAME, level=0, path="/")
        db.session.add(branch)
        db.session.flush()
        branch.path = f"/{branch.id}/"
        audit.record(ctx, "branch.create", branch, code=branch.code, parent=None)
    return branch


def _model(value: str | None, errors: dict) -> str | None:
    value = (value or "").strip() or None
    if value is not None and value not in MODELS:
        errors["model"] = _l("Choose one of the distribution models.")
    return value


def _name(value: str | None, errors: dict) -> str:
    name = (value or "").strip()
    if not name:
        errors["name"] = _l("A name is required.")
    elif len(name) > 200:
        errors["name"] = _l("At most %(n)d characters.", n=200)
    return name


def _depth_below(branch: Branch) -> int:
    """How many levels the subtree reaches below `branch` (0 for a leaf)."""
    deepest = db.session.scalar(select(func.max(Branch.level))
                                .where(Branch.path.startswith(branch.path)))
    return (deepest or branch.level) - branch.level


def create(ctx: Ctx, *, code: str, name: str, parent: Branch | str | None = None,
           model: str | None = None) -> Branch:
    """A new branch. Without a parent it goes directly under the root, or becomes the root when
    the tree is empty."""
    _require_provincial_admin(ctx)
    errors: dict = {}
    code = (code or "").strip().upper()
    if not CODE.match(code):
        errors["code"] = _l("Use 2-32 capital letters, digits or underscores.")
    elif by_code(code) is not None:
        errors["code"] = _l("A branch with code %(code)s already exists.", code=code)
    name = _name(name, errors)
    model = _model(model, errors)
    if isinstance(parent, str):
        found = by_code(parent)
        if found is None and parent.strip():
            errors["parent"] = _l("No branch with code %(code)s.", code=parent.strip().upper())
        parent = found
    if parent is None and "parent" not in errors:
        parent = root()
    if parent is not None and parent.level >= MAX_LEVEL:
        errors["parent"] = _l("An operating branch has no branches under it.")
    if errors:
        raise ValidationFailed(errors)
    branch = Branch(code=code, name=name, model=model, parent_id=parent.id if parent else None,
                    level=parent.level + 1 if parent else 0, path="/")
    db.session.add(branch)
    db.session.flush()
    branch.path = f"{parent.path if parent else '/'}{branch.id}/"
    db.session.flush()
    audit.record(ctx, "branch.create", branch, code=code, parent=parent.code if parent else None,
                 model=model)
    return branch


def update(ctx: Ctx, branch: Branch, *, name: str, parent: Branch | None = None,
           model: str | None = None) -> Branch:
    """Rename, change the model, or move a branch (with its subtree) under another parent."""
    _require_provincial_admin(ctx)
    errors: dict = {}
    name = _name(name, errors)
    model = _model(model, errors)
    if branch.parent_id is None:
        if parent is not None:
            errors["parent"] = _l("The province is the root of the tree: it has no parent.")
    elif parent is None:
        errors["parent"] = _l("Choose the branch this one belongs to.")
    elif branch.contains(parent):
        errors["parent"] = _l("A branch cannot move under itself or one of its own branches.")
    elif parent.level + 1 + _depth_below(branch) > MAX_LEVEL:
        errors["parent"] = _l("The tree has three levels: province, second-level branch, "
                              "operating branch.")
    if errors:
        raise ValidationFailed(errors)
    diff = {}
    if branch.name != name:
        diff["name"] = [branch.name, name]
    if branch.model != model:
        diff["model"] = [branch.model, model]
    if parent is not None and parent.id != branch.parent_id:
        diff["parent"] = [branch.parent.code if branch.parent else None, parent.code]
        old_path, new_path = branch.path, f"{parent.path}{branch.id}/"
        shift = parent.level + 1 - branch.level
        # The whole subtree moves with it: one UPDATE rewrites each path's prefix and level.
        db.session.execute(
            sql_update(Branch).where(Branch.path.startswith(old_path))
            .values(path=literal(new_path, String()).concat(
                func.substr(Branch.path, len(old_path) + 1)),
                    level=Branch.level + shift)
            .execution_options(synchronize_session=False))
        db.session.expire_all()
        branch.parent_id = parent.id
    branch.name, branch.model = name, model
    db.session.flush()
    if diff:
        audit.record(ctx, "branch.update", branch, code=branch.code, changes=diff)
    return branch


def covers(manager: User | None, branch: Branch | None) -> bool:
    """Whether a channel manager works in a branch that holds `branch` (the root holds all)."""
    if manager is None:
        return True
    limit = scope_branch(manager)
    return limit is None or limit.contains(branch)


def place_user(ctx: Ctx, user: User, branch: Branch | None) -> User:
    """Put a bank user in a branch (None: the province)."""
    if not user.is_bank:
        raise ValidationFailed({"branch": _l("Only the bank's staff belong to a branch.")})
    if ctx.user is not None and not covers(ctx.user, branch):
        raise Forbidden(_l("You may only place staff in your own branch's subtree."))
    before = user.branch.code if user.branch else None
    after = branch.code if branch else None
    if before != after:
        user.branch_id = branch.id if branch else None
        user.branch = branch
        db.session.flush()
        audit.record(ctx, "user.branch", user, changes={"branch": [before, after]})
    return user


def reassign_org(ctx: Ctx, org: Organization, branch: Branch | None,
                 manager: User | None) -> Organization:
    """Move a partner to a branch and give it a channel manager of that branch; audited."""
    errors: dict = {}
    if org.is_bank:
        raise Forbidden(_l("The bank's own organisation is not edited here."))
    if manager is not None and (manager.role != "channel_manager" or not manager.active):
        errors["channel_manager_id"] = _l("Choose an active channel manager.")
    elif manager is not None and not covers(manager, branch):
        errors["channel_manager_id"] = _l("%(name)s works in another branch: choose a channel "
                                          "manager of this partner's branch.", name=manager.name)
    if ctx.user is not None and ctx.user.is_bank and not covers(ctx.user, branch):
        errors["branch"] = _l("Choose a branch in your own branch's subtree.")
    if errors:
        raise ValidationFailed(errors)
    diff = {}
    if org.branch_id != (branch.id if branch else None):
        diff["branch"] = [org.branch.code if org.branch else None,
                          branch.code if branch else None]
        org.branch_id = branch.id if branch else None
        org.branch = branch
    if org.channel_manager_id != (manager.id if manager else None):
        diff["channel_manager"] = [org.channel_manager.email if org.channel_manager else None,
                                   manager.email if manager else None]
        org.channel_manager_id = manager.id if manager else None
        org.channel_manager = manager
    if diff:
        db.session.flush()
        audit.record(ctx, "org.reassign", org, code=org.code, changes=diff)
    return org
