"""Every user's own account: password, second factor, sessions; the forced steps after a
one-time password or for a role that must use a second factor; password links from e-mail.

Added to the auth blueprint (imported by register_blueprints).
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from blueprints import going_back_to, shown_again
from portal.links import password_link
from portal.security import ctx, fresh_login_required, home_for
from portal.services import accounts, mfa, passwords, sessions

from .forms import ActionForm, ChangePasswordForm, EnrolForm, NewPasswordForm
from .routes import bp, lock_policy

# What a user held at a forced step may still do.
ALWAYS_OPEN = {"auth.logout", "auth.language", "static", "health.healthz"}
ENROLMENT = {"auth.two_factor", "auth.two_factor_start", "auth.two_factor_confirm",
             "auth.reauthenticate"}


def _required_roles():
    return current_app.config["MFA_REQUIRED_ROLES"]


@bp.before_app_request
def hold_until_settled():
    """A session opened with a one-time password may only choose a new password; one of a role
    that must use a second factor, not yet enrolled, may only enrol. Nothing else is reachable."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in ALWAYS_OPEN or request.blueprint == "api":
        return None
    if not current_user.is_authenticated:
        return None
    if current_user.password_must_change:
        if endpoint != "auth.choose_password":
            return redirect(url_for("auth.choose_password"))
    elif mfa.must_enrol(current_user, _required_roles()) and endpoint not in ENROLMENT:
        return redirect(url_for("auth.two_factor"))
    return None


def send_password_link(user, *, invitation: bool = False) -> bool:
    """E-mail the user a single-use link to choose their password (an administrator's reset,
    or a new user's invitation). False for an invitation without mail (the CLI gives a one-time
    password instead); a reset without mail is refused with that advice."""
    if invitation and not passwords.mail_configured():
        return False
    token = passwords.start_reset(ctx(), user, invitation=invitation)
    passwords.send_reset_link(user, password_link(token), invitation=invitation)
    return True


def _token() -> str | None:
    return current_user.session_token


def _render_account(password_form=None, errors=None, status=200):
    return render_template(
        "auth/account.html", password_form=password_form or ChangePasswordForm(),
        errors=errors or {}, action_form=ActionForm(),
        sessions=sessions.for_user(current_user, _token(),
                                   current_app.config["SESSION_MAX_AGE"]),
        mfa_required=mfa.required_for(current_user, _required_roles()),
        codes_left=mfa.recovery_codes_left(current_user)), status


@bp.route("/account")
@login_required
def account():
    return _render_account()


@bp.route("/account/password", methods=["POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _render_account(form, status=422)
    try:
        with shown_again() as refusal:
            passwords.change_own(ctx(), current_user, current=form.current_password.data,
                                 new=form.new_password.data, confirm=form.confirm.data,
                                 keep_session=_token(), **lock_policy())
            flash(_("Your password is changed. Your other sessions have ended."), "success")
            return redirect(url_for("auth.account"))
    except accounts.LoginRefused as refused:
        # On a 200, so the wrong current password's count is kept (as at login).
        return _render_account(form, {"current_password": str(refused.message)})
    return _render_account(form, refusal.fields, status=422)


@bp.route("/account/new-password", methods=["GET", "POST"])
@login_required
def choose_password():
    if not current_user.password_must_change:
        return redirect(url_for("auth.account"))
    form = NewPasswordForm()
    errors, status = {}, 200
    if request.method == "POST":
        if form.validate_on_submit():
            with shown_again() as refusal:
                passwords.choose_after_one_time(ctx(), current_user, new=form.new_password.data,
                                                confirm=form.confirm.data, keep_session=_token())
                flash(_("Your password is set."), "success")
                return redirect(home_for(current_user))
            errors = refusal.fields
        status = 422
    return render_template("auth/choose_password.html", form=form, errors=errors,
                           reset_link=False), status


# --- second factor -----------------------------------------------------------------------------

@bp.route("/account/two-factor")
@login_required
def two_factor():
    return render_template("auth/two_factor.html", form=EnrolForm(), action_form=ActionForm(),
                           setup=mfa.provisioning(current_user),
                           required=mfa.required_for(current_user, _required_roles()),
                           codes_left=mfa.recovery_codes_left(current_user))


@bp.route("/account/two-factor/start", methods=["POST"])
@fresh_login_required
def two_factor_start():
    if not ActionForm().validate_on_submit():
        return redirect(url_for("auth.two_factor"))
    with going_back_to("auth.two_factor"):
        mfa.begin(ctx(), current_user)
    return redirect(url_for("auth.two_factor"))


@bp.route("/account/two-factor/confirm", methods=["POST"])
@login_required
def two_factor_confirm():
    form = EnrolForm()
    if form.validate_on_submit():
        with going_back_to("auth.two_factor"), shown_again() as refusal:
            codes = mfa.confirm(ctx(), current_user, form.code.data)
            # The recovery codes are on this response only: never stored readable, never sent
            # again.
            return render_template("auth/recovery_codes.html", codes=codes)
        errors = refusal.fields
    else:
        errors = {}
    return render_template("auth/two_factor.html", form=form, action_form=ActionForm(),
                           setup=mfa.provisioning(current_user), errors=errors,
                           required=mfa.required_for(current_user, _required_roles()),
                           codes_left=0), 422


@bp.route("/account/two-factor/recovery-codes", methods=["POST"])
@fresh_login_required
def recovery_codes():
    if not ActionForm().validate_on_submit():
        return redirect(url_for("auth.two_factor"))
    with going_back_to("auth.two_factor"):
        codes = mfa.regenerate_recovery_codes(ctx(), current_user)
    return render_template("auth/recovery_codes.html", codes=codes)


@bp.route("/account/two-factor/remove", methods=["POST"])
@fresh_login_required
def two_factor_remove():
    if not ActionForm().validate_on_submit():
        return redirect(url_for("auth.two_factor"))
    with going_back_to("auth.two_factor"):
        mfa.remove(ctx(), current_user, _required_roles())
    flash(_("Two-step login is off."), "success")
    return redirect(url_for("auth.account"))


# --- sessions ----------------------------------------------------------------------------------

@bp.route("/account/sessions/end-others", methods=["POST"])
@login_required
def end_other_sessions():
    if ActionForm().validate_on_submit():
        ended = sessions.end_others(ctx(), current_user, _token())
        flash(_("Other sessions ended: %(n)d.", n=ended), "success")
    return redirect(url_for("auth.account"))


@bp.route("/account/sessions/<session_id>/end", methods=["POST"])
@login_required
def end_session(session_id: str):
    if ActionForm().validate_on_submit():
        # Not one of the user's own sessions: 404, like any object that is not theirs.
        sessions.end_one(ctx(), current_user, session_id, _token())
        flash(_("The session has ended."), "success")
    return redirect(url_for("auth.account"))


# --- links sent by e-mail ----------------------------------------------------------------------

@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_with_link(token: str):
    user = passwords.user_for_token(token)
    if user is None:
        return render_template("auth/reset_link_expired.html"), 404
    form = NewPasswordForm()
    errors, status = {}, 200
    if request.method == "POST":
        if form.validate_on_submit():
            with shown_again() as refusal:
                passwords.reset_with_token(ctx(), token, new=form.new_password.data,
                                           confirm=form.confirm.data)
                if current_user.is_authenticated:
                    logout_user()
                flash(_("Your password is set. Log in with it."), "success")
                return redirect(url_for("auth.login"))
            errors = refusal.fields
        status = 422
    return render_template("auth/choose_password.html", form=form, errors=errors,
                           reset_link=True, link_user=user), status
