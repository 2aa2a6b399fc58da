"""Guards against programming errors that hold under `python -O` too (bandit B101: an assert
would be stripped there, and a misspelt event would be written and sent)."""

import pytest

from portal.services import notifications, webhooks


def test_an_unknown_notification_kind_is_refused(world):
    with pytest.raises(ValueError, match="unknown notification kind"):
        notifications.notify_org(world.org_a.id, "referral_statuss", {})


def test_an_unknown_webhook_event_is_refused(world):
    with pytest.raises(ValueError, match="unknown webhook event type"):
        webhooks.emit(world.org_a.id, "referral.status_chnaged", {})
