"""Forms of the partner pages. The intake rules live in the referral service, in one place; the
form only carries what the user typed (so nothing is lost when the service refuses it)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, EmailField, SelectField, StringField, SubmitField
from wtforms.validators import Length


class Mandatory:
    """Marks a field as required (the asterisk) and leaves the check to the service."""

    field_flags = {"required": True}

    def __call__(self, form, field):
        return None


NUMBER = {"inputmode": "decimal", "autocomplete": "off"}
ACCEPT = ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"


class ReferralForm(FlaskForm):
    product = SelectField(_l("Loan product"), validators=[Mandatory()], validate_choice=False)
    buyer_name = StringField(_l("Buyer's full name"), validators=[Mandatory()],
                             render_kw={"maxlength": 100})
    national_id = StringField(_l("Buyer's national ID number"), validators=[Mandatory()],
                              render_kw={"autocomplete": "off", "maxlength": 18,
                                         "spellcheck": "false"})
    mobile = StringField(_l("Buyer's mobile number"), validators=[Mandatory()],
                         render_kw={"autocomplete": "off", "inputmode": "tel", "maxlength": 20})
    employer = StringField(_l("Employer"), validators=[Mandatory()],
                           render_kw={"maxlength": 200})
    industry = SelectField(_l("Employer's industry"), validators=[Mandatory()],
                           validate_choice=False)
    monthly_income = StringField(_l("Monthly income (CNY)"), validators=[Mandatory()],
                                 render_kw=NUMBER)
    amount = StringField(_l("Loan amount (CNY)"), validators=[Mandatory()], render_kw=NUMBER)
    term_months = StringField(_l("Term (months)"), validators=[Mandatory()],
                              render_kw={"inputmode": "numeric", "autocomplete": "off"})
    asset_description = StringField(_l("Asset description (property or vehicle products)"),
                                    render_kw={"maxlength": 300})
    asset_price = StringField(_l("Asset price, CNY (property or vehicle products)"),
                              render_kw=NUMBER)
    down_payment = StringField(_l("Down payment, CNY (property or vehicle products)"),
                               render_kw=NUMBER)
    consent = BooleanField(_l("The buyer has read the consent notice and agrees"))
    external_ref = StringField(_l("Your own reference (optional)"), render_kw={"maxlength": 64})
    submit = SubmitField(_l("Submit referral"))

    # The keys of referrals.validate_intake, which are also the names of the fields above.
    INTAKE_FIELDS = ("product", "buyer_name", "national_id", "mobile", "employer", "industry",
                     "monthly_income", "amount", "term_months", "asset_description",
                     "asset_price", "down_payment", "external_ref")

    def intake_data(self, notice_version: str) -> dict:
        data = {name: (self[name].data or "").strip() for name in self.INTAKE_FIELDS}
        data["consent"] = bool(self.consent.data)
        data["consent_notice_version"] = notice_version
        return data


class FilterForm(FlaskForm):
    """The list's search and filters: a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), render_kw={"placeholder": _l("Buyer name, your reference or ID"),
                                             "maxlength": 100})
    status = SelectField(_l("Status"), validate_choice=False)
    product = SelectField(_l("Product"), validate_choice=False)


class UploadForm(FlaskForm):
    kind = SelectField(_l("Document type"), validators=[Mandatory()], validate_choice=False)
    file = FileField(_l("File (PDF, JPEG or PNG)"), validators=[Mandatory()],
                     render_kw={"accept": ACCEPT})
    submit = SubmitField(_l("Upload"))


class UserForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[Mandatory(), Length(max=200)])
    name = StringField(_l("Name"), validators=[Length(max=100)])
    role = SelectField(_l("Role"), validate_choice=False)
    submit = SubmitField(_l("Create user"))
