"""Every change to a client goes through here."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clientbase.accounts.models import User
from clientbase.clients.models import Client, Note
from clientbase.core.audit import audit_create, audit_update, snapshot
from clientbase.core.errors import ServiceError
from clientbase.core.events import record_event, register_event_type
from clientbase.core.models import EventCategory
from clientbase.core.money import currency_exponent
from clientbase.core.numbering import next_number, register_series
from clientbase.core.visibility import may_assign

register_series("client", prefix="", padding=0)
register_event_type(
    "client.created", EventCategory.ACCOUNT, gettext_lazy("Client %(name)s created")
)


# Audit rows name columns (owner_id); events name fields (owner), whose labels translate.
FIELD_BY_COLUMN = {f.attname: f.name for f in Client._meta.concrete_fields}


def _field_labels(details: dict) -> dict:
    """The changed fields' names in the reader's language."""
    names = details.get("fields", [])
    return {"fields": ", ".join(str(Client._meta.get_field(n).verbose_name) for n in names)}


register_event_type(
    "client.changed",
    EventCategory.ACCOUNT,
    gettext_lazy("Client details changed: %(fields)s"),
    words=_field_labels,
)

EDITABLE = (
    "kind",
    "name",
    "email",
    "phone",
    "tax_id",
    "street",
    "postcode",
    "city",
    "country",
    "currency",
    "language",
    "owner",
    "org_unit",
)


def _clean(client: Client, by: User, *, assigning: bool = True) -> None:
    errors: dict[str, list[str]] = {}
    client.name = client.name.strip()
    client.email = client.email.strip()
    if not client.name:
        errors["name"] = [_("A client needs a name.")]
    try:
        validate_email(client.email)
    except ValidationError:
        errors["email"] = [_("Enter a valid email address, e.g. name@example.com.")]
    try:
        currency_exponent(client.currency)
    except ValueError:
        errors["currency"] = [_("Unknown currency code.")]
    if client.kind not in Client.Kind.values:
        errors["kind"] = [_("Choose individual or company.")]
    if client.org_unit_id is None:
        errors["org_unit"] = [_("Choose the unit the client belongs to.")]
    duplicate = (
        Client.objects.filter(email__iexact=client.email).exclude(pk=client.pk).first()
        if client.email
        else None
    )
    if duplicate is not None:
        errors["email"] = [
            _("Client %(number)s already uses this email.") % {"number": duplicate.number}
        ]
    if (
        assigning
        and client.org_unit_id is not None
        and not may_assign(by, owner=client.owner, org_unit=client.org_unit)
    ):
        errors["owner"] = [_("You can give clients only to people and units within your reach.")]
    if errors:
        raise ServiceError(errors=errors)


def client_create(*, by: User, **fields) -> Client:
    """Add a client with the next client number; the email must be new to the base."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"client_create() got unexpected fields {sorted(unknown)}")
    fields.setdefault("currency", settings.DEFAULT_CURRENCY)
    fields.setdefault("owner", by)
    if "org_unit" not in fields:
        fields["org_unit"] = by.org_unit
    client = Client(**fields)
    _clean(client, by)
    try:
        with transaction.atomic():
            client.number = next_number("client").text
            client.save()
            audit_create(client, by=by)
            record_event(
                "client.created",
                by=by,
                client=client,
                subject=client,
                reference=client.number,
                details={"name": client.name},
            )
    except IntegrityError as clash:
        # Two clerks saving the same email at once: the unique index decides.
        raise ServiceError(_("Another client already uses this email."), field="email") from clash
    return client


def client_update(*, client: Client, by: User, **fields) -> Client:
    """Change a client's details; every changed field goes to the audit log."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"client_update() got unexpected fields {sorted(unknown)}")
    try:
        with transaction.atomic():
            client = Client.objects.select_for_update().get(pk=client.pk)
            before = snapshot(client)
            for name, value in fields.items():
                setattr(client, name, value)
            assigning = (client.owner_id, client.org_unit_id) != (
                before["owner_id"],
                before["org_unit_id"],
            )
            _clean(client, by, assigning=assigning)
            client.save()
            entry = audit_update(client, before, by=by)
            if entry is not None:
                record_event(
                    "client.changed",
                    by=by,
                    client=client,
                    subject=client,
                    reference=client.number,
                    details={"fields": sorted(FIELD_BY_COLUMN[c] for c in entry.changes)},
                )
    except IntegrityError as clash:
        raise ServiceError(_("Another client already uses this email."), field="email") from clash
    return client


register_event_type("note.added", EventCategory.ACCOUNT, gettext_lazy("Note added: %(excerpt)s"))
register_event_type(
    "note.commented", EventCategory.ACCOUNT, gettext_lazy("Comment on a note: %(excerpt)s")
)
NOTE_MAX_LENGTH = 10_000


def _note_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise ServiceError(_("A note cannot be empty."), field="body")
    if len(body) > NOTE_MAX_LENGTH:
        raise ServiceError(
            _("A note can hold at most %(max)d characters.") % {"max": NOTE_MAX_LENGTH},
            field="body",
        )
    return body


def _excerpt(body: str) -> str:
    line = body.splitlines()[0]
    return line if len(line) <= 80 else line[:79] + "…"


def note_add(*, client: Client, body: str, important: bool = False, by: User) -> Note:
    """Write a note on a client's account; it can never be changed, only commented on."""
    body = _note_body(body)
    with transaction.atomic():
        note = Note.objects.create(
            client=client,
            body=body,
            important=important,
            actor=by,
            owner_id=client.owner_id,
            org_unit_id=client.org_unit_id,
        )
        record_event(
            "note.added",
            by=by,
            client=client,
            subject=note,
            details={"excerpt": _excerpt(body), "important": important},
        )
    return note


def note_comment(*, note: Note, body: str, by: User) -> Note:
    """Answer a note; comments thread under the note they answer, one level deep."""
    body = _note_body(body)
    if note.parent_id is not None:
        raise ServiceError(_("Answer the note itself, not one of its comments."), field="parent")
    with transaction.atomic():
        comment = Note.objects.create(
            client_id=note.client_id,
            parent=note,
            body=body,
            actor=by,
            owner_id=note.owner_id,
            org_unit_id=note.org_unit_id,
        )
        record_event(
            "note.commented",
            by=by,
            client=note.client,
            subject=comment,
            details={"excerpt": _excerpt(body)},
        )
    return comment
