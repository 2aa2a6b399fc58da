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
from flask_login import current_user, login_user, logout_user

from portal.extensions import limiter
from portal.security import ctx, home_for, safe_next
from portal.services import accounts

from .forms import ActionForm, LoginForm

bp = Blueprint("auth", __name__)


def _login_limit():
    return current_app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"]


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(
                ctx(), form.email.data, form.password.data,
                max_failures=current_app.config["LOGIN_MAX_FAILURES"],
                lock_minutes=current_app.config["LOGIN_LOCK_MINUTES"],
            )
        except accounts.LoginRefused as refused:
            flash(str(refused.message), "danger")
        else:
            lang = session.get("lang")
            session.clear()  # no session fixation: a fresh session for the logged-in user
            if lang:
                session["lang"] = lang
            accounts.start_session(ctx(), user, request.user_agent.string)
            login_user(user, remember=False)
            return redirect(safe_next(request.args.get("next")) or home_for(user))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    form = ActionForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        accounts.end_session(ctx(), current_user.session_token)
        logout_user()
        session.clear()
        flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/language/<lang>", methods=["POST"])
def language(lang):
    form = ActionForm()
    if form.validate_on_submit() and lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
    return redirect(safe_next(request.form.get("next")) or url_for("auth.index"))
