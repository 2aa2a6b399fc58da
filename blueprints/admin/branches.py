"""The bank's branch tree (admins): the tree with its partners and staff, a new branch, a
branch's name, place and distribution model, and a bank user's branch. A partner's branch and
channel manager are set on the organisation's own page."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to, shown_again
from portal.security import ctx
from portal.services import admin_views, branches

from .forms import BranchEditForm, BranchForm, UserBranchForm
from .routes import admin_required, bp


def _render_tree(form, errors=None, status=200):
    return render_template("admin/branches.html", tree=branches.tree(current_user),
                           counts=branches.counts(), form=form, errors=errors or {},
                           provincial=branches.scope_branch(current_user) is None), status


@bp.route("/branches", methods=["GET", "POST"], endpoint="branches")
@admin_required
def branches_page():
    form = BranchForm()
    form.parent.choices = branches.choices(current_user, blank=_("The province (top)"))
    if request.method == "GET":
        return _render_tree(form)
    if not form.validate_on_submit():
        return _render_tree(form, status=422)
    with shown_again() as refusal:
        branch = branches.create(ctx(), code=form.code.data, name=form.name.data,
                                 parent=form.parent.data or None, model=form.model.data or None)
        flash(_("Branch %(code)s created.", code=branch.code), "success")
        return redirect(url_for("admin.branches"))
    return _render_tree(form, errors=refusal.error.fields, status=422)


@bp.route("/branches/<int:branch_id>", methods=["GET", "POST"])
@admin_required
def edit_branch(branch_id: int):
    branch = branches.get(branch_id)
    limit = branches.scope_branch(current_user)
    if branch is None or (limit is not None and not limit.contains(branch)):
        abort(404)
    form = BranchEditForm(obj=branch)
    form.parent.choices = [(c, label) for c, label in branches.choices(current_user)
                           if c != branch.code]
    if request.method == "GET":
        form.parent.data = branch.parent.code if branch.parent else ""
        form.model.data = branch.model or ""
    errors, status = {}, 200
    if request.method == "POST":
        if form.validate_on_submit():
            parent = branches.by_code(form.parent.data) if form.parent.data else None
            with shown_again() as refusal:
                branches.update(ctx(), branch, name=form.name.data, parent=parent,
                                model=form.model.data or None)
                flash(_("Branch %(code)s saved.", code=branch.code), "success")
                return redirect(url_for("admin.edit_branch", branch_id=branch.id))
            errors = refusal.error.fields
        status = 422
    return render_template("admin/branch_form.html", branch=branch, form=form,
                           errors=errors), status


@bp.route("/users/<int:user_id>/branch", methods=["GET", "POST"])
@admin_required
def user_branch(user_id: int):
    user = admin_views.visible_user(user_id, current_user)
    if user is None:
        abort(404)
    if not user.is_bank:
        flash(_("Only the bank's staff belong to a branch; a partner's users belong to their "
                "organisation."), "info")
        return redirect(url_for("admin.users"))
    form = UserBranchForm()
    form.branch.choices = branches.choices(current_user, blank=_("The province (whole bank)"))
    if request.method == "GET":
        form.branch.data = user.branch.code if user.branch else ""
    errors, status = {}, 200
    if request.method == "POST":
        if form.validate_on_submit():
            place = branches.by_code(form.branch.data) if form.branch.data else None
            if form.branch.data and place is None:
                errors = {"branch": _("Choose a branch from the list.")}
            else:
                with going_back_to("admin.users"):
                    branches.place_user(ctx(), user, place)
                flash(_("%(email)s now works in %(branch)s.", email=user.email,
                        branch=place.name if place else _("the province")), "success")
                return redirect(url_for("admin.users"))
        status = 422
    return render_template("admin/user_branch.html", user=user, form=form, errors=errors), status
