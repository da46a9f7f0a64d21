"""The audit log: which fields of which record changed, from what to what, and by whom."""

import hashlib
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models.fields.files import FieldFile

from clientbase.core.models import AuditAction, AuditEntry

MASK = "••••••"


def _audited_fields(obj: models.Model) -> list[models.Field]:
    return [f for f in obj._meta.concrete_fields if not f.primary_key]


def _plain(value: Any) -> Any:
    """A value as the JSON column will keep it, so before/after compare like for like."""
    if isinstance(value, FieldFile):
        return value.name or ""
    return value if _is_json_native(value) else DjangoJSONEncoder().default(value)


def _is_json_native(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


# A new record's empty values say nothing: its creation entry leaves them out (the log showed
# none of them anyway), which halves a client's entry and what a big import writes.
def is_empty(value: Any) -> bool:
    """Whether a value is one a creation entry leaves out: None, "", [] or {} (not False or 0)."""
    return value is None or (isinstance(value, str | list | dict) and not value)


class Masked(str):
    """A secret as the log shows it (the mask), still telling whether two secrets differ.

    It is written to the JSON column as the bare mask; the digest stays in memory, so that
    audit_update logs a change of password (mask to mask) but not an unchanged one.
    """

    def __new__(cls, secret: Any) -> "Masked":
        masked = super().__new__(cls, MASK)
        masked.digest = hashlib.sha256(str(secret).encode()).digest()
        return masked

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Masked):
            return self.digest == other.digest
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The record's field values now, to compare after a change; secrets masked."""
    secret = set(getattr(obj, "audit_secret_fields", ()))
    skipped = set(getattr(obj, "audit_skip_fields", ()))
    values = {}
    for field in _audited_fields(obj):
        if field.attname in skipped:
            continue
        value = getattr(obj, field.attname)
        values[field.attname] = (
            Masked(value) if field.attname in secret and value else _plain(value)
        )
    # A record may mask parts of a field, e.g. the secret ones among its custom values.
    if hasattr(obj, "audit_masked"):
        values = obj.audit_masked(values)
    return values


def _entry(obj, action: str, changes: dict, by) -> AuditEntry:
    entry = new_audit_entry(obj, action, changes, by)
    entry.save()
    return entry


def new_audit_entry(obj, action: str, changes: dict, by) -> AuditEntry:
    """An unsaved audit entry; for bulk writers, who know the changes themselves."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit entries are written inside the transaction of their change")
    return AuditEntry(
        actor=by if getattr(by, "pk", None) else None,
        action=action,
        object_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        org_unit_id=getattr(obj, "org_unit_id", None),
        owner_id=getattr(obj, "owner_id", None),
        changes=changes,
    )


def audit_create(obj: models.Model, *, by) -> AuditEntry:
    """Log a new record with every field's first value that is not empty (is_empty)."""
    changes = {k: {"before": None, "after": v} for k, v in snapshot(obj).items() if not is_empty(v)}
    return _entry(obj, AuditAction.CREATE, changes, by)


def audit_update(obj: models.Model, before: dict[str, Any], *, by) -> AuditEntry | None:
    """Log the fields that differ from `before` (a snapshot); nothing when none do."""
    after = snapshot(obj)
    changes = {
        k: {"before": before.get(k), "after": v} for k, v in after.items() if before.get(k) != v
    }
    if not changes:
        return None
    return _entry(obj, AuditAction.UPDATE, changes, by)


def audit_delete(obj: models.Model, *, by) -> AuditEntry:
    """Log a record's last values before it goes."""
    changes = {k: {"before": v, "after": None} for k, v in snapshot(obj).items()}
    return _entry(obj, AuditAction.DELETE, changes, by)
