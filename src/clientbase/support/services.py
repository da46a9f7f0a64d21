"""Every change to a ticket, department, article, rating or survey goes through here."""

import datetime as dt
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from clientbase.accounts.models import User
from clientbase.clients.models import Client, Contact
from clientbase.clients.services import note_add
from clientbase.core import clock
from clientbase.core.audit import (
    audit_create,
    audit_delete,
    audit_update,
    is_empty,
    new_audit_entry,
    snapshot,
)
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.events import new_event, record_event, record_events, register_event_type
from clientbase.core.models import AuditAction, AuditEntry, Event, EventCategory, NumberSeries
from clientbase.core.numbering import next_number, register_series, reserve_numbers
from clientbase.core.visibility import visible
from clientbase.support.models import (
    Attachment,
    Department,
    KbArticle,
    KbCategory,
    Priority,
    ReplyTemplate,
    Survey,
    SurveyAnswer,
    SurveyInvitation,
    SurveyQuestion,
    Ticket,
    TicketMessage,
    TicketRating,
)

register_series("ticket", prefix="", padding=6)

SUBJECT_MAX = 300
BODY_MAX = 200_000
MAX_CC = 20

_STATUS_WORDS = {"status": lambda d: {"status": str(Ticket.Status(d["status"]).label)}}
for code, message in [
    ("ticket.opened", gettext_lazy("Ticket #%(reference)s opened: %(subject)s")),
    ("ticket.customer_reply", gettext_lazy("Customer wrote in ticket #%(reference)s")),
    ("ticket.replied", gettext_lazy("Reply sent in ticket #%(reference)s")),
    ("ticket.noted", gettext_lazy("Internal note in ticket #%(reference)s")),
    ("ticket.assigned", gettext_lazy("Ticket #%(reference)s assigned to %(assignee)s")),
    (
        "ticket.transferred",
        gettext_lazy("Ticket #%(reference)s moved from %(from)s to %(to)s"),
    ),
    ("ticket.closed", gettext_lazy("Ticket #%(reference)s closed")),
    ("ticket.reopened", gettext_lazy("Ticket #%(reference)s reopened")),
    ("ticket.changed", gettext_lazy("Ticket #%(reference)s changed")),
    ("ticket.merged", gettext_lazy("Ticket #%(merged)s merged into #%(reference)s")),
    ("ticket.escalated", gettext_lazy("Ticket #%(reference)s overdue: escalated")),
    ("ticket.rated", gettext_lazy("Ticket #%(reference)s rated %(score)s of 5")),
    ("survey.answered", gettext_lazy("Survey answered: %(title)s")),
]:
    register_event_type(code, EventCategory.SUPPORT, message)
register_event_type(
    "ticket.status",
    EventCategory.SUPPORT,
    gettext_lazy("Ticket #%(reference)s is now %(status)s"),
    words=_STATUS_WORDS["status"],
)


@dataclass(frozen=True)
class NewAttachment:
    """A file to attach to a message: its name as sent, its type and its bytes."""

    name: str
    content_type: str
    content: bytes


# --- helpers --------------------------------------------------------------------------------


def _text(value: str, field: str, label: str, max_length: int) -> str:
    value = (value or "").replace("\x00", "").strip()
    if not value:
        raise ServiceError(_("%(field)s cannot be empty.") % {"field": label}, field=field)
    if len(value) > max_length:
        raise ServiceError(
            _("%(field)s can hold at most %(max)d characters.")
            % {"field": label, "max": max_length},
            field=field,
        )
    return value


def _subject(value: str) -> str:
    # A subject is one line: folded mail headers must not smuggle a second one.
    value = " ".join((value or "").split())
    return _text(value, "subject", _("The subject"), SUBJECT_MAX)


def _body(value: str) -> str:
    return _text(value, "body", _("The message"), BODY_MAX)


def clean_emails(values: Iterable[str] | str, field: str = "cc") -> list[str]:
    """Addresses from a list or a comma-separated text, lower-cased, checked and deduplicated."""
    if isinstance(values, str):
        values = values.replace(";", ",").replace("\n", ",").split(",")
    cleaned: list[str] = []
    for value in values:
        address = (value or "").strip().lower()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            raise ServiceError(
                _("%(address)s is not an email address.") % {"address": address[:100]},
                field=field,
            ) from None
        if address not in cleaned:
            cleaned.append(address)
    if len(cleaned) > MAX_CC:
        raise ServiceError(_("At most %(max)d addresses.") % {"max": MAX_CC}, field=field)
    return cleaned


def response_deadline(department: Department, priority: str, since: dt.datetime) -> dt.datetime:
    """When the customer must have our answer, counted from their message."""
    return since + dt.timedelta(minutes=department.response_minutes(priority))


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _event(code: str, ticket: Ticket, by, **details) -> None:
    _ticket_event(code, ticket, by, **details).save()


def _ticket_event(code: str, ticket: Ticket, by, **details) -> Event:
    return new_event(
        code,
        by=by,
        client=ticket.client,
        subject=ticket,
        reference=ticket.number,
        details={"subject": ticket.subject, **details},
    )


def _touch(ticket: Ticket, *fields: str) -> None:
    ticket.last_activity_at = clock.now()
    ticket.version += 1
    ticket.save(update_fields=["last_activity_at", "version", *fields])


def _check_version(ticket: Ticket, version: int | None) -> None:
    if version is not None and version != ticket.version:
        raise ConflictError(
            _("Somebody else changed ticket #%(number)s meanwhile; reload it and try again.")
            % {"number": ticket.number}
        )


def _not_merged(ticket: Ticket) -> None:
    if ticket.merged_into_id is not None:
        raise ServiceError(
            _("This ticket was merged into #%(number)s; work there.")
            % {"number": ticket.merged_into.number}
        )


def _message_id() -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ") or "localhost"
    from email.utils import make_msgid

    return make_msgid(domain=domain)


def _store_attachments(message: TicketMessage, files: Sequence[NewAttachment]) -> None:
    from clientbase.support.mailparse import store_attachment

    for file in files:
        store_attachment(message, file.name, file.content_type, file.content)


def _queue_send(message: TicketMessage) -> None:
    from clientbase.support.tasks import send_ticket_mail

    transaction.on_commit(lambda: send_ticket_mail.enqueue(message.pk), robust=True)


def _staff_mail(ticket: Ticket, body: str, *, by, cc: list[str], auto: bool) -> TicketMessage:
    """A message we send to the customer; mailed by a task once the transaction commits."""
    last_received = (
        ticket.messages.filter(kind=TicketMessage.Kind.CUSTOMER).exclude(message_id="").last()
    )
    message = _staff_message(
        ticket,
        body,
        by=by,
        cc=cc,
        auto=auto,
        in_reply_to=last_received.message_id if last_received else "",
    )
    message.save()
    _queue_send(message)
    return message


