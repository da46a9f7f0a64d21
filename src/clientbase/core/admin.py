from django.contrib import admin

from clientbase.core.admin_base import ReadOnlyAdmin
from clientbase.core.models import AuditEntry, CronRun, Event, IdempotencyKey, NumberSeries


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """The newsfeed, as stored."""

    list_display = ["occurred_at", "category", "type", "client", "actor", "reference"]
    list_filter = ["category"]
    search_fields = ["reference", "type"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit log, as stored."""

    list_display = ["at", "actor", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]


@admin.register(NumberSeries)
class NumberSeriesAdmin(ReadOnlyAdmin):
    """Document number series and their next values."""

    list_display = ["key", "prefix", "padding", "next_value"]


@admin.register(CronRun)
class CronRunAdmin(ReadOnlyAdmin):
    """Runs of the daily automation."""

    list_display = ["job", "run_date", "started_at", "status"]
    list_filter = ["status", "job"]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    """API idempotency keys of the last day."""

    list_display = ["created_at", "method", "path", "state", "response_status"]
