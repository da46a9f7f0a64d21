"""Every change to a client goes through here."""

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django_countries import countries

from clientbase.accounts.models import User
from clientbase.clients.models import (
    Address,
    Client,
    Contact,
    ContactPhone,
    DeferredAction,
    Note,
    SecurityQuestion,
)
from clientbase.clients.validation import (
    normalize_email,
    normalize_phone,
    normalize_tax_id,
    validate_kpp,
)
from clientbase.core import clock, customfields
from clientbase.core.audit import audit_create, audit_delete, audit_update, snapshot
from clientbase.core.errors import ConflictError, ServiceError
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
    "first_name",
    "last_name",
    "company_name",
    "email",
    "phone",
    "tax_id",
    "kpp",
    "national_id",
    "street",
    "postcode",
    "city",
    "country",
    "currency",
    "language",
    "owner",
    "org_unit",
    "payment_method",
    "group",
    "tax_exempt",
    "separate_invoices",
    "billing_day",
    "auto_apply_credit",
    "suspend_exempt_until",
    "late_fee_exempt",
    "no_overdue_notices",
    "no_card_autopay",
    "sales_manager",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "referred_by",
    "tags",
    "consent_email",
    "consent_sms",
    "consent_api",
    "parent",
    "bill_to_parent",
    "custom",
    "preferred_channel",
    "notices_opted_out",
)
_TEXT_FIELDS = (
    "first_name",
    "last_name",
    "company_name",
    "national_id",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)


def _clean_identity(client: Client, errors: dict) -> None:
    """Keep the display name in step with the kind: a person's full name, or the company's."""
    for field in _TEXT_FIELDS:
        setattr(client, field, getattr(client, field).strip())
    client.name = client.name.strip()
    if client.kind == Client.Kind.INDIVIDUAL:
        if client.first_name or client.last_name:
            if not client.last_name:
                errors["last_name"] = [_("A person needs a last name.")]
            client.name = f"{client.first_name} {client.last_name}".strip()
        client.company_name = ""
    elif client.kind == Client.Kind.COMPANY:
        # A company's people are its contacts, not names on the account.
        client.first_name = client.last_name = ""
        if client.company_name:
            client.name = client.company_name
        else:
            client.company_name = client.name
    if not client.name and "last_name" not in errors:
        field = "last_name" if client.kind == Client.Kind.INDIVIDUAL else "company_name"
        errors[field] = [_("A client needs a name.")]
    client.tags = ", ".join(dict.fromkeys(t.strip() for t in client.tags.split(",") if t.strip()))
    if client.payment_method not in Client.PaymentMethod.values:
        errors["payment_method"] = [_("Choose bank transfer, card, cash or other.")]
    if client.preferred_channel not in Client.Channel.values:
        errors["preferred_channel"] = [_("Choose email, SMS or post.")]
    notices = client.notices_opted_out
    if not isinstance(notices, list | tuple) or set(notices) - set(Client.Notice.values):
        errors["notices_opted_out"] = [
            _("Choose among: %(notices)s.") % {"notices": ", ".join(Client.Notice.values)}
        ]
    else:
        # Kept in the choices' order, so an unchanged list never shows as a change.
        client.notices_opted_out = [n for n in Client.Notice.values if n in notices]
    if client.referred_by_id is not None and client.referred_by_id == client.pk:
        errors["referred_by"] = [_("A client cannot refer itself.")]


def _normalized(errors: dict, field: str, check: Callable[[], str]) -> str | None:
    """Run a field's normaliser; on refusal note its message at the field."""
    try:
        return check()
    except ValidationError as refused:
        errors[field] = refused.messages
        return None


MAX_HIERARCHY_DEPTH = 10


