"""The Idempotency-Key header on API POSTs, as a view decorator over services/idempotency.py.

The service keeps the claim and the stored response; this module reads the header and the body
off the request, decides when to claim, and answers a replay.
"""

from __future__ import annotations

import hashlib
from functools import wraps

from flask import Response, g, make_response, request

from portal import json_limits
from portal.services import idempotency

REPLAY_HEADER = "Idempotent-Replayed"


def _fingerprint_body():
    if request.mimetype == "multipart/form-data":
        digest = hashlib.sha256()
        # Field names may be anything a client sends (even empty): order them as text.
        for name, values in sorted(request.form.lists(), key=lambda item: str(item[0])):
            digest.update(f"{name!s}={values}\n".encode("utf-8", "replace"))
        for name, files in sorted(request.files.lists(), key=lambda item: str(item[0])):
            for storage in files:
                digest.update(f"{name!s}:{storage.filename}:".encode("utf-8", "replace"))
                digest.update(hashlib.sha256(storage.stream.read()).digest())
                storage.stream.seek(0)
        return digest.digest()
    raw = request.get_data(cache=True)
    try:
        # Over a limit (JSONRefused is a ValueError): the raw bytes; the body parser refuses it.
        return json_limits.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw


class _PendingKey:
    """The Idempotency-Key of the request being served, claimed once before its first write."""

    def __init__(self, key: str, print_: str):
        self.key, self.print_ = key, print_
        self.claim: idempotency.Claim | None = None

    def take(self) -> Response | None:
        """Claim the key; the stored response when an earlier request with it has finished."""
        self.claim = idempotency.claim(g.api_key.id, self.key, self.print_)
        return _replay(self.claim.replay) if self.claim.replay is not None else None


def _replay(record) -> Response:
    response = Response(record.response_body, status=record.status_code,
                        mimetype="application/json")
    response.headers[REPLAY_HEADER] = "true"
    return response


def claim_key() -> Response | None:
    """For a view marked `idempotent(claim_late=True)`: claim the request's key right before
    its first write; a response to return instead when the request is a replay."""
    pending = g.get("idempotency_key")
    return pending.take() if pending is not None and pending.claim is None else None


def idempotent(view=None, *, claim_late: bool = False):
    """Idempotency-Key on a POST: replay the stored response of a finished request with the
    same key and body; 422 for the same key with another body. The claim and the stored
    response are written in the request's own transaction (see services/idempotency.py).

    The claim is the request's first write. A view that reads and checks a lot before writing
    says `claim_late=True` and calls `claim_key()` when it is about to write, so that on SQLite
    (one writer at a time) the write lock is not held while it checks; a finished retry is
    still replayed before any checking, by a read.
    """
    if view is None:
        return lambda v: idempotent(v, claim_late=claim_late)

    @wraps(view)
    def wrapped(*args, **kwargs):
        header = request.headers.get("Idempotency-Key")
        if header is None:
            return view(*args, **kwargs)
        pending = _PendingKey(idempotency.check_key(header),
                              idempotency.fingerprint(request.method, request.path,
                                                      _fingerprint_body()))
        if claim_late:
            record = idempotency.finished(g.api_key.id, pending.key, pending.print_)
            if record is not None:
                return _replay(record)
            g.idempotency_key = pending
        else:
            replay = pending.take()
            if replay is not None:
                return replay
        response = make_response(view(*args, **kwargs))
        if pending.claim is not None and pending.claim.replay is None \
                and response.status_code < 400:
            idempotency.complete(pending.claim, response.status_code,
                                 response.get_data(as_text=True))
        return response

    # The OpenAPI document reads this to add the header and the replay marker.
    wrapped.idempotent = True
    return wrapped
