from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from portal.i18n import lazy_gettext as _l


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=200)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Log in"))


class ActionForm(FlaskForm):
    """An empty form: CSRF protection for POST-only buttons."""


class CodeForm(FlaskForm):
    code = StringField(_l("Code from the authenticator app, or a recovery code"),
                       validators=[DataRequired(), Length(max=40)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric",
                                  "autofocus": True, "spellcheck": "false"})
    submit = SubmitField(_l("Continue"))


class ReauthForm(FlaskForm):
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "current-password", "autofocus": True})
    code = StringField(_l("Code from the authenticator app, or a recovery code"),
                       validators=[Optional(), Length(max=40)],
                       render_kw={"autocomplete": "one-time-code", "spellcheck": "false"})
    submit = SubmitField(_l("Confirm"))


class NewPasswordForm(FlaskForm):
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)],
                                 render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("New password again"), validators=[DataRequired(), Length(max=200)],
                            render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("Save the new password"))


class ChangePasswordForm(NewPasswordForm):
    current_password = PasswordField(_l("Current password"),
                                     validators=[DataRequired(), Length(max=200)],
                                     render_kw={"autocomplete": "current-password"})


class EnrolForm(FlaskForm):
    code = StringField(_l("The 6-digit code the app shows now"),
                       validators=[DataRequired(), Length(max=10)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric",
                                  "spellcheck": "false"})
    submit = SubmitField(_l("Turn on two-step login"))