def _clean_parent(client: Client, errors: dict) -> None:
    """A member belongs to a live company, and no group contains itself."""
    if client.parent_id is None:
        if client.bill_to_parent:
            errors["bill_to_parent"] = [_("Only a member company can send charges to a parent.")]
        return
    parent = Client.objects.filter(pk=client.parent_id).only("kind", "parent_id").first()
    if parent is None:
        errors["parent"] = [_("There is no such client.")]
        return
    if parent.kind != Client.Kind.COMPANY:
        errors["parent"] = [_("A parent must be a company.")]
        return
    ancestor_id, depth = parent.pk, 0
    while ancestor_id is not None:
        if ancestor_id == client.pk:
            errors["parent"] = [_("A client cannot belong to itself or to its own member.")]
            return
        depth += 1
        if depth > MAX_HIERARCHY_DEPTH:
            errors["parent"] = [
                _("A group of companies is at most %(depth)d levels deep.")
                % {"depth": MAX_HIERARCHY_DEPTH}
            ]
            return
        ancestor_id = (
            Client.objects.filter(pk=ancestor_id).values_list("parent_id", flat=True).first()
        )


def _clean(client: Client, by: User, *, assigning: bool = True, custom: dict | None = None) -> None:
    errors: dict[str, list[str]] = {}
    _clean_identity(client, errors)
    _clean_parent(client, errors)
    client.country = client.country.strip().upper()
    if client.country and client.country not in countries:
        errors["country"] = [_("Unknown country code; use two letters, e.g. FR.")]
    country = client.country if "country" not in errors else ""
    if (email := _normalized(errors, "email", lambda: normalize_email(client.email))) is not None:
        client.email = email
        if not email:
            errors["email"] = [_("A client needs an email address.")]
    if (
        phone := _normalized(
            errors, "phone", lambda: normalize_phone(client.phone, country=country)
        )
    ) is not None:
        client.phone = phone
    if (
        client.kind in Client.Kind.values
        and (
            tax_id := _normalized(
                errors,
                "tax_id",
                lambda: normalize_tax_id(client.tax_id, country=country, kind=client.kind),
            )
        )
        is not None
    ):
        client.tax_id = tax_id
    if client.kpp:
        if client.kind != Client.Kind.COMPANY or country != "RU":
            errors["kpp"] = [_("Only Russian companies have a KPP.")]
        elif (kpp := _normalized(errors, "kpp", lambda: validate_kpp(client.kpp))) is not None:
            client.kpp = kpp
    try:
        currency_exponent(client.currency)
    except ValueError:
        errors["currency"] = [_("Unknown currency code.")]
    if client.kind not in Client.Kind.values:
        errors["kind"] = [_("Choose individual or company.")]
    if client.org_unit_id is None:
        errors["org_unit"] = [_("Choose the unit the client belongs to.")]
    duplicate = (
        # LOWER(email) matches the unique index, so the check stays fast at a million clients.
        Client.objects.annotate(email_key=Lower("email"))
        .filter(email_key=client.email.lower())
        .exclude(pk=client.pk)
        .order_by()
        .first()
        if client.email and "email" not in errors
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
    if client.kind in Client.Kind.values:
        customfields.clean_values(client, custom or {}, kind=client.kind, errors=errors)
        client.custom_search = customfields.search_text(client.custom)
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
    custom = fields.pop("custom", None)
    client = Client(**fields)
    _clean(client, by, custom=custom)
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


def client_update(
    *, client: Client, by: User, expected_version: int | None = None, **fields
) -> Client:
    """Change a client's details; every changed field goes to the audit log.

    With `expected_version` (the version the clerk's form was drawn from), a change made
    meanwhile by someone else refuses this one instead of being silently overwritten.
    """
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"client_update() got unexpected fields {sorted(unknown)}")
    custom = fields.pop("custom", None)
    try:
        with transaction.atomic():
            client = Client.objects.select_for_update().get(pk=client.pk)
            if expected_version is not None and expected_version != client.version:
                raise ConflictError(
                    _(
                        "Someone else changed this client while you were editing. "
                        "Reload the page to see their changes, then make yours again."
                    )
                )
            before = snapshot(client)
            if "name" in fields and not {"first_name", "last_name", "company_name"} & set(fields):
                # A bare new name (older API callers, imports) renames the client as it is.
                client.first_name = client.last_name = client.company_name = ""
            for name, value in fields.items():
                setattr(client, name, value)
            assigning = (client.owner_id, client.org_unit_id) != (
                before["owner_id"],
                before["org_unit_id"],
            )
            _clean(client, by, assigning=assigning, custom=custom)
            entry = audit_update(client, before, by=by)
            if entry is not None:
                client.version += 1
            client.save()
            if assigning:
                # Clients merged into this one follow it, so their history stays in view.
                Client.everything.filter(merged_into=client).update(
                    owner_id=client.owner_id, org_unit_id=client.org_unit_id
                )
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


