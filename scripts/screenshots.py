"""Take the README's screenshots from a demo database in Debian's Chromium.

    PORTAL_ENV=development .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.services import demo  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SHOTS = [
    # (file, login, path, locale)
    ("queue.png", "officer@bank.example", "/bank/queue", "en-US"),
    ("partner-dashboard.png", "sales@sunrise-homes.example", "/partner/", "zh-CN"),
    ("conflicts.png", "manager@bank.example", "/bank/conflicts", "en-US"),
]


def main() -> None:
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"PORTAL_ENV": "development", "SECRET_KEY": "s" * 40,
                          "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/demo.db",
                          "UPLOAD_DIR": f"{tmp}/uploads", "PDF_CACHE_DIR": f"{tmp}/pdf"})
        with app.app_context():
            upgrade()
            demo.seed()
            db.session.commit()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name, email, path, locale in SHOTS:
                context = browser.new_context(base_url=base, locale=locale,
                                              viewport={"width": 1280, "height": 760})
                page = context.new_page()
                page.goto("/login")
                page.fill("input[name=email]", email)
                page.fill("input[name=password]", demo.PASSWORD)
                page.click("input[type=submit]")
                page.wait_for_load_state()
                page.goto(path)
                page.screenshot(path=str(out / name))
                context.close()
                print(f"wrote docs/screenshots/{name}")
            browser.close()
        server.shutdown()


if __name__ == "__main__":
    main()
