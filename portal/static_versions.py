"""Static file URLs carry a version taken from the file's content: `/static/portal.css?v=3f9a…`.

nginx serves `/static/` itself and lets browsers keep a versioned file for a year
(deploy/nginx/portal.conf); a release that changes a file changes its URL, so nobody keeps an
old stylesheet or script. Flask ignores the query string when it serves the file itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Flask


def register(app: Flask) -> None:
    root = Path(app.static_folder).resolve()
    # (filename) -> (mtime_ns, size, version): hashed again only when the file changes.
    seen: dict[str, tuple[int, int, str]] = {}
    # A release restarts the workers, so a served process looks at each file once: resolving
    # and stating six files was a tenth of what the smallest page costs (issue 15). The
    # development server (debug) looks again on every page, as files are edited under it.

    @app.url_defaults
    def _static_version(endpoint: str, values: dict) -> None:
        if endpoint != "static" or "v" in values or "filename" not in values:
            return
        name = values["filename"]
        known = seen.get(name)
        if known is not None and not app.debug:
            values["v"] = known[2]
            return
        path = (root / name).resolve()
        if not path.is_relative_to(root):
            return
        try:
            stat = path.stat()
        except OSError:
            return
        if known is None or known[:2] != (stat.st_mtime_ns, stat.st_size):
            known = (stat.st_mtime_ns, stat.st_size,
                     hashlib.sha256(path.read_bytes()).hexdigest()[:12])
            seen[name] = known
        values["v"] = known[2]
