"""Administrator-defined fields (CUS-7): their definitions, and the cleaning of their values.

Values live on the record as JSON, keyed by the field's code: text, choice, secret and
numbers as strings (a number keeps its exact digits), dates as ISO strings, yes/no as
booleans. A value that is absent or empty is simply not stored.
"""

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from clientbase.core.audit import audit_create, audit_update, snapshot
from clientbase.core.errors import ServiceError
from clientbase.core.models import CustomField

MAX_TEXT = 500
CODE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
MASK = "••••••"
_TRUE = {"1", "true", "yes", "y", "on", "oui", "да", "có"}
_FALSE = {"0", "false", "no", "n", "off", "non", "нет", "không"}
EDITABLE = (
    "code",
    "label",
    "type",
    "choices",
    "help_text",
    "for_individuals",
    "for_companies",
    "in_simple_form",
    "required",
    "required_when_field",
    "required_when_value",
    "position",
    "active",
)


def fields_for(
    applies_to: str = CustomField.AppliesTo.CLIENT, *, kind: str | None = None, mode: str = ""
) -> list[CustomField]:
    """The active fields of a record type, for one kind and form mode when given."""
    found = CustomField.objects.filter(applies_to=applies_to, active=True)
    if kind == "individual":
        found = found.filter(for_individuals=True)
    elif kind == "company":
        found = found.filter(for_companies=True)
    fields = list(found.order_by("position", "id"))
    if mode == "simple":
        # A field that may be required is shown, so the simple form can always be saved.
        fields = [f for f in fields if f.in_simple_form or f.required or f.required_when_field]
    return fields


def applies_to_kind(field: CustomField, kind: str) -> bool:
    """Whether the field is asked of this kind of client."""
    return field.for_individuals if kind == "individual" else field.for_companies


def is_required(field: CustomField, record: Any) -> bool:
    """Whether the field must be filled on this record, by its own rule."""
    if field.required:
        return True
    if not field.required_when_field:
        return False
    other = field.required_when_field
    if other.startswith("custom."):
        current = (getattr(record, "custom", None) or {}).get(other.removeprefix("custom."))
    else:
        current = getattr(record, other, None)
    if isinstance(current, bool):
        current = "yes" if current else "no"
    wanted = field.required_when_value.strip().casefold()
    return str(current or "").strip().casefold() == wanted


def _parse(field: CustomField, raw: Any) -> Any:
    """The value to store for what was entered, or ValueError with the reason."""
    if field.type == CustomField.Type.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().casefold()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(_("Answer yes or no."))
    if isinstance(raw, dt.date):
        raw = raw.isoformat()
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise ValueError(_("Enter a single value."))
    text = str(raw).strip()
    if "\x00" in text:
        raise ValueError(_("Remove the NUL character: it cannot be stored."))
    if field.type == CustomField.Type.NUMBER:
        try:
            number = Decimal(text.replace(" ", "").replace(",", "."))
        except InvalidOperation:
            raise ValueError(_("Enter a number, e.g. 1250 or 12.5.")) from None
        if not number.is_finite():
            raise ValueError(_("Enter a number, e.g. 1250 or 12.5."))
        if number == number.to_integral():
            number = number.to_integral_value()
        # Plain digits, never exponent form ("1250", not "1.25E+3"), so search finds them.
        return format(number, "f")
    if field.type == CustomField.Type.DATE:
        try:
            day = parse_date(text)
        except ValueError:
            day = None
        if day is None:
            raise ValueError(_("Enter a date as YYYY-MM-DD."))
        return day.isoformat()
    if field.type == CustomField.Type.CHOICE:
        for choice in field.choices:
            if choice.casefold() == text.casefold():
                return choice
        raise ValueError(_("Choose one of: %(choices)s.") % {"choices": ", ".join(field.choices)})
    if len(text) > MAX_TEXT:
        raise ValueError(
            ngettext("At most %(count)d character.", "At most %(count)d characters.", MAX_TEXT)
            % {"count": MAX_TEXT}
        )
    return text