def _staff_message(
    ticket: Ticket, body: str, *, by, cc: list[str], auto: bool, in_reply_to: str
) -> TicketMessage:
    return TicketMessage(
        ticket=ticket,
        kind=TicketMessage.Kind.REPLY,
        author=by if getattr(by, "pk", None) else None,
        from_email=ticket.department.email,
        to=[ticket.email],
        cc=cc,
        body=body,
        message_id=_message_id(),
        in_reply_to=in_reply_to,
        auto_generated=auto,
    )


def _queue_sends(message_ids: list[int]) -> None:
    from clientbase.support.tasks import send_ticket_mail

    # One transaction for them all: the database task backend writes a row a task, and a
    # commit each would cost more than the mail filed (the retry job sends what is missed).
    with transaction.atomic():
        for pk in message_ids:
            send_ticket_mail.enqueue(pk)


def client_of(email: str) -> tuple[Client | None, Contact | None]:
    """The client (and contact) an address belongs to, if exactly one live client has it."""
    email = email.strip().lower()
    if not email:
        return None, None
    # LOWER(email) is what the unique index holds; iexact (LIKE, UPPER) would scan the table.
    clients = list(
        Client.objects.annotate(email_key=Lower("email")).filter(email_key=email).order_by("id")[:2]
    )
    if len(clients) == 1:
        return clients[0], None
    contacts = list(
        Contact.objects.filter(
            email__iexact=email, client__merged_into=None, client__deleted_at=None
        ).select_related("client")[:2]
    )
    if len(contacts) == 1:
        return contacts[0].client, contacts[0]
    return None, None


def clients_of(emails: Iterable[str]) -> dict[str, tuple[Client | None, Contact | None]]:
    """`client_of` for many addresses at once (mail intake): two queries for them all."""
    wanted = {e.strip().lower() for e in emails if e and e.strip()}
    found: dict[str, tuple[Client | None, Contact | None]] = dict.fromkeys(wanted, (None, None))
    if not wanted:
        return found
    by_email: dict[str, list[Client]] = {}
    for client in (
        Client.objects.annotate(email_key=Lower("email"))
        .filter(email_key__in=wanted)
        .order_by("id")
    ):
        by_email.setdefault(client.email_key, []).append(client)
    for email, clients in by_email.items():
        if len(clients) == 1:
            found[email] = (clients[0], None)
    rest = [e for e in wanted if len(by_email.get(e, ())) != 1]
    if rest:
        contacts: dict[str, list[Contact]] = {}
        for contact in (
            Contact.objects.annotate(email_key=Lower("email"))
            .filter(email_key__in=rest, client__merged_into=None, client__deleted_at=None)
            .select_related("client")
        ):
            contacts.setdefault(contact.email_key, []).append(contact)
        for email, matches in contacts.items():
            if len(matches) == 1:
                found[email] = (matches[0].client, matches[0])
    return found


# --- tickets --------------------------------------------------------------------------------


@dataclass
class _Opening:
    """A new ticket's checked input."""

    subject: str
    body: str
    cc: list[str]
    client: Client | None
    contact: Contact | None
    email: str
    name: str


def _opening(
    *,
    department: Department,
    subject: str,
    body: str,
    client: Client | None,
    contact: Contact | None,
    email: str,
    name: str,
    priority: str,
    cc: Iterable[str],
    message_fields: dict | None,
    known_clients: dict[str, tuple[Client | None, Contact | None]] | None = None,
) -> _Opening:
    subject = _subject(subject)
    body = _body(body) if not message_fields else (body or "")
    cc = clean_emails(cc)
    if priority not in Priority.values:
        raise ServiceError(_("Choose a priority."), field="priority")
    if not department.active:
        raise ServiceError(_("This department is closed."), field="department")
    if contact is not None and client is not None and contact.client_id != client.pk:
        raise ServiceError(_("This contact belongs to another client."), field="contact")
    if client is not None and not client.is_live:
        raise ServiceError(_("This client is no longer in the base."), field="client")
    email = (
        email or (contact.email if contact else "") or (client.email if client else "")
    ).strip()
    if not email:
        raise ServiceError(_("Give the email address to answer to."), field="email")
    email = clean_emails([email], field="email")[0]
    if client is None:
        if known_clients is not None and email in known_clients:
            client, found_contact = known_clients[email]
        else:
            client, found_contact = client_of(email)
        contact = contact or found_contact
    name = " ".join((name or "").split())[:200] or (
        str(contact) if contact else (client.name if client else "")
    )
    return _Opening(subject, body, cc, client, contact, email, name)


def _new_ticket(
    opening: _Opening,
    *,
    number: str,
    department: Department,
    priority: str,
    assignee: User | None,
    source: str,
    from_customer: bool,
    is_complaint: bool,
    now: dt.datetime,
) -> Ticket:
    client = opening.client
    return Ticket(
        number=number,
        client=client,
        contact=opening.contact,
        email=opening.email,
        name=opening.name,
        department=department,
        subject=opening.subject,
        subject_search=opening.subject.lower(),
        priority=priority,
        status=Ticket.Status.OPEN if from_customer else Ticket.Status.ANSWERED,
        owner=assignee,
        org_unit_id=client.org_unit_id if client else department.org_unit_id,
        cc=opening.cc,
        is_complaint=is_complaint,
        source=source,
        created_at=now,
        last_activity_at=now,
        due_at=response_deadline(department, priority, now) if from_customer else None,
        access_key=secrets.token_urlsafe(24),
    )


def _customer_message(
    ticket: Ticket, *, email: str, name: str, body: str, now, message_fields: dict | None
) -> TicketMessage:
    return TicketMessage(
        ticket=ticket,
        kind=TicketMessage.Kind.CUSTOMER,
        from_email=email,
        from_name=name,
        body=body,
        created_at=now,
        **(message_fields or {}),
    )


def _created_entry(obj, by) -> AuditEntry:
    """The unsaved entry `audit_create` writes, for writers that save history in bulk."""
    changes = {k: {"before": None, "after": v} for k, v in snapshot(obj).items() if not is_empty(v)}
    return new_audit_entry(obj, AuditAction.CREATE, changes, by)


