"""The soak's partners, officers and API keys, made with the portal's own commands
(`flask --app wsgi orgs create`, `users create`, `api-key create`), invoked in one process so that
the interpreter and the app start once instead of forty times. Each partner also gets an agreement
in force covering housing mortgages; there is no command for that (agreements are drafted,
issued and accepted on the pages), so it is inserted directly, as the test factories and the
API benchmark do.

Usage: python scripts/soak/accounts.py PARTNERS OFFICERS PASSWORD — prints {"partners": {code:
key}, "officers": [key, ...]} as JSON.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

from sqlalchemy import select

from models import Agreement, Organization, utcnow
from portal import create_app
from portal.extensions import db
from portal.services import agreements
from portal.unit_of_work import unit_of_work

app = create_app()
runner = app.test_cli_runner()


def flask(*args: str) -> str:
    """`flask --app wsgi ARGS`: its standard output, or the command's error, raised."""
    result = runner.invoke(args=list(args))
    if result.exit_code:
        raise SystemExit(f"flask {' '.join(args)} failed: {result.output}")
    return result.stdout


def main(partners: int, officers: int, password: str) -> dict:
    made = {"partners": {}, "officers": []}
    for i in range(1, partners + 1):
        code, email = f"SOAK{i:02d}", f"api@soak{i:02d}.example"
        flask("orgs", "create", "--code", code, "--name", f"Soak Partner {i:02d}", "--type",
              "real_estate_developer")
        flask("users", "create", "--email", email, "--role", "partner_admin", "--org", code,
              "--password", password)
        made["partners"][code] = flask("api-key", "create", "--user", email).split()[-1]
    for i in range(1, officers + 1):
        email = f"officer{i}@soak-bank.example"
        flask("users", "create", "--email", email, "--role", "credit_officer", "--password",
              password)
        made["officers"].append(flask("api-key", "create", "--user", email).split()[-1])
    with app.app_context(), unit_of_work():
        agreements.ensure_default_templates()
        today = agreements.local_today()
        for code in made["partners"]:
            org = db.session.scalar(select(Organization).where(Organization.code == code))
            template = agreements.default_template_for(org)
            db.session.add(Agreement(
                org=org, number=agreements.next_number(org, today.year), version=1,
                template=template, template_version=template.version,
                products=["housing_mortgage"], projects=[], brands=[],
                effective_from=today - timedelta(days=1), expires_on=today + timedelta(days=300),
                status="active", activated_at=utcnow()))
            db.session.flush()
    return made


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])))
