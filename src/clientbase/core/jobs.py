"""The platform's own daily jobs: clearing what has outlived its use."""

import datetime as dt

from django.contrib.sessions.models import Session
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from clientbase.core import clock
from clientbase.core.cron import register_job
from clientbase.core.models import CronRun, IdempotencyKey

IDEMPOTENCY_KEEP = dt.timedelta(hours=24)
CRON_LOG_KEEP = dt.timedelta(days=365)


@register_job("clear_sessions", _("Remove expired sign-in sessions"))
def clear_sessions(day: dt.date) -> str:
    """Delete sessions past their expiry."""
    removed, _kinds = Session.objects.filter(expire_date__lt=clock.now()).delete()
    return ngettext(
        "%(count)d expired session removed", "%(count)d expired sessions removed", removed
    ) % {"count": removed}


@register_job("prune_idempotency_keys", _("Forget API idempotency keys older than a day"))
def prune_idempotency_keys(day: dt.date) -> str:
    """Idempotency keys protect retries for 24 hours, then go."""
    removed, _kinds = IdempotencyKey.objects.filter(
        created_at__lt=clock.now() - IDEMPOTENCY_KEEP
    ).delete()
    return ngettext(
        "%(count)d idempotency key removed", "%(count)d idempotency keys removed", removed
    ) % {"count": removed}


@register_job("prune_automation_log", _("Keep a year of automation runs"))
def prune_automation_log(day: dt.date) -> str:
    """The automation log keeps one year."""
    removed, _kinds = CronRun.objects.filter(started_at__lt=clock.now() - CRON_LOG_KEEP).delete()
    return ngettext(
        "%(count)d old automation run removed", "%(count)d old automation runs removed", removed
    ) % {"count": removed}
