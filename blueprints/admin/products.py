"""Admin: the loan products' rate tables (one annual rate per band of terms), which partners'
product sheets and payment calculator quote from. Every change is audited with the table before
and after."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from portal.security import ctx, roles_required
from portal.services import partner_views, product_tools
from portal.services.errors import ValidationFailed

from .routes import bp

SPARE_LINES = 2  # empty lines under the bands, to add one


@bp.route("/products")
@roles_required("admin")
def products():
    return render_template("admin/products.html", products=partner_views.products())


def _typed_rows() -> list[dict]:
    rows, i = [], 0
    while f"low_{i}" in request.form or f"rate_{i}" in request.form:
        rows.append({k: request.form.get(f"{k}_{i}", "").strip() for k in ("low", "high", "rate")})
        i += 1
    return rows


@bp.route("/products/<code>/rates", methods=["GET", "POST"])
@roles_required("admin")
def product_rates(code: str):
    product = product_tools.product(code)
    form = FlaskForm()  # CSRF only: the bands are read line by line
    errors: dict = {}
    status = 200
    rows = [{"low": b.min_term_months, "high": b.max_term_months, "rate": b.annual_rate}
            for b in product.rates]
    if request.method == "POST":
        rows = _typed_rows()
        if not form.validate_on_submit():
            errors, status = {"bands": _("The form has expired. Reload the page.")}, 400
        else:
            try:
                product_tools.save_rates(ctx(), product, rows)
            except ValidationFailed as refusal:
                errors, status = refusal.fields, 422
            else:
                flash(_("Rates for %(product)s saved. Partners see them at once.",
                        product=product.display_name(str(get_locale()))), "success")
                return redirect(url_for("admin.products"))
    rows = rows + [{"low": "", "high": "", "rate": ""}] * SPARE_LINES
    return render_template("admin/product_rates.html", product=product, rows=rows,
                           errors=errors, form=form), status