# --- status and deferred actions (CUS-12, CUS-13) ----------------------------------------

register_event_type(
    "client.status_changed",
    EventCategory.ACCOUNT,
    gettext_lazy("Status changed from %(old)s to %(new)s: %(reason)s"),
    words=lambda details: {
        "old": str(Client.Status(details["old"]).label),
        "new": str(Client.Status(details["new"]).label),
    },
)
register_event_type(
    "client.status_scheduled",
    EventCategory.ACCOUNT,
    gettext_lazy("Status change to %(new)s scheduled for %(due_on)s: %(reason)s"),
    words=lambda details: {"new": str(Client.Status(details["new"]).label)},
)
register_event_type(
    "deferred_action.cancelled",
    EventCategory.ACCOUNT,
    gettext_lazy("Scheduled change for %(due_on)s deleted"),
)

# Whatever follows a status change elsewhere (billing suspends or restores services):
# callables (client, old_status, new_status, by) run inside the change's transaction.
STATUS_HOOKS: list[Callable[[Client, str, str, User], None]] = []


def on_status_change(hook: Callable[[Client, str, str, User], None]) -> None:
    """Register what a module does when an account's status changes (e.g. its services)."""
    if hook not in STATUS_HOOKS:
        STATUS_HOOKS.append(hook)


def _status_request(client: Client, status: str, reason: str) -> str:
    if status not in Client.Status.values:
        raise ServiceError(_("Choose active, inactive or closed."), field="status")
    reason = reason.strip()
    if not reason:
        raise ServiceError(_("Give a reason for the change."), field="reason")
    if client.status == Client.Status.CLOSED:
        raise ServiceError(_("A closed account cannot be reopened."), field="status")
    if client.status == status:
        raise ServiceError(
            _("The account is already %(status)s.") % {"status": Client.Status(status).label},
            field="status",
        )
    return reason


def _apply_status(
    client: Client, status: str, reason: str, effective: dt.date, by: User, note: str
) -> Client:
    """Change the status now, inside the caller's transaction, with hooks, audit and event."""
    before = snapshot(client)
    old = client.status
    client.status, client.status_since = status, effective
    client.version += 1
    client.save(update_fields=["status", "status_since", "version"])
    for hook in STATUS_HOOKS:
        hook(client, old, status, by)
    audit_update(client, before, by=by)
    record_event(
        "client.status_changed",
        by=by,
        client=client,
        subject=client,
        reference=client.number,
        details={"old": old, "new": status, "reason": reason, "effective": effective},
    )
    if note.strip():
        note_add(client=client, body=note, by=by)
    _cascade_to_members(client, old, status, effective, by)
    return client


def _cascade_to_members(
    parent: Client, old: str, status: str, effective: dt.date, by: User
) -> None:
    """Members whose charges the parent pays share its status: suspended, restored or closed
    with it (CUS-14). Members paying for themselves keep theirs."""
    members = Client.objects.select_for_update().filter(parent=parent, bill_to_parent=True)
    reason = _("Parent company %(number)s: %(old)s → %(new)s") % {
        "number": parent.number,
        "old": Client.Status(old).label,
        "new": Client.Status(status).label,
    }
    for member in members.order_by("pk"):
        # Only members that were in step with the parent follow it; one closed for its own
        # reasons stays closed, and one inactivated alone is not reactivated by the parent.
        if member.status == old and member.status != Client.Status.CLOSED:
            _apply_status(member, status, reason, effective, by, "")


def client_set_status(
    *,
    client: Client,
    status: str,
    reason: str,
    by: User,
    effective: dt.date | None = None,
    note: str = "",
) -> Client | DeferredAction:
    """Make an account active, inactive or closed: now, backdated, or deferred to a day.

    A date after today schedules a deferred action (returned instead of the client); today
    or earlier applies now, the status counting from that date.
    """
    today = clock.today()
    effective = effective or today
    with transaction.atomic():
        client = Client.objects.select_for_update().get(pk=client.pk)
        reason = _status_request(client, status, reason)
        if effective > today:
            action = DeferredAction.objects.create(
                client=client,
                kind=DeferredAction.Kind.STATUS,
                params={"status": status, "reason": reason, "note": note.strip()},
                due_on=effective,
                created_by=by,
            )
            record_event(
                "client.status_scheduled",
                by=by,
                client=client,
                subject=action,
                details={"new": status, "reason": reason, "due_on": effective},
            )
            return action
        return _apply_status(client, status, reason, effective, by, note)