def ticket_open(
    *,
    by: User | None,
    department: Department,
    subject: str,
    body: str,
    client: Client | None = None,
    contact: Contact | None = None,
    email: str = "",
    name: str = "",
    priority: str = Priority.MEDIUM,
    cc: Iterable[str] = (),
    assignee: User | None = None,
    source: str = Ticket.Source.STAFF,
    from_customer: bool = False,
    is_complaint: bool = False,
    attachments: Sequence[NewAttachment] = (),
    message_fields: dict | None = None,
) -> Ticket:
    """Open a ticket with its first message.

    Staff opening a ticket write to the customer (the message is emailed); a ticket that
    comes from the customer (mail, a form through the API) waits for our answer instead.
    """
    opening = _opening(
        department=department,
        subject=subject,
        body=body,
        client=client,
        contact=contact,
        email=email,
        name=name,
        priority=priority,
        cc=cc,
        message_fields=message_fields,
    )
    now = clock.now()
    with transaction.atomic():
        ticket = _new_ticket(
            opening,
            number=next_number("ticket").text,
            department=department,
            priority=priority,
            assignee=assignee,
            source=source,
            from_customer=from_customer,
            is_complaint=is_complaint,
            now=now,
        )
        ticket.save(force_insert=True)
        if from_customer:
            message = _customer_message(
                ticket,
                email=opening.email,
                name=opening.name,
                body=opening.body,
                now=now,
                message_fields=message_fields,
            )
            message.save(force_insert=True)
        else:
            message = _staff_mail(ticket, opening.body, by=by, cc=opening.cc, auto=False)
        _store_attachments(message, attachments)
        audit_create(ticket, by=by)
        _event("ticket.opened", ticket, by)
    return ticket


def _customer_wrote(ticket: Ticket, now: dt.datetime) -> bool:
    """A ticket waiting for our answer again; whether it was closed (and so reopens)."""
    reopened = ticket.status == Ticket.Status.CLOSED
    if ticket.due_at is None:
        ticket.due_at = response_deadline(ticket.department, ticket.priority, now)
        ticket.escalated_at = None
    ticket.status = Ticket.Status.CUSTOMER_REPLY
    ticket.closed_at = None
    ticket.closed_by = None
    _touch(ticket, "status", "due_at", "escalated_at", "closed_at", "closed_by")
    return reopened


def customer_message_add(
    *,
    ticket: Ticket,
    body: str,
    from_email: str,
    from_name: str = "",
    attachments: Sequence[NewAttachment] = (),
    message_fields: dict | None = None,
) -> TicketMessage:
    """Add the customer's message to a ticket; a closed ticket opens again (SUP-2)."""
    with transaction.atomic():
        ticket = _locked(ticket)
        if ticket.merged_into_id is not None:
            ticket = _locked(ticket.merged_into)
        now = clock.now()
        message = _customer_message(
            ticket,
            email=from_email,
            name=from_name,
            body=body,
            now=now,
            message_fields=message_fields,
        )
        message.save(force_insert=True)
        _store_attachments(message, attachments)
        reopened = _customer_wrote(ticket, now)
        _event("ticket.customer_reply", ticket, None)
        if reopened:
            _event("ticket.reopened", ticket, None)
    return message


class MailBatch:
    """Customer mail filed many at a time in one transaction (SUP-2, intake's batch path).

    `ticket_open` and `message_add` file one mail each as ticket_open(from_customer=True)
    and customer_message_add do, with the same rows and the same history, but ticket
    numbers come from the series row locked once, locked tickets are kept, and the messages,
    their attachments, audit entries, events and the mail to send wait for `finish`, which
    writes them in bulk (a message has no id until then). When the caller files each mail in
    a savepoint, `undo(mark())` forgets what one that was rolled back left here.
    """

    def __init__(self) -> None:
        self.audits: list[AuditEntry] = []
        self.events: list[Event] = []
        self.messages: list[TicketMessage] = []
        self.attachments: list[Attachment] = []
        self.known_clients: dict[str, tuple[Client | None, Contact | None]] = {}
        self._tickets: dict[int, Ticket] = {}
        self._touched: set[int] = set()
        self._series: NumberSeries | None = None
        self._next = 0

    def reserve_numbers(self) -> None:
        """Lock the ticket number series for the batch; outside any mail's savepoint, as a
        lock taken in a savepoint that is rolled back is let go on PostgreSQL."""
        if self._series is None:
            first = reserve_numbers("ticket", 1)[0].value  # creates the series if need be
            self._series = NumberSeries.objects.get(key="ticket")
            self._next = first

    def lock(self, ticket_ids: Iterable[int]) -> dict[int, Ticket]:
        """Lock tickets mail will be added to, in id order (no deadlock between batches)."""
        wanted = sorted(set(ticket_ids) - set(self._tickets))
        while wanted:
            locked = list(
                Ticket.objects.select_for_update(of=("self",))
                .select_related("client", "department")
                .filter(pk__in=wanted)
                .order_by("pk")
            )
            self._tickets.update((t.pk, t) for t in locked)
            # Mail to a merged ticket goes to the one it was merged into: lock that too.
            wanted = sorted(
                {t.merged_into_id for t in locked if t.merged_into_id} - set(self._tickets)
            )
        return self._tickets

    def ticket(self, ticket_id: int) -> Ticket:
        """A ticket of the batch, locked."""
        return self._tickets.get(ticket_id) or self.lock([ticket_id])[ticket_id]

    def mark(self) -> tuple:
        """Where the batch stands before a mail, for `undo`."""
        self._touched = set()
        return (
            len(self.audits),
            len(self.events),
            len(self.attachments),
            len(self.messages),
            self._next,
            self._series,
        )

    def undo(self, mark: tuple) -> None:
        """Forget what a mail rolled back to its savepoint left behind."""
        # A series first locked by the mail was let go with its savepoint: lock it again.
        audits, events, attachments, messages, self._next, self._series = mark
        del self.audits[audits:], self.events[events:]
        del self.attachments[attachments:], self.messages[messages:]
        for pk in self._touched:
            self._tickets.pop(pk, None)  # read again, as the database has it now

    def _number(self) -> str:
        self.reserve_numbers()
        series = self._series
        value, self._next = self._next, self._next + 1
        return f"{series.prefix}{value:0{series.padding}d}"

    def ticket_open(
        self,
        *,
        department: Department,
        subject: str,
        body: str,
        email: str,
        name: str,
        cc: Iterable[str],
        attachments: Sequence[NewAttachment],
        message_fields: dict,
    ) -> tuple[Ticket, TicketMessage]:
        """Open a ticket from a customer's mail: ticket_open(from_customer=True, by=None).

        Everything is checked before anything is written: a ServiceError leaves no trace.
        """
        opening = _opening(
            department=department,
            subject=subject,
            body=body,
            client=None,
            contact=None,
            email=email,
            name=name,
            priority=Priority.MEDIUM,
            cc=cc,
            message_fields=message_fields,
            known_clients=self.known_clients,
        )
        now = clock.now()
        ticket = _new_ticket(
            opening,
            number=self._number(),
            department=department,
            priority=Priority.MEDIUM,
            assignee=None,
            source=Ticket.Source.EMAIL,
            from_customer=True,
            is_complaint=False,
            now=now,
        )
        ticket.save(force_insert=True)
        self._tickets[ticket.pk] = ticket
        self._touched.add(ticket.pk)
        message = _customer_message(
            ticket,
            email=opening.email,
            name=opening.name,
            body=opening.body,
            now=now,
            message_fields=message_fields,
        )
        self.messages.append(message)
        self._attach(message, attachments)
        self.audits.append(_created_entry(ticket, None))
        self.events.append(_ticket_event("ticket.opened", ticket, None))
        return ticket, message

    def message_add(
        self,
        *,
        ticket: Ticket,
        body: str,
        from_email: str,
        from_name: str,
        attachments: Sequence[NewAttachment],
        message_fields: dict,
    ) -> TicketMessage:
        """Add a customer's mail to a ticket, as customer_message_add does."""
        ticket = self.ticket(ticket.pk)
        if ticket.merged_into_id is not None:
            ticket = self.ticket(ticket.merged_into_id)
        self._touched.add(ticket.pk)
        now = clock.now()
        message = _customer_message(
            ticket,
            email=from_email,
            name=from_name,
            body=body,
            now=now,
            message_fields=message_fields,
        )
        self.messages.append(message)
        self._attach(message, attachments)
        reopened = _customer_wrote(ticket, now)
        self.events.append(_ticket_event("ticket.customer_reply", ticket, None))
        if reopened:
            self.events.append(_ticket_event("ticket.reopened", ticket, None))
        return message

    def acknowledge(self, ticket: Ticket, received: TicketMessage) -> TicketMessage:
        """The automatic answer to a new ticket, as ticket_acknowledge writes it."""
        from clientbase.support.mail import acknowledgement_text

        message = _staff_message(
            ticket,
            acknowledgement_text(ticket),
            by=None,
            cc=[],
            auto=True,
            in_reply_to=received.message_id,
        )
        self.messages.append(message)
        return message

    def _attach(self, message: TicketMessage, files: Sequence[NewAttachment]) -> None:
        from clientbase.support.mailparse import new_attachment

        for file in files:
            self.attachments.append(
                new_attachment(message, file.name, file.content_type, file.content)
            )

    def finish(self) -> None:
        """Write what waited: the series, messages, attachments, audit and events; the
        mail goes to the task queue once the caller's transaction commits."""
        if self._series is not None:
            NumberSeries.objects.filter(pk=self._series.pk).update(next_value=self._next)
        TicketMessage.objects.bulk_create(self.messages, batch_size=500)
        Attachment.objects.bulk_create(self.attachments, batch_size=500)
        AuditEntry.objects.bulk_create(self.audits, batch_size=500)
        record_events(self.events)
        pks = [m.pk for m in self.messages if m.kind == TicketMessage.Kind.REPLY]
        if pks:
            transaction.on_commit(lambda: _queue_sends(pks), robust=True)


