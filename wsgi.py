from portal import create_app
from portal.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # A missing or unsafe setting is the operator's to fix: one line saying which, no traceback.
    raise SystemExit(f"portal: {error}") from None