def _pending(action: DeferredAction) -> DeferredAction:
    action = DeferredAction.objects.select_for_update().get(pk=action.pk)
    if action.state != DeferredAction.State.PENDING:
        raise ServiceError(
            _("This action is %(state)s; only pending actions can change.")
            % {"state": action.get_state_display().lower()}
        )
    return action


def deferred_action_update(
    *, action: DeferredAction, due_on: dt.date, status: str, reason: str, note: str, by: User
) -> DeferredAction:
    """Change a pending action's day or content."""
    if due_on <= clock.today():
        raise ServiceError(
            _("Choose a day after today, or execute the action now."), field="due_on"
        )
    with transaction.atomic():
        action = _pending(action)
        before = snapshot(action)
        if action.kind == DeferredAction.Kind.STATUS:
            reason = _status_request(action.client, status, reason)
            action.params = {"status": status, "reason": reason, "note": note.strip()}
        elif (reason or "").strip():
            # What a service change does is fixed; its day and reason may change.
            action.params = {**action.params, "reason": reason.strip()[:500]}
        action.due_on = due_on
        action.save(update_fields=["due_on", "params"])
        audit_update(action, before, by=by)
    return action


# Other modules' deferred actions: kind -> executor(action, by), raising ServiceError when
# the action can no longer apply (billing registers the service changes), and
# kind -> describe(action), the words the profile shows for it.
DEFERRED_EXECUTORS: dict[str, Callable] = {}
DEFERRED_DESCRIBERS: dict[str, Callable] = {}


def register_deferred_kind(kind: str, executor: Callable, describe: Callable) -> None:
    """Let the cron run another module's deferred actions of a kind."""
    DEFERRED_EXECUTORS[kind] = executor
    DEFERRED_DESCRIBERS[kind] = describe


def deferred_action_summary(action: DeferredAction) -> str:
    """What a deferred action of another module does, in the reader's language."""
    describe = DEFERRED_DESCRIBERS.get(action.kind)
    return str(describe(action)) if describe else ""


def deferred_action_execute(*, action: DeferredAction, by: User | None) -> DeferredAction:
    """Run a pending action now; if it can no longer apply, it is marked as an error."""
    with transaction.atomic():
        action = _pending(action)
        client = Client.objects.select_for_update().get(pk=action.client_id)
        params = action.params
        try:
            with transaction.atomic():
                if action.kind != DeferredAction.Kind.STATUS:
                    DEFERRED_EXECUTORS[action.kind](action, by)
                else:
                    reason = _status_request(client, params["status"], params["reason"])
                    _apply_status(
                        client, params["status"], reason, clock.today(), by, params.get("note", "")
                    )
        except ServiceError as refused:
            action.state, action.result = DeferredAction.State.ERROR, " ".join(refused.messages)
        else:
            action.state, action.result = DeferredAction.State.DONE, ""
        action.executed_at = clock.now()
        action.save(update_fields=["state", "result", "executed_at"])
    return action


def deferred_action_delete(*, action: DeferredAction, by: User) -> None:
    """Drop an action that has not run (pending) or could not run (error)."""
    with transaction.atomic():
        action = DeferredAction.objects.select_for_update().get(pk=action.pk)
        if action.state == DeferredAction.State.DONE:
            raise ServiceError(_("A done action stays in the history."))
        record_event(
            "deferred_action.cancelled",
            by=by,
            client=action.client,
            details={"due_on": action.due_on},
        )
        audit_delete(action, by=by)
        action.delete()


def deferred_actions_run_due(day: dt.date) -> tuple[int, int]:
    """Execute every pending action due on or before the day, as the system; (done, failed)."""
    done = failed = 0
    due = DeferredAction.objects.filter(state=DeferredAction.State.PENDING, due_on__lte=day)
    for action in due.order_by("due_on", "id").iterator():
        result = deferred_action_execute(action=action, by=None)
        done += result.state == DeferredAction.State.DONE
        failed += result.state == DeferredAction.State.ERROR
    return done, failed