def _empty(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def clean_values(
    record: Any, changes: dict[str, Any], *, kind: str, errors: dict[str, list[str]]
) -> dict[str, Any]:
    """The record's custom values with `changes` applied and checked; errors keyed custom.<code>.

    `record.custom` must already hold the other new values (required-when rules read them).
    Fields the record's kind does not have are dropped, so a company turned person sheds them.
    """
    fields = {f.code: f for f in fields_for(CustomField.AppliesTo.CLIENT)}
    values = dict(record.custom or {})
    for code in changes:
        if code not in fields:
            errors[f"custom.{code}"] = [_("There is no custom field %(code)s.") % {"code": code}]
    for code, raw in changes.items():
        if code not in fields:
            continue
        if raw == values.get(code) or (
            # The mask a reader was shown for a secret, sent back: the secret stays.
            fields[code].type == CustomField.Type.SECRET and raw == MASK
        ):
            # Unchanged, even when the field's rules have changed since it was stored
            # (e.g. a choice an administrator has removed).
            continue
        if _empty(raw):
            values.pop(code, None)
            continue
        try:
            values[code] = _parse(fields[code], raw)
        except ValueError as refused:
            errors[f"custom.{code}"] = [str(refused)]
    kept = {}
    for code, field in fields.items():
        if not applies_to_kind(field, kind):
            continue
        if code in values:
            kept[code] = values[code]
    # Values of fields since removed or deactivated stay: an administrator may restore them.
    kept |= {code: value for code, value in values.items() if code not in fields}
    record.custom = kept
    for code, field in fields.items():
        if (
            applies_to_kind(field, kind)
            and code not in kept
            and f"custom.{code}" not in errors
            and is_required(field, record)
        ):
            errors[f"custom.{code}"] = [_("%(field)s is required.") % {"field": field.label}]
    return kept


def secret_codes() -> set[str]:
    """The codes of the secret fields, whose values are masked and never searched."""
    return set(
        CustomField.objects.filter(type=CustomField.Type.SECRET).values_list("code", flat=True)
    )


def search_text(values: dict[str, Any], secret: set[str] | None = None) -> str:
    """The searchable words of the values: every field's but the secret ones, lowercased."""
    secret = secret_codes() if secret is None else secret
    words = [str(v) for code, v in values.items() if code not in secret and not isinstance(v, bool)]
    return " ".join(words).lower()


def masked_for_audit(values: dict[str, Any]) -> dict[str, Any]:
    """Custom values as the audit log keeps them: secret ones masked."""
    from clientbase.core.audit import Masked

    if not values:
        return values
    secret = secret_codes()
    return {code: Masked(v) if code in secret else v for code, v in values.items()}


def shown_value(field: CustomField, value: Any, *, may_see_secrets: bool) -> Any:
    """A value as a reader may see it: secrets masked unless allowed."""
    if value is None:
        return None
    if field.type == CustomField.Type.SECRET and not may_see_secrets:
        return MASK
    return value


def _clean_definition(field: CustomField) -> None:
    errors: dict[str, list[str]] = {}
    field.code = field.code.strip().lower()
    field.label = field.label.strip()
    if not field.code:
        errors["code"] = [_("Give the field a code, e.g. code_1c.")]
    elif not CODE_PATTERN.fullmatch(field.code):
        errors["code"] = [
            _("Use at most 40 lowercase letters a-z, digits and _, starting with a letter.")
        ]
    if not field.label:
        errors["label"] = [_("Give the field a label.")]
    if field.type not in CustomField.Type.values:
        errors["type"] = [_("Choose a type.")]
    choices = [str(c).strip() for c in field.choices or [] if str(c).strip()]
    field.choices = list(dict.fromkeys(choices))
    if field.type == CustomField.Type.CHOICE and len(field.choices) < 2:
        errors["choices"] = [_("A choice field needs at least two choices.")]
    if field.type != CustomField.Type.CHOICE:
        field.choices = []
    if not (field.for_individuals or field.for_companies):
        errors["for_companies"] = [_("Ask the field of individuals, companies or both.")]
    field.required_when_field = field.required_when_field.strip()
    field.required_when_value = field.required_when_value.strip()
    if field.required_when_field and field.required:
        errors["required_when_field"] = [
            _("A field always required needs no condition; clear one of them.")
        ]
    if field.required_when_field and not field.required_when_value:
        errors["required_when_value"] = [_("Say which value makes the field required.")]
    if field.required_when_field and field.required_when_field not in condition_fields():
        errors["required_when_field"] = [_("Choose a field of the client.")]
    if errors:
        raise ServiceError(errors=errors)


def _in_use(field: CustomField) -> bool:
    from clientbase.clients.models import Client

    return Client.everything.filter(custom__has_key=field.code).exists()


def condition_fields() -> dict[str, str]:
    """The client fields a required-when rule may test, with their labels."""
    from clientbase.clients.models import Client

    names = ["kind", "country", "status", "currency", "language", "payment_method", "tax_exempt"]
    found = {n: str(Client._meta.get_field(n).verbose_name).capitalize() for n in names}
    for field in CustomField.objects.filter(applies_to=CustomField.AppliesTo.CLIENT):
        found[f"custom.{field.code}"] = field.label
    return found


def custom_field_save(*, field: CustomField | None, by, **values) -> CustomField:
    """Add a custom field, or change one; the code of a field in use cannot change."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise TypeError(f"custom_field_save() got unexpected fields {sorted(unknown)}")
    try:
        with transaction.atomic():
            if field is None:
                field = CustomField(**values)
                _clean_definition(field)
                field.save()
                audit_create(field, by=by)
                return field
            field = CustomField.objects.select_for_update().get(pk=field.pk)
            before = snapshot(field)
            for name, value in values.items():
                setattr(field, name, value)
            if field.code != before["code"]:
                raise ServiceError(
                    _("The code cannot change: imports, exports and the API use it."),
                    field="code",
                )
            if field.type != before["type"] and _in_use(field):
                # A secret turned text would show every stored secret; a text turned number
                # would hold values its type refuses.
                raise ServiceError(
                    _("Clients already have values in this field; its type cannot change."),
                    field="type",
                )
            _clean_definition(field)
            field.save()
            audit_update(field, before, by=by)
            return field
    except IntegrityError as clash:
        raise ServiceError(_("Another field already has this code."), field="code") from clash
