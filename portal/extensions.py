"""Extension objects, created unbound; create_app binds them."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
talisman = Talisman()  # security headers: portal/headers.py


def _csrf_fields_without_id() -> None:
    """A page draws many forms, each with its hidden CSRF token; as `id="csrf_token"` they
    made one id appear up to 24 times on a page (invalid HTML, confusing to assistive tools).
    The token needs no id: every form's token field renders without one."""
    from flask_wtf import FlaskForm
    from flask_wtf.csrf import _FlaskFormCSRF
    from wtforms.csrf.core import CSRFTokenField

    class TokenFieldWithoutId(CSRFTokenField):
        def __call__(self, **kwargs):
            kwargs.setdefault("id", False)
            return super().__call__(**kwargs)

    class PortalFormCSRF(_FlaskFormCSRF):
        field_class = TokenFieldWithoutId

    FlaskForm.Meta.csrf_class = PortalFormCSRF


_csrf_fields_without_id()


def _form_messages_kept() -> None:
    """Every form's WTForms messages from the catalogue kept per language (i18n.form_messages)
    rather than read from disk per request; WTF_I18N_ENABLED still turns them off."""
    from flask import current_app
    from flask_wtf import FlaskForm

    from .i18n import form_messages

    untranslated = FlaskForm.Meta.get_translations

    def get_translations(self, form):
        if not current_app.config.get("WTF_I18N_ENABLED", True):
            return untranslated(self, form)
        return form_messages()

    FlaskForm.Meta.get_translations = get_translations


_form_messages_kept()