def ticket_reply(
    *,
    by: User,
    ticket: Ticket,
    body: str,
    cc: Iterable[str] | None = None,
    status: str = Ticket.Status.ANSWERED,
    attachments: Sequence[NewAttachment] = (),
    version: int | None = None,
) -> TicketMessage:
    """Answer the customer: the reply is emailed to them and the CC once this commits."""
    body = _body(body)
    if status not in (
        Ticket.Status.ANSWERED,
        Ticket.Status.ON_HOLD,
        Ticket.Status.IN_PROGRESS,
        Ticket.Status.CLOSED,
    ):
        raise ServiceError(_("Choose the status the ticket takes."), field="status")
    with transaction.atomic():
        ticket = _locked(ticket)
        _not_merged(ticket)
        _check_version(ticket, version)
        if cc is not None:
            ticket.cc = clean_emails(cc)
        message = _staff_mail(ticket, body, by=by, cc=ticket.cc, auto=False)
        _store_attachments(message, attachments)
        if ticket.owner_id is None:
            # The first to answer takes the ticket: it lands in their queue.
            ticket.owner = by
        ticket.status = Ticket.Status.ANSWERED
        ticket.due_at = None
        ticket.escalated_at = None
        _touch(ticket, "cc", "owner", "status", "due_at", "escalated_at")
        _event("ticket.replied", ticket, by)
    if status == Ticket.Status.CLOSED:
        ticket_close(by=by, ticket=ticket)
    elif status != Ticket.Status.ANSWERED:
        ticket_set_status(by=by, ticket=ticket, status=status)
    return message


def ticket_acknowledge(*, ticket: Ticket) -> TicketMessage:
    """Tell the customer their mail became a ticket, with its number (automatic mail)."""
    from clientbase.support.mail import acknowledgement_text

    with transaction.atomic():
        return _staff_mail(ticket, acknowledgement_text(ticket), by=None, cc=[], auto=True)


def ticket_note(*, by: User, ticket: Ticket, body: str) -> TicketMessage:
    """Write an internal note for colleagues: never emailed, never shown to the customer."""
    body = _body(body)
    with transaction.atomic():
        ticket = _locked(ticket)
        _not_merged(ticket)
        note = TicketMessage.objects.create(
            ticket=ticket, kind=TicketMessage.Kind.NOTE, author=by, body=body
        )
        _touch(ticket)
        _event("ticket.noted", ticket, by)
    return note


def ticket_assign(*, by: User, ticket: Ticket, assignee: User | None, note: str = "") -> Ticket:
    """Give a ticket to a person (or nobody), with an optional note for them."""
    if assignee is not None and not assignee.is_active:
        raise ServiceError(_("This user cannot sign in any more."), field="assignee")
    with transaction.atomic():
        ticket = _locked(ticket)
        _not_merged(ticket)
        before = snapshot(ticket)
        ticket.owner = assignee
        _touch(ticket, "owner")
        audit_update(ticket, before, by=by)
        _event(
            "ticket.assigned",
            ticket,
            by,
            assignee=assignee.display_name if assignee else _("nobody"),
        )
        if note.strip():
            TicketMessage.objects.create(
                ticket=ticket, kind=TicketMessage.Kind.NOTE, author=by, body=_body(note)
            )
    return ticket