# --- contacts and addresses (CUS-5, CUS-6) -----------------------------------------------

for code, message in [
    ("contact.added", gettext_lazy("Contact %(name)s added")),
    ("contact.changed", gettext_lazy("Contact %(name)s changed")),
    ("contact.removed", gettext_lazy("Contact %(name)s removed")),
    ("address.added", gettext_lazy("%(type)s address added: %(address)s")),
    ("address.changed", gettext_lazy("%(type)s address changed: %(address)s")),
    ("address.removed", gettext_lazy("%(type)s address removed: %(address)s")),
]:
    register_event_type(
        code,
        EventCategory.ACCOUNT,
        message,
        words=lambda d: {"type": str(Address.Type(d["type"]).label)} if "type" in d else {},
    )


def _clean_contact(contact: Contact, phones: dict[str, str], country: str) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    contact.first_name = contact.first_name.strip()
    contact.last_name = contact.last_name.strip()
    contact.position = contact.position.strip()
    if not contact.last_name:
        errors["last_name"] = [_("A contact needs a last name.")]
    if (email := _normalized(errors, "email", lambda: normalize_email(contact.email))) is not None:
        contact.email = email
    numbers = {}
    for kind, raw in phones.items():
        if kind not in ContactPhone.Type.values:
            errors[f"phone_{kind}"] = [_("Unknown phone type.")]
            continue
        number = _normalized(
            errors, f"phone_{kind}", lambda raw=raw: normalize_phone(raw, country=country)
        )
        if number:
            numbers[kind] = number
    if errors:
        raise ServiceError(errors=errors)
    return numbers


def _contact_event(code: str, contact: Contact, by: User) -> None:
    record_event(
        code, by=by, client=contact.client, subject=contact, details={"name": str(contact)}
    )


def contact_add(
    *,
    client: Client,
    by: User,
    last_name: str,
    first_name: str = "",
    position: str = "",
    email: str = "",
    phones: dict[str, str] | None = None,
) -> Contact:
    """Add a contact with at most one phone number per type."""
    contact = Contact(
        client=client, first_name=first_name, last_name=last_name, position=position, email=email
    )
    numbers = _clean_contact(contact, phones or {}, client.country)
    with transaction.atomic():
        contact.save()
        ContactPhone.objects.bulk_create(
            ContactPhone(contact=contact, type=kind, number=number)
            for kind, number in numbers.items()
        )
        audit_create(contact, by=by)
        _contact_event("contact.added", contact, by)
    return contact


def contact_update(*, contact: Contact, by: User, phones: dict[str, str], **fields) -> Contact:
    """Change a contact's details; `phones` holds every type's number ("" removes it)."""
    with transaction.atomic():
        contact = Contact.objects.select_for_update().select_related("client").get(pk=contact.pk)
        before = snapshot(contact)
        for name in ("first_name", "last_name", "position", "email"):
            if name in fields:
                setattr(contact, name, fields[name])
        numbers = _clean_contact(contact, phones, contact.client.country)
        contact.save()
        old = dict(contact.phones.values_list("type", "number"))
        contact.phones.exclude(type__in=numbers).delete()
        for kind, number in numbers.items():
            if old.get(kind) != number:
                ContactPhone.objects.update_or_create(
                    contact=contact, type=kind, defaults={"number": number}
                )
        entry = audit_update(contact, before, by=by)
        if entry is not None or old != numbers:
            _contact_event("contact.changed", contact, by)
    return contact


def contact_delete(*, contact: Contact, by: User) -> None:
    """Remove a contact; the first one stays, as it names the account."""
    with transaction.atomic():
        contact = Contact.objects.select_for_update().select_related("client").get(pk=contact.pk)
        first = Contact.objects.filter(client_id=contact.client_id).order_by("id").first()
        if first is not None and first.pk == contact.pk:
            raise ServiceError(_("The first contact cannot be removed: it names the account."))
        audit_delete(contact, by=by)
        _contact_event("contact.removed", contact, by)
        contact.delete()


