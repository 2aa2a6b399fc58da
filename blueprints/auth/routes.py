"""Logging in (password, then the second factor when enrolled), re-authentication before
sensitive actions, logging out, and the language switch."""

import time

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from models import User
from portal.extensions import db
from portal.security import ctx, home_for, safe_next
from portal.services import accounts, mfa

from .forms import ActionForm, CodeForm, LoginForm, ReauthForm

bp = Blueprint("auth", __name__)

# The password was right; the code must follow within this many seconds.
SECOND_STEP_SECONDS = 300


def lock_policy() -> dict:
    cfg = current_app.config
    return {"max_failures": cfg["LOGIN_MAX_FAILURES"], "lock_minutes": cfg["LOGIN_LOCK_MINUTES"]}


def _check_address() -> None:
    accounts.check_address(ctx(), current_app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"])


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            _check_address()
            user = accounts.authenticate(ctx(), form.email.data, form.password.data,
                                         **lock_policy())
        except accounts.LoginRefused as refused:
            # Shown on a 200 (a 429 past the address budget): the refused attempt's count is
            # committed with the request, so the lock holds.
            flash(str(refused.message), "danger")
            status = refused.status
        else:
            target = safe_next(request.args.get("next"))
            if user.has_totp:
                # Not logged in yet: the session only remembers whose code to ask for.
                session["second_step"] = {"user": user.id, "at": time.time(), "next": target}
                return redirect(url_for("auth.login_code"))
            return _logged_in(user, target)
    # Sent here because the session had ended (portal/__init__.py: unauthorized): say so.
    expired = request.args.get("reason") == "expired"
    return render_template("auth/login.html", form=form, expired=expired,
                           idle_minutes=int(current_app.config["IDLE_TIMEOUT"].total_seconds()
                                            // 60)), status


def _logged_in(user: User, target: str | None):
    lang = session.get("lang")
    session.clear()  # no session fixation: a fresh session for the logged-in user
    if lang:
        session["lang"] = lang
    accounts.start_session(ctx(), user, request.user_agent.string)
    login_user(user, remember=False)
    if user.password_must_change:
        return redirect(url_for("auth.choose_password"))
    if mfa.must_enrol(user, current_app.config["MFA_REQUIRED_ROLES"]):
        return redirect(url_for("auth.two_factor"))
    return redirect(target or home_for(user))


def _second_step_user() -> User | None:
    pending = session.get("second_step")
    if not pending or time.time() - pending.get("at", 0) > SECOND_STEP_SECONDS:
        return None
    return db.session.get(User, pending.get("user"))


@bp.route("/login/code", methods=["GET", "POST"])
def login_code():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    user = _second_step_user()
    if user is None:
        session.pop("second_step", None)
        flash(_("Please log in again."), "warning")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            _check_address()
            accounts.check_second_factor(ctx(), user, form.code.data, **lock_policy())
        except accounts.LoginRefused as refused:
            flash(str(refused.message), "danger")  # on a 200: the wrong code's count is kept
            status = refused.status
            if user.locked_until is not None:
                session.pop("second_step", None)
                return redirect(url_for("auth.login"))
        else:
            return _logged_in(user, session.get("second_step", {}).get("next"))
    return render_template("auth/login_code.html", form=form), status


@bp.route("/reauthenticate", methods=["GET", "POST"])
@login_required
def reauthenticate():
    form = ReauthForm()
    target = safe_next(request.args.get("next")) or home_for(current_user)
    status = 200
    if form.validate_on_submit():
        try:
            _check_address()
            accounts.check_identity(ctx(), current_user, form.password.data, form.code.data,
                                    **lock_policy())
        except accounts.LoginRefused as refused:
            flash(str(refused.message), "danger")  # on a 200: the failure's count is kept
            status = refused.status
        else:
            accounts.reauthenticated(ctx(), current_user)
            flash(_("Thank you. You can continue."), "success")
            return redirect(target)
    return render_template("auth/reauthenticate.html", form=form, target=target), status


@bp.route("/logout", methods=["POST"])
def logout():
    form = ActionForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        accounts.end_session(ctx(), current_user.session_token)
        lang = session.get("lang")
        logout_user()
        session.clear()
        if lang:  # the language chosen is the person's, not the session's: it outlives logout
            session["lang"] = lang
        if request.args.get("reason") != "expired":  # the idle warning ran out: login says so
            flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/session/keep-alive", methods=["POST"])
@login_required
def keep_alive():
    """The idle-timeout warning's "Stay signed in" (static/portal.js): loading the user for this
    request touched the session (accounts.load_session), so its idle time starts again."""
    return {"idle_minutes": int(current_app.config["IDLE_TIMEOUT"].total_seconds() // 60)}


@bp.route("/language/<lang>", methods=["POST"])
def language(lang):
    form = ActionForm()
    if form.validate_on_submit() and lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
    return redirect(safe_next(request.form.get("next")) or url_for("auth.index"))
