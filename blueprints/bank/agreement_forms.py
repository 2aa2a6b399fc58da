"""Forms of the bank's agreement pages. The rules live in portal/services/agreements.py; the
forms carry what the user typed, so nothing is lost when the service refuses it."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import Length
from wtforms.widgets import CheckboxInput, ListWidget

from portal.i18n import lazy_gettext as _l

NUMBER = {"inputmode": "numeric", "autocomplete": "off"}


class Mandatory:
    """Marks a field as required (the asterisk) and leaves the check to the service."""

    field_flags = {"required": True}

    def __call__(self, form, field):
        return None


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ChooseOrgForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form: it only chooses what the next page shows

    org_id = SelectField(_l("Partner organisation"), validators=[Mandatory()],
                         validate_choice=False)


class AgreementForm(FlaskForm):
    template_id = SelectField(_l("Agreement template"), validators=[Mandatory()],
                              validate_choice=False)
    products = CheckboxList(_l("Products covered"), validators=[Mandatory()],
                            validate_choice=False)
    projects = TextAreaField(_l("Building projects covered (one per line)"),
                             render_kw={"rows": 3})
    stage_guarantee = TextAreaField(_l("Stage guarantee"), render_kw={"rows": 2})
    brands = TextAreaField(_l("Brands covered (one per line)"), render_kw={"rows": 3})
    onsite_staff = TextAreaField(_l("On-site bank staff arrangements"), render_kw={"rows": 2})
    bank_sla_hours = StringField(_l("Bank turnaround target (hours)"), validators=[Mandatory()],
                                 render_kw=NUMBER)
    partner_doc_days = StringField(_l("Partner's document obligation (working days)"),
                                   validators=[Mandatory()], render_kw=NUMBER)
    effective_from = StringField(_l("Effective from"), validators=[Mandatory()],
                                 render_kw={"type": "date"})
    expires_on = StringField(_l("Expires on"), validators=[Mandatory()],
                             render_kw={"type": "date"})
    submit = SubmitField(_l("Save draft"))

    def data_for_service(self) -> dict:
        return {name: getattr(self, name).data for name in (
            "template_id", "products", "projects", "stage_guarantee", "brands", "onsite_staff",
            "bank_sla_hours", "partner_doc_days", "effective_from", "expires_on")}


class TerminateForm(FlaskForm):
    reason = TextAreaField(_l("Reason for the termination"), validators=[Mandatory(),
                                                                        Length(max=2000)],
                           render_kw={"rows": 2},
                           description=_l("Kept inside the bank; the partner never sees it."))
    notice = TextAreaField(_l("Message to the partner (optional)"),
                           validators=[Length(max=2000)], render_kw={"rows": 2},
                           description=_l("The partner reads this on the agreement page."))
    confirm = BooleanField(_l("I confirm: terminate this agreement now"))
    submit = SubmitField(_l("Terminate"))


class TemplateForm(FlaskForm):
    key = StringField(_l("Key (lasting name)"), render_kw={"maxlength": 60})
    family = SelectField(_l("Partner family"), validate_choice=False)
    product_code = SelectField(_l("Product (leave empty for all)"), validate_choice=False)
    title = StringField(_l("Title (Chinese)"), validators=[Mandatory(), Length(max=200)])
    body = TextAreaField(_l("Template body (Jinja)"), validators=[Mandatory()],
                         render_kw={"rows": 24, "spellcheck": "false",
                                    "class": "font-monospace"})
    note = StringField(_l("What changed"), validators=[Length(max=300)])
    submit = SubmitField(_l("Save as a new version"))