ADDRESS_FIELDS = (
    "type",
    "line1",
    "line2",
    "postcode",
    "city",
    "region",
    "country",
    "latitude",
    "longitude",
    "notes",
)


def _clean_address(address: Address) -> None:
    errors: dict[str, list[str]] = {}
    for name in ("line1", "line2", "postcode", "city", "region", "notes"):
        setattr(address, name, getattr(address, name).strip())
    address.country = address.country.strip().upper()
    if address.type not in Address.Type.values:
        errors["type"] = [_("Choose correspondence, billing, delivery or site.")]
    if not address.line1:
        errors["line1"] = [_("Give the street and number.")]
    if not address.city:
        errors["city"] = [_("Give the city.")]
    if address.country not in countries:
        errors["country"] = [_("Unknown country code; use two letters, e.g. FR.")]
    if (address.latitude is None) != (address.longitude is None):
        errors["latitude"] = [_("Give both coordinates, or neither.")]
    elif address.latitude is not None and not (-90 <= address.latitude <= 90):
        errors["latitude"] = [_("A latitude lies between -90 and 90.")]
    elif address.longitude is not None and not (-180 <= address.longitude <= 180):
        errors["longitude"] = [_("A longitude lies between -180 and 180.")]
    if errors:
        raise ServiceError(errors=errors)


def _address_event(code: str, address: Address, by: User) -> None:
    record_event(
        code,
        by=by,
        client=address.client,
        subject=address,
        details={"type": address.type, "address": str(address)},
    )


def address_add(*, client: Client, by: User, **fields) -> Address:
    """Add a typed address to a client."""
    unknown = set(fields) - set(ADDRESS_FIELDS)
    if unknown:
        raise TypeError(f"address_add() got unexpected fields {sorted(unknown)}")
    address = Address(client=client, **fields)
    _clean_address(address)
    with transaction.atomic():
        address.save()
        audit_create(address, by=by)
        _address_event("address.added", address, by)
    return address


def address_update(*, address: Address, by: User, **fields) -> Address:
    """Change an address."""
    unknown = set(fields) - set(ADDRESS_FIELDS)
    if unknown:
        raise TypeError(f"address_update() got unexpected fields {sorted(unknown)}")
    with transaction.atomic():
        address = Address.objects.select_for_update().select_related("client").get(pk=address.pk)
        before = snapshot(address)
        for name, value in fields.items():
            setattr(address, name, value)
        _clean_address(address)
        address.save()
        if audit_update(address, before, by=by) is not None:
            _address_event("address.changed", address, by)
    return address


def address_delete(*, address: Address, by: User) -> None:
    """Remove an address."""
    with transaction.atomic():
        address = Address.objects.select_for_update().select_related("client").get(pk=address.pk)
        audit_delete(address, by=by)
        _address_event("address.removed", address, by)
        address.delete()


# --- security questions (CUS-11) --------------------------------------------------------

register_event_type(
    "security.question_added",
    EventCategory.SECURITY,
    gettext_lazy("Security question added: %(question)s"),
)
register_event_type(
    "security.answer_checked",
    EventCategory.SECURITY,
    gettext_lazy("Security question checked (%(outcome)s): %(question)s"),
    words=lambda d: {"outcome": _("right") if d.get("right") else _("wrong")},
)


def _answer_key(answer: str) -> str:
    """The answer as compared: case, accents of spacing and outer blanks do not count."""
    return " ".join(answer.casefold().split())


def security_question_add(
    *, client: Client, question: str, answer: str, by: User
) -> SecurityQuestion:
    """Add a question with its answer, of which only a salted hash is kept."""
    question, key = question.strip(), _answer_key(answer)
    errors = {}
    if not question:
        errors["question"] = [_("Write the question.")]
    if not key:
        errors["answer"] = [_("Write the answer.")]
    if errors:
        raise ServiceError(errors=errors)
    with transaction.atomic():
        item = SecurityQuestion.objects.create(
            client=client, question=question, answer_hash=make_password(key)
        )
        audit_create(item, by=by)
        record_event(
            "security.question_added",
            by=by,
            client=client,
            subject=item,
            details={"question": question},
        )
    return item


