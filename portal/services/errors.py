from __future__ import annotations

from portal.i18n import lazy_gettext as _l


class DomainError(Exception):
    """A refusal. Raising it ends the unit of work: nothing the attempt flushed is kept.

    `back_to` is set by a page (never by a service) when the refusal should take the user back to
    a page with the message, rather than show an error page."""

    code = "error"
    status = 400
    back_to: str | None = None
    # False for a refusal no page can help with: `going_back_to` leaves it to the error page.
    goes_back: bool = True

    def __init__(self, message=None, fields: dict | None = None):
        self.message = message if message is not None else _l("The request could not be completed.")
        self.fields = fields or {}
        super().__init__(str(self.message))


class ValidationFailed(DomainError):
    code = "invalid"
    status = 422

    def __init__(self, fields: dict, message=None):
        if message is None:
            message = _l("Please correct the highlighted fields.")
        super().__init__(message, fields)


class NotFound(DomainError):
    code = "not_found"
    status = 404

    def __init__(self, message=None):
        super().__init__(message if message is not None else _l("Not found."))


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class NeverAllowed(Forbidden):
    """A move the caller's role may never make, in any state (a partner approving, a channel
    manager disbursing): 403, where a move the role may make but not from the referral's state
    now is a StateConflict (409). On a page it is the 403 page: nothing there can be corrected."""

    goes_back = False


class StateConflict(DomainError):
    code = "state_conflict"
    status = 409


class AlreadyRegistered(DomainError):
    code = "already_registered"
    status = 409

    def __init__(self):
        super().__init__(
            _l("This buyer is already registered for this product by your organisation."))