def ticket_transfer(
    *,
    by: User,
    ticket: Ticket,
    department: Department,
    assignee: User | None = None,
    note: str = "",
) -> Ticket:
    """Move a ticket to another department (and person); the deadline follows its rules."""
    if not department.active:
        raise ServiceError(_("This department is closed."), field="department")
    with transaction.atomic():
        ticket = _locked(ticket)
        _not_merged(ticket)
        before = snapshot(ticket)
        moved_from = ticket.department.name
        ticket.department = department
        ticket.owner = assignee
        if ticket.client_id is None:
            ticket.org_unit_id = department.org_unit_id
        if ticket.due_at is not None:
            waiting_since = _waiting_since(ticket)
            ticket.due_at = response_deadline(department, ticket.priority, waiting_since)
        _touch(ticket, "department", "owner", "org_unit", "due_at")
        audit_update(ticket, before, by=by)
        _event("ticket.transferred", ticket, by, **{"from": moved_from, "to": department.name})
        if note.strip():
            TicketMessage.objects.create(
                ticket=ticket, kind=TicketMessage.Kind.NOTE, author=by, body=_body(note)
            )
    return ticket


def _waiting_since(ticket: Ticket) -> dt.datetime:
    """When the customer's unanswered message came: the start of the response deadline."""
    answered = (
        ticket.messages.filter(kind=TicketMessage.Kind.REPLY, auto_generated=False)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    waiting = ticket.messages.filter(kind=TicketMessage.Kind.CUSTOMER)
    if answered is not None:
        waiting = waiting.filter(created_at__gt=answered)
    first = waiting.order_by("created_at").values_list("created_at", flat=True).first()
    return first or ticket.created_at


def ticket_update(
    *,
    by: User,
    ticket: Ticket,
    priority: str | None = None,
    cc: Iterable[str] | None = None,
    is_complaint: bool | None = None,
    subject: str | None = None,
    version: int | None = None,
) -> Ticket:
    """Change a ticket's priority, CC, complaint flag or subject."""
    if priority is not None and priority not in Priority.values:
        raise ServiceError(_("Choose a priority."), field="priority")
    with transaction.atomic():
        ticket = _locked(ticket)
        _not_merged(ticket)
        _check_version(ticket, version)
        before = snapshot(ticket)
        if priority is not None and priority != ticket.priority:
            ticket.priority = priority
            if ticket.due_at is not None:
                ticket.due_at = response_deadline(
                    ticket.department, priority, _waiting_since(ticket)
                )
        if cc is not None:
            ticket.cc = clean_emails(cc)
        if is_complaint is not None:
            ticket.is_complaint = is_complaint
        if subject is not None:
            ticket.subject = _subject(subject)
            ticket.subject_search = ticket.subject.lower()
        _touch(ticket, "priority", "due_at", "cc", "is_complaint", "subject", "subject_search")
        if audit_update(ticket, before, by=by) is not None:
            _event("ticket.changed", ticket, by)
    return ticket


def ticket_set_status(*, by: User, ticket: Ticket, status: str) -> Ticket:
    """Put a ticket on hold, in progress, or back to open or answered; closing is its own."""
    settable = {
        Ticket.Status.OPEN,
        Ticket.Status.ANSWERED,
        Ticket.Status.ON_HOLD,
        Ticket.Status.IN_PROGRESS,
        Ticket.Status.CUSTOMER_REPLY,
    }
    if status not in settable:
        raise ServiceError(_("Choose a status."), field="status")
    with transaction.atomic():
        ticket = _locked(ticket)
        _not_merged(ticket)
        if ticket.status == Ticket.Status.CLOSED:
            raise ServiceError(_("Reopen the ticket first."), field="status")
        if status == ticket.status:
            return ticket
        before = snapshot(ticket)
        ticket.status = status
        if status in Ticket.AWAITING and ticket.due_at is None:
            ticket.due_at = response_deadline(ticket.department, ticket.priority, clock.now())
        elif status not in Ticket.AWAITING:
            # On hold or answered: the customer does not wait for us now.
            ticket.due_at = None
            ticket.escalated_at = None
        _touch(ticket, "status", "due_at", "escalated_at")
        audit_update(ticket, before, by=by)
        _event("ticket.status", ticket, by, status=status)
    return ticket


def ticket_close(*, by: User | None, ticket: Ticket, notify: bool = True) -> Ticket:
    """Close a ticket; the customer gets a closing mail with a link to rate the answer."""
    with transaction.atomic():
        ticket = _locked(ticket)
        _not_merged(ticket)
        if ticket.status == Ticket.Status.CLOSED:
            raise ServiceError(_("The ticket is already closed."), field="status")
        before = snapshot(ticket)
        ticket.status = Ticket.Status.CLOSED
        ticket.closed_at = clock.now()
        ticket.closed_by = by if getattr(by, "pk", None) else None
        ticket.due_at = None
        ticket.escalated_at = None
        _touch(ticket, "status", "closed_at", "closed_by", "due_at", "escalated_at")
        audit_update(ticket, before, by=by)
        _event("ticket.closed", ticket, by)
        if notify:
            from clientbase.support.mail import closing_text

            _staff_mail(ticket, closing_text(ticket), by=None, cc=ticket.cc, auto=True)
    return ticket


def ticket_reopen(*, by: User, ticket: Ticket) -> Ticket:
    """Open a closed ticket again; it waits for our answer."""
    with transaction.atomic():
        ticket = _locked(ticket)
        _not_merged(ticket)
        if ticket.status != Ticket.Status.CLOSED:
            raise ServiceError(_("Only a closed ticket can be reopened."), field="status")
        before = snapshot(ticket)
        ticket.status = Ticket.Status.OPEN
        ticket.closed_at = None
        ticket.closed_by = None
        ticket.due_at = response_deadline(ticket.department, ticket.priority, clock.now())
        _touch(ticket, "status", "closed_at", "closed_by", "due_at")
        audit_update(ticket, before, by=by)
        _event("ticket.reopened", ticket, by)
    return ticket


def ticket_merge(*, by: User, source: Ticket, target: Ticket) -> Ticket:
    """Fold one ticket into another: its messages move, it stays as a closed pointer."""
    if source.pk == target.pk:
        raise ServiceError(_("A ticket cannot be merged into itself."), field="target")
    with transaction.atomic():
        # Lock both in id order, so two merges of the same pair cannot deadlock.
        first, second = sorted([source.pk, target.pk])
        locked = {
            t.pk: t for t in Ticket.objects.select_for_update().filter(pk__in=[first, second])
        }
        source, target = locked[source.pk], locked[target.pk]
        _not_merged(source)
        _not_merged(target)
        if source.client_id and target.client_id and source.client_id != target.client_id:
            raise ServiceError(_("Both tickets must be of the same client."), field="target")
        TicketMessage.objects.filter(ticket=source).update(ticket=target)
        target.cc = clean_emails([*target.cc, *source.cc, source.email])
        if target.email in target.cc:
            target.cc.remove(target.email)
        if source.due_at is not None and (target.due_at is None or source.due_at < target.due_at):
            target.due_at = source.due_at
            if target.status not in Ticket.AWAITING:
                target.status = Ticket.Status.CUSTOMER_REPLY
        target.is_complaint = target.is_complaint or source.is_complaint
        if target.client_id is None and source.client_id is not None:
            target.client_id = source.client_id
            target.org_unit_id = source.org_unit_id
        _touch(target, "cc", "due_at", "status", "is_complaint", "client", "org_unit")
        source.merged_into = target
        source.status = Ticket.Status.CLOSED
        source.closed_at = clock.now()
        source.closed_by = by
        source.due_at = None
        _touch(source, "merged_into", "status", "closed_at", "closed_by", "due_at")
        _event("ticket.merged", target, by, merged=source.number)
        if source.client_id != target.client_id:
            _event("ticket.merged", source, by, merged=source.number)
    return target


def tickets_escalate(now: dt.datetime | None = None) -> int:
    """Escalate the tickets past their response deadline, once each (SUP-4)."""
    now = now or clock.now()
    escalated = 0
    overdue = Ticket.objects.filter(
        due_at__lt=now, escalated_at=None, merged_into=None, status__in=Ticket.AWAITING
    ).values_list("pk", flat=True)
    for ticket_id in list(overdue[:5000]):
        with transaction.atomic():
            ticket = (
                # Only the ticket row: PostgreSQL cannot lock the outer-joined (nullable)
                # escalation contact, and nothing else changes here.
                Ticket.objects.select_for_update(of=("self",))
                .select_related("department", "department__escalate_to")
                .filter(pk=ticket_id, escalated_at=None, due_at__lt=now)
                .first()
            )
            if ticket is None:
                continue
            department = ticket.department
            contact = department.escalate_to
            fields = ["escalated_at"]
            if department.escalation == Department.Escalation.REASSIGN and contact is not None:
                ticket.owner = contact
                fields.append("owner")
            ticket.escalated_at = now
            _touch(ticket, *fields)
            _event("ticket.escalated", ticket, None)
            if department.escalation == Department.Escalation.NOTIFY and contact is not None:
                from clientbase.support.tasks import notify_escalation

                transaction.on_commit(
                    lambda pk=ticket.pk, user=contact.pk: notify_escalation.enqueue(pk, user)
                )
            escalated += 1
    return escalated


def contact_change_note(*, by: User, message: TicketMessage) -> None:
    """Copy a contact change reported in a ticket into an important client note (ACT-1).

    The note keeps the details as they were before, so the old address is never lost
    when a clerk then types the new one into the client file.
    """
    ticket = message.ticket
    client = ticket.client
    if client is None:
        raise ServiceError(_("The ticket has no client to write the note on."))
    before = [
        f"{_('Email')}: {client.email}",
        f"{_('Phone')}: {client.phone or '—'}",
        f"{_('Address')}: {', '.join(p for p in [client.street, client.postcode, client.city, client.country] if p) or '—'}",
    ]
    text = (
        _("Contact change reported in ticket #%(number)s on %(day)s.")
        % {
            "number": ticket.number,
            "day": message.created_at.astimezone(clock.company_timezone()).date().isoformat(),
        }
        + "\n\n"
        + _("Details before the change:")
        + "\n"
        + "\n".join(before)
        + "\n\n"
        + _("The customer wrote:")
        + "\n"
        + (message.body.strip() or "—")[:4000]
    )
    note_add(client=client, body=text, important=True, by=by)


# --- reply templates --------------------------------------------------------------------------


TAGS = (
    "ticket_number",
    "ticket_subject",
    "department",
    "client_name",
    "client_number",
    "client_email",
    "agent_name",
    "company",
)


def merge_tags(ticket: Ticket, by: User | None) -> dict[str, str]:
    """The values a reply template may use, and nothing else."""
    client = ticket.client
    return {
        "ticket_number": ticket.number,
        "ticket_subject": ticket.subject,
        "department": ticket.department.name,
        "client_name": ticket.name or (client.name if client else ""),
        "client_number": client.number if client else "",
        "client_email": ticket.email,
        "agent_name": by.display_name if by else "",
        "company": getattr(settings, "COMPANY_NAME", "Clientbase"),
    }


def _substitute(text: str, tags: dict[str, str]) -> str:
    try:
        return string.Template(text).substitute(tags)
    except KeyError as unknown:
        raise ServiceError(
            _("Unknown tag $%(tag)s; the tags are: %(tags)s")
            % {"tag": unknown.args[0], "tags": ", ".join(f"${t}" for t in TAGS)},
            field="body",
        ) from None
    except ValueError:
        raise ServiceError(
            _("A $ must start a tag such as $client_name; write $$ for a dollar sign."),
            field="body",
        ) from None


def template_render(template: ReplyTemplate | str, ticket: Ticket, by: User | None) -> str:
    """A reply template with its $tags filled; an unknown tag is refused by name."""
    text = template.body if isinstance(template, ReplyTemplate) else template
    return _substitute(text, merge_tags(ticket, by))


def reply_template_save(
    *, by: User, template: ReplyTemplate | None = None, name: str, body: str, department=None
) -> ReplyTemplate:
    """Create or change a reply template, checking its tags against a sample ticket."""
    name = _text(name, "name", _("The name"), 100)
    body = _body(body)
    _substitute(body, dict.fromkeys(TAGS, ""))
    template = template or ReplyTemplate()
    before = snapshot(template) if template.pk else None
    template.name, template.body, template.department = name, body, department
    try:
        with transaction.atomic():
            template.save()
            if before is None:
                audit_create(template, by=by)
            else:
                audit_update(template, before, by=by)
    except IntegrityError:
        raise ServiceError(_("A template with this name exists."), field="name") from None
    return template


def reply_template_delete(*, by: User, template: ReplyTemplate) -> None:
    """Remove a reply template."""
    with transaction.atomic():
        audit_delete(template, by=by)
        template.delete()


# --- departments ------------------------------------------------------------------------------


DEPARTMENT_FIELDS = (
    "name",
    "email",
    "org_unit",
    "is_default",
    "position",
    "sla_low",
    "sla_medium",
    "sla_high",
    "sla_urgent",
    "escalation",
    "escalate_to",
    "imap_enabled",
    "imap_host",
    "imap_port",
    "imap_ssl",
    "imap_user",
    "imap_password",
    "imap_folder",
    "active",
)


def department_save(
    *, by: User | None, department: Department | None = None, **fields
) -> Department:
    """Create or change a department; one default at a time, addresses unique."""
    unknown = set(fields) - set(DEPARTMENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown department fields: {sorted(unknown)}")
    department = department or Department()
    before = snapshot(department) if department.pk else None
    if "imap_password" in fields and not fields["imap_password"] and department.pk:
        fields.pop("imap_password")  # an empty password field keeps the one stored
    for field, value in fields.items():
        setattr(department, field, value)
    department.name = " ".join((department.name or "").split())
    department.email = (department.email or "").strip().lower()
    errors = {}
    if not department.name:
        errors["name"] = [_("Give the department a name.")]
    try:
        validate_email(department.email)
    except ValidationError:
        errors["email"] = [_("Enter the support address, e.g. support@example.com.")]
    if department.org_unit_id is None:
        errors["org_unit"] = [_("Choose the unit that sees guests' tickets.")]
    if department.escalation != Department.Escalation.NONE and department.escalate_to_id is None:
        errors["escalate_to"] = [_("Choose who is told or takes over overdue tickets.")]
    if department.imap_enabled and not (department.imap_host and department.imap_user):
        errors["imap_host"] = [_("Give the IMAP server and user to poll the mailbox.")]
    if errors:
        raise ServiceError(errors=errors)
    with transaction.atomic():
        if department.is_default:
            Department.objects.exclude(pk=department.pk).filter(is_default=True).update(
                is_default=False
            )
        try:
            with transaction.atomic():
                department.save()
        except IntegrityError:
            raise ServiceError(
                _("Another department has this name or address."), field="email"
            ) from None
        if before is None:
            audit_create(department, by=by)
        else:
            audit_update(department, before, by=by)
    return department


def department_for_address(
    addresses: Iterable[str], departments: Sequence[Department] | None = None
) -> Department | None:
    """The department whose support address is among the recipients, else the default one.

    `departments`, all of them in their order, spares the queries when many mails ask.
    """
    wanted = [a.strip().lower() for a in addresses if a]
    if departments is not None:
        active = [d for d in departments if d.active]
        return (
            next((d for d in active if d.email in wanted), None)
            or next((d for d in active if d.is_default), None)
            or next(iter(active), None)
        )
    if wanted:
        found = Department.objects.filter(email__in=wanted, active=True).first()
        if found is not None:
            return found
    return (
        Department.objects.filter(is_default=True, active=True).first()
        or Department.objects.filter(active=True).first()
    )


# --- knowledge base ---------------------------------------------------------------------------


def _search_text(article: KbArticle) -> str:
    return " ".join([article.title, article.keywords, article.body]).lower()


def article_save(
    *,
    by: User,
    article: KbArticle | None = None,
    category,
    title: str,
    body: str,
    keywords: str = "",
    published: bool = True,
    source_ticket: Ticket | None = None,
) -> KbArticle:
    """Write or change a knowledge base article (SUP-6)."""
    title = _text(title, "title", _("The title"), 200)
    body = _text(body, "body", _("The text"), BODY_MAX)
    article = article or KbArticle(created_by=by, source_ticket=source_ticket)
    before = snapshot(article) if article.pk else None
    article.category = category
    article.title = title
    article.body = body
    article.keywords = " ".join((keywords or "").split())[:300]
    article.published = published
    article.updated_at = clock.now()
    article.search_text = _search_text(article)
    with transaction.atomic():
        article.save()
        if before is None:
            audit_create(article, by=by)
        else:
            audit_update(article, before, by=by)
    return article


def article_draft_from_ticket(ticket: Ticket) -> dict:
    """A first draft of an article from a resolved ticket: the question and our answers."""
    messages = list(
        ticket.messages.exclude(kind=TicketMessage.Kind.NOTE).filter(auto_generated=False)
    )
    question = next((m.body for m in messages if m.kind == TicketMessage.Kind.CUSTOMER), "")
    answers = [m.body for m in messages if m.kind == TicketMessage.Kind.REPLY]
    body = question.strip()
    if answers:
        body += "\n\n" + _("Answer") + ":\n\n" + "\n\n".join(a.strip() for a in answers)
    return {"title": ticket.subject, "body": body.strip(), "source_ticket": ticket}


def article_delete(*, by: User, article: KbArticle) -> None:
    """Remove an article."""
    with transaction.atomic():
        audit_delete(article, by=by)
        article.delete()


# --- feedback and surveys ---------------------------------------------------------------------


def ticket_rate(*, ticket: Ticket, score: int, comment: str = "") -> TicketRating:
    """Keep the customer's score of a closed ticket; a ticket is rated once (SUP-7)."""
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise ServiceError(_("Choose a score from 1 to 5."), field="score")
    comment = (comment or "").replace("\x00", "").strip()[:4000]
    try:
        with transaction.atomic():
            rating = TicketRating.objects.create(
                ticket=ticket,
                score=score,
                comment=comment,
                agent_id=ticket.closed_by_id or ticket.owner_id,
                department_id=ticket.department_id,
            )
            _event("ticket.rated", ticket, None, score=score)
    except IntegrityError:
        raise ServiceError(_("This ticket has already been rated. Thank you!")) from None
    return rating


SEGMENT_KEYS = ("group", "status", "country", "language", "with_tickets_since")


def survey_clients(survey: Survey, user: User):
    """The clients a survey goes to: those the sender may see that match every filter."""
    segment = survey.segment or {}
    clients = visible(Client.objects.all(), user)
    if segment.get("group"):
        clients = clients.filter(group_id=segment["group"])
    if segment.get("status"):
        clients = clients.filter(status=segment["status"])
    if segment.get("country"):
        clients = clients.filter(country=segment["country"])
    if segment.get("language"):
        clients = clients.filter(language=segment["language"])
    if segment.get("with_tickets_since"):
        clients = clients.filter(
            pk__in=Ticket.objects.filter(
                created_at__date__gte=segment["with_tickets_since"]
            ).values("client_id")
        )
    return clients.exclude(email="")


def survey_save(
    *,
    by: User,
    survey: Survey | None = None,
    title: str,
    intro: str = "",
    segment: dict | None = None,
    questions: list[dict],
) -> Survey:
    """Create or change a draft survey and its questions."""
    title = _text(title, "title", _("The title"), 200)
    if survey is not None and survey.status != Survey.Status.DRAFT:
        raise ServiceError(_("A survey that was sent cannot be changed."))
    segment = {k: v for k, v in (segment or {}).items() if k in SEGMENT_KEYS and v}
    if not questions:
        raise ServiceError(_("Add at least one question."), field="questions")
    cleaned = []
    for index, question in enumerate(questions, start=1):
        text = " ".join(str(question.get("text", "")).split())
        kind = question.get("kind", "")
        field = f"questions.{index}"
        if not text:
            raise ServiceError(_("Question %(n)d has no text.") % {"n": index}, field=field)
        if kind not in SurveyQuestion.Kind.values:
            raise ServiceError(_("Question %(n)d has no kind.") % {"n": index}, field=field)
        choices = [" ".join(str(c).split()) for c in question.get("choices") or []]
        choices = [c for c in choices if c]
        if kind == SurveyQuestion.Kind.CHOICE and len(choices) < 2:
            raise ServiceError(
                _("Question %(n)d needs at least two options.") % {"n": index}, field=field
            )
        # An answer keeps the chosen option in a 200-character column.
        if any(len(c) > 200 for c in choices):
            raise ServiceError(
                _("Question %(n)d has an option over 200 characters.") % {"n": index}, field=field
            )
        cleaned.append(
            SurveyQuestion(
                position=index,
                kind=kind,
                text=text[:300],
                choices=choices if kind == SurveyQuestion.Kind.CHOICE else [],
                required=bool(question.get("required", True)),
            )
        )
    with transaction.atomic():
        if survey is None:
            survey = Survey.objects.create(
                title=title, intro=intro.strip(), segment=segment, created_by=by
            )
            audit_create(survey, by=by)
        else:
            before = snapshot(survey)
            survey.title, survey.intro, survey.segment = title, intro.strip(), segment
            survey.save(update_fields=["title", "intro", "segment"])
            survey.questions.all().delete()
            audit_update(survey, before, by=by)
        for question in cleaned:
            question.survey = survey
        SurveyQuestion.objects.bulk_create(cleaned)
    return survey


def survey_send(*, by: User, survey: Survey) -> int:
    """Invite every client of the segment once; the mails go out after commit."""
    with transaction.atomic():
        survey = Survey.objects.select_for_update().get(pk=survey.pk)
        if survey.status != Survey.Status.DRAFT:
            raise ServiceError(_("This survey was sent already."))
        if not survey.questions.exists():
            raise ServiceError(_("Add at least one question."), field="questions")
        before = snapshot(survey)
        invitations = [
            SurveyInvitation(survey=survey, client_id=client_id, token=secrets.token_urlsafe(24))
            for client_id in survey_clients(survey, by).values_list("pk", flat=True)
        ]
        SurveyInvitation.objects.bulk_create(invitations, batch_size=1000)
        survey.status = Survey.Status.SENT
        survey.sent_at = clock.now()
        survey.save(update_fields=["status", "sent_at"])
        audit_update(survey, before, by=by)
        from clientbase.support.tasks import email_survey

        transaction.on_commit(lambda: email_survey.enqueue(survey.pk))
    return len(invitations)


def survey_close(*, by: User, survey: Survey) -> Survey:
    """Stop taking answers."""
    with transaction.atomic():
        survey = Survey.objects.select_for_update().get(pk=survey.pk)
        if survey.status != Survey.Status.SENT:
            raise ServiceError(_("Only a survey that was sent can be closed."))
        before = snapshot(survey)
        survey.status = Survey.Status.CLOSED
        survey.save(update_fields=["status"])
        audit_update(survey, before, by=by)
    return survey


def survey_answer(*, invitation: SurveyInvitation, answers: dict[int, str]) -> SurveyInvitation:
    """Keep a client's answers, once; each is checked against its question."""
    survey = invitation.survey
    if survey.status != Survey.Status.SENT:
        raise ServiceError(_("This survey no longer takes answers."))
    rows = []
    errors: dict[str, list[str]] = {}
    for question in survey.questions.all():
        raw = (answers.get(question.pk) or "").replace("\x00", "").strip()
        field = f"q{question.pk}"
        if not raw:
            if question.required:
                errors[field] = [_("Please answer this question.")]
            continue
        answer = SurveyAnswer(question=question)
        if question.kind == SurveyQuestion.Kind.CHOICE:
            if raw not in question.choices:
                errors[field] = [_("Choose one of the options.")]
                continue
            answer.choice = raw
        elif question.kind == SurveyQuestion.Kind.SCALE:
            if raw not in {"1", "2", "3", "4", "5"}:
                errors[field] = [_("Choose a score from 1 to 5.")]
                continue
            answer.score = int(raw)
        else:
            answer.text = raw[:4000]
        rows.append(answer)
    if errors:
        raise ServiceError(errors=errors)
    with transaction.atomic():
        locked = SurveyInvitation.objects.select_for_update().get(pk=invitation.pk)
        if locked.answered_at is not None:
            raise ServiceError(_("This survey has already been answered. Thank you!"))
        for answer in rows:
            answer.invitation = locked
        SurveyAnswer.objects.bulk_create(rows)
        locked.answered_at = clock.now()
        locked.save(update_fields=["answered_at"])
        record_event(
            "survey.answered",
            by=None,
            client=locked.client,
            subject=survey,
            details={"title": survey.title},
        )
    return locked


# --- knowledge base categories ----------------------------------------------------------------


def kb_category_save(
    *, by: User, category: KbCategory | None = None, name: str, position: int = 0
) -> KbCategory:
    """Create or rename a knowledge base category; names are unique."""
    name = " ".join(_text(name, "name", _("The name"), 100).split())
    if not isinstance(position, int) or not 0 <= position <= 32767:
        raise ServiceError(_("The order is a number from 0 to 32767."), field="position")
    category = category or KbCategory()
    before = snapshot(category) if category.pk else None
    category.name, category.position = name, position
    try:
        with transaction.atomic():
            category.save()
            if before is None:
                audit_create(category, by=by)
            else:
                audit_update(category, before, by=by)
    except IntegrityError:
        raise ServiceError(_("A category with this name exists."), field="name") from None
    return category


def kb_category_delete(*, by: User, category: KbCategory) -> None:
    """Remove an empty category; one that still holds articles is refused."""
    with transaction.atomic():
        locked = KbCategory.objects.select_for_update().get(pk=category.pk)
        count = locked.articles.count()
        if count:
            raise ServiceError(
                ngettext(
                    "The category holds %(count)d article: move or delete it first.",
                    "The category holds %(count)d articles: move or delete them first.",
                    count,
                )
                % {"count": count}
            )
        audit_delete(locked, by=by)
        locked.delete()