def security_answer_check(*, item: SecurityQuestion, answer: str, by: User) -> bool:
    """Whether the caller's answer is right; every check is kept in the newsfeed."""
    right = check_password(_answer_key(answer), item.answer_hash)
    with transaction.atomic():
        record_event(
            "security.answer_checked",
            by=by,
            client=item.client,
            subject=item,
            details={"question": item.question, "right": right},
        )
    return right


def security_question_delete(*, item: SecurityQuestion, by: User) -> None:
    """Remove a question."""
    with transaction.atomic():
        audit_delete(item, by=by)
        item.delete()


# --- merge and delete (CUS-15) -----------------------------------------------------------------

register_event_type(
    "client.merged_in",
    EventCategory.ACCOUNT,
    gettext_lazy("Client %(other)s merged into this account"),
)
register_event_type(
    "client.merged_away",
    EventCategory.ACCOUNT,
    gettext_lazy("Account merged into client %(other)s"),
)
register_event_type(
    "client.deleted", EventCategory.ACCOUNT, gettext_lazy("Client deleted: %(reason)s")
)

# Other modules' say before a client is deleted: callables (client) returning the reason
# to refuse (e.g. billing: "2 unpaid invoices"), or "" to let it go.
DELETE_CHECKS: list[Callable[[Client], str]] = []
# Whatever a module must do itself when two clients merge, beyond moving its rows that
# point at the client (which happens for every model): callables (survivor, merged, by).
MERGE_HOOKS: list[Callable[[Client, Client, User], None]] = []


def on_client_delete(check: Callable[[Client], str]) -> None:
    """Register a module's check before a client is deleted."""
    if check not in DELETE_CHECKS:
        DELETE_CHECKS.append(check)


# Checks other modules make before two clients merge: callables (survivor, merged) returning
# why the merge cannot happen, or "".
MERGE_CHECKS: list[Callable[[Client, Client], str]] = []


def on_client_merge_check(check: Callable[[Client, Client], str]) -> None:
    """Register a module's check before two clients merge."""
    if check not in MERGE_CHECKS:
        MERGE_CHECKS.append(check)


def on_client_merge(hook: Callable[[Client, Client, User], None]) -> None:
    """Register what a module does itself when two clients merge."""
    if hook not in MERGE_HOOKS:
        MERGE_HOOKS.append(hook)


def history_ids(client: Client) -> list[int]:
    """The client and every client merged into it: their notes and history are its own."""
    merged = Client.everything.filter(merged_into=client).values_list("pk", flat=True)
    return [client.pk, *merged]


def _movable_relations():
    """The foreign keys to Client on records that move at a merge (history never moves)."""
    from clientbase.core.models import AppendOnly

    for relation in Client._meta.related_objects:
        if not relation.one_to_many or issubclass(relation.related_model, AppendOnly):
            continue
        if relation.field.name == "merged_into":
            continue
        yield relation.related_model, relation.field.name


