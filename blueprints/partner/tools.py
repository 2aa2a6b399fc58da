"""Partners' quoting tools: the product sheets and the payment calculator.

Both show only the products the organisation's agreements in force cover (there is no product
in the URL path to try another one: a product asked for in the query that the agreement does not
cover is simply not offered). The calculator is a GET form: a quote changes nothing, and works
without JavaScript.
"""

from __future__ import annotations

from flask import render_template, request
from flask_login import current_user

from portal.security import partner_required
from portal.services import product_tools
from portal.services.errors import ValidationFailed

from .routes import bp


@bp.route("/products")
@partner_required
def products():
    return render_template("partner/products.html",
                           products=product_tools.covered(current_user.org))


@bp.route("/calculator")
@partner_required
def calculator():
    offered = product_tools.covered(current_user.org)
    typed = {"product": request.args.get("product", ""),
             "amount": request.args.get("amount", ""),
             "months": request.args.get("months", ""),
             "method": request.args.get("method", product_tools.EQUAL_INSTALMENT)}
    chosen = product_tools.covered_product(current_user.org, typed["product"])
    plan, errors, status = None, {}, 200
    if request.args.get("amount") is not None or request.args.get("months") is not None:
        try:
            chosen, plan = product_tools.quote(current_user.org, typed["product"], typed)
        except ValidationFailed as refusal:
            errors, status = refusal.fields, 422
    head, last = plan.excerpt() if plan else ([], None)
    return render_template("partner/calculator.html", products=offered, typed=typed,
                           chosen=chosen, plan=plan, head=head, last=last, errors=errors,
                           methods=product_tools.METHODS), status
