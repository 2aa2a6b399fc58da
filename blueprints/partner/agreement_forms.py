"""Form of the partner's agreement pages."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SubmitField

from portal.i18n import lazy_gettext as _l


class AcceptForm(FlaskForm):
    # The SHA-256 of the PDF the user was shown: if the agreement changed meanwhile, the
    # service refuses instead of recording acceptance of a document nobody read.
    pdf_sha256 = HiddenField()
    confirm = BooleanField(_l("I have read this agreement and accept it on behalf of my "
                              "organisation."))
    submit = SubmitField(_l("Accept the agreement"))