def client_merge(*, survivor: Client, merged: Client, by: User) -> Client:
    """Fold one client into another: everything it has moves to the survivor.

    Contacts, addresses, documents, members, deferred actions done and every record other
    modules keep for the client are moved. Notes and newsfeed, which never change, stay on
    the merged client, which remains as a pointer to the survivor: the survivor's profile
    shows them as its own. The survivor keeps its details; custom values it lacks are taken
    from the merged client.
    """
    if survivor.pk == merged.pk:
        raise ServiceError(_("Choose two different clients."), field="merged")
    with transaction.atomic():
        locked = {
            c.pk: c
            for c in Client.objects.select_for_update()
            .filter(pk__in=[survivor.pk, merged.pk])
            .order_by("pk")
        }
        if len(locked) != 2:
            raise ServiceError(_("This client was merged or deleted meanwhile."), field="merged")
        survivor, merged = locked[survivor.pk], locked[merged.pk]
        if survivor.currency != merged.currency:
            raise ServiceError(
                _("Both clients must bill in the same currency (%(a)s and %(b)s).")
                % {"a": survivor.currency, "b": merged.currency},
                field="merged",
            )
        for check in MERGE_CHECKS:
            refusal = check(survivor, merged)
            if refusal:
                raise ServiceError(refusal, field="merged")
        survivor_before, merged_before = snapshot(survivor), snapshot(merged)
        for action in DeferredAction.objects.filter(
            client=merged, state=DeferredAction.State.PENDING
        ):
            record_event(
                "deferred_action.cancelled",
                by=by,
                client=merged,
                subject=action,
                details={"due_on": action.due_on},
            )
            action.delete()
        for model, field in _movable_relations():
            model._base_manager.filter(**{field: merged}).update(**{field: survivor})
        Client.everything.filter(merged_into=merged).update(
            merged_into=survivor, owner=survivor.owner, org_unit=survivor.org_unit
        )
        survivor.refresh_from_db(fields=["parent", "referred_by"])
        if survivor.parent_id == survivor.pk:
            # The survivor was a member of the merged company: it takes that company's place.
            survivor.parent_id = merged.parent_id if merged.parent_id != survivor.pk else None
            survivor.bill_to_parent = survivor.bill_to_parent and survivor.parent_id is not None
        if survivor.referred_by_id == survivor.pk:
            survivor.referred_by_id = None
        survivor.custom = {**merged.custom, **survivor.custom}
        survivor.custom_search = customfields.search_text(survivor.custom)
        survivor.version += 1
        survivor.save()
        # The merged client keeps its own details for the record, under the survivor's owner,
        # so its notes and history are seen by whoever sees the survivor.
        merged.merged_into = survivor
        merged.owner_id, merged.org_unit_id = survivor.owner_id, survivor.org_unit_id
        merged.parent_id, merged.bill_to_parent = None, False
        merged.status, merged.status_since = Client.Status.CLOSED, clock.today()
        merged.version += 1
        merged.save()
        for hook in MERGE_HOOKS:
            hook(survivor, merged, by)
        audit_update(survivor, survivor_before, by=by)
        audit_update(merged, merged_before, by=by)
        record_event(
            "client.merged_away",
            by=by,
            client=merged,
            subject=survivor,
            reference=survivor.number,
            details={"other": f"{survivor.number} {survivor.name}"},
        )
        record_event(
            "client.merged_in",
            by=by,
            client=survivor,
            subject=merged,
            reference=merged.number,
            details={"other": f"{merged.number} {merged.name}"},
        )
    return survivor


def client_delete(*, client: Client, reason: str, by: User) -> Client:
    """Take a client out of the base for good; its history stays, its email is freed.

    Refused while member companies belong to it or another module objects (e.g. unpaid
    invoices). Pending deferred actions are cancelled.
    """
    reason = reason.strip()
    if not reason:
        raise ServiceError(_("Give a reason for deleting the client."), field="reason")
    with transaction.atomic():
        client = Client.objects.select_for_update().filter(pk=client.pk).first()
        if client is None:
            raise ServiceError(_("This client was merged or deleted meanwhile."))
        members = Client.objects.filter(parent=client).count()
        if members:
            raise ServiceError(
                ngettext(
                    "%(count)d member company belongs to this client; "
                    "move it to another parent first.",
                    "%(count)d member companies belong to this client; "
                    "move them to another parent first.",
                    members,
                )
                % {"count": members}
            )
        for check in DELETE_CHECKS:
            if refusal := check(client):
                raise ServiceError(refusal)
        before = snapshot(client)
        for action in DeferredAction.objects.filter(
            client=client, state=DeferredAction.State.PENDING
        ):
            action.delete()
        client.deleted_at = clock.now()
        client.status = Client.Status.CLOSED
        client.status_since = client.status_since or clock.today()
        client.version += 1
        client.save()
        audit_update(client, before, by=by)
        record_event(
            "client.deleted",
            by=by,
            client=client,
            subject=client,
            reference=client.number,
            details={"reason": reason},
        )
    return client


def normalized_for_duplicates(field: str, value: str, *, country: str = "", kind: str = "") -> str:
    """A value being typed, as it would be saved, or "" while it is not valid yet."""
    country = country.strip().upper()
    try:
        if field == "email":
            return normalize_email(value)
        if field == "phone":
            return normalize_phone(value, country=country if country in countries else "")
        if field == "tax_id":
            kind = kind if kind in Client.Kind.values else Client.Kind.COMPANY
            return normalize_tax_id(
                value, country=country if country in countries else "", kind=kind
            )
        if field == "national_id":
            return value.strip()
    except (ValidationError, ValueError):
        return ""
    return ""
