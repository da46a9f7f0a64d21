"""Mail to ticket (SUP-2): one function takes a raw message, whichever door it came in by.

`clientbase mail ingest` (a message piped in by the mail server), the IMAP poller and the
inbound webhook all call `mail_ingest`. It is idempotent: the same message (by Message-ID,
or by a digest of its stable headers when it has none) never makes two tickets or two
replies, however often it is delivered or a poll is interrupted and rerun.
"""

import datetime as dt
import re
from dataclasses import dataclass
from email.utils import parseaddr

from django.conf import settings
from django.db import IntegrityError, transaction

from clientbase.core import clock
from clientbase.core.errors import ServiceError
from clientbase.support import services
from clientbase.support.mailparse import ParsedMail, human_size, parse_mail
from clientbase.support.models import Department, InboundMail, Ticket, TicketMessage

TICKET_TAG = re.compile(r"\[#(\d{4,12})\]")


@dataclass(frozen=True)
class IngestResult:
    """What became of a received mail."""

    outcome: str  # "ticket", "reply", "ignored" or "duplicate"
    inbound: InboundMail
    ticket: Ticket | None
    message: TicketMessage | None
    reason: str = ""


def _our_addresses() -> set[str]:
    ours = {parseaddr(settings.DEFAULT_FROM_EMAIL)[1].lower()}
    ours.update(a.lower() for a in Department.objects.values_list("email", flat=True))
    return ours


def _may_write_to(ticket: Ticket, email: str) -> bool:
    """Whether a sender belongs to a ticket: its customer, its CC, or the client's people."""
    if not email:
        return False
    if email == ticket.email.lower() or email in ticket.cc:
        return True
    client = ticket.client
    if client is None:
        return False
    return client.email.lower() == email or client.contacts.filter(email__iexact=email).exists()


def _thread(mail: ParsedMail) -> Ticket | None:
    """The ticket a mail answers: by our Message-IDs it refers to, else by the subject tag.

    A ticket number in the subject alone is easy to guess, so it threads only mail from
    somebody who belongs to that ticket; anyone else's mail opens a ticket of their own.
    """
    ids = [i for i in [mail.in_reply_to, *reversed(mail.references)] if i]
    if ids:
        known = (
            TicketMessage.objects.filter(message_id__in=ids[:50])
            .select_related("ticket")
            .order_by("-id")
            .first()
        )
        if known is not None:
            return known.ticket
    for number in TICKET_TAG.findall(mail.subject):
        ticket = Ticket.objects.select_related("client").filter(number=number).first()
        if ticket is not None and _may_write_to(ticket, mail.sender_email):
            return ticket
    return None


def _answerable(mail: ParsedMail) -> bool:
    """Whether an automatic acknowledgement may go back: never to robots or in a loop."""
    if mail.auto_submitted or mail.return_path == "<>" or not _is_address(mail.sender_email):
        return False
    since = clock.now() - dt.timedelta(hours=1)
    recent = TicketMessage.objects.filter(
        kind=TicketMessage.Kind.REPLY,
        auto_generated=True,
        created_at__gte=since,
        ticket__email=mail.sender_email,
    ).count()
    return recent < settings.SUPPORT_AUTOREPLY_PER_HOUR


def _ignore_reason(mail: ParsedMail) -> str:
    if mail.sender_email and mail.sender_email in _our_addresses():
        return "sent from one of our own addresses (a mail loop)"
    return ""


def mail_ingest(
    raw: bytes, *, via: str = "pipe", department: Department | None = None
) -> IngestResult:
    """Turn a received message into a ticket or a reply on one, exactly once."""
    limit = settings.SUPPORT_MAIL_MAX_BYTES
    mail = parse_mail(raw)
    kept = raw
    if len(raw) > limit:
        kept = raw[:limit]
        mail.problems.append(f"the message is larger than {human_size(limit)}: its start is kept")
    reason = _ignore_reason(mail)
    inbound = InboundMail(
        key=mail.key[:998],
        via=via[:8],
        sender=mail.sender_email,
        subject=mail.subject,
        raw=kept,
        size=len(raw),
        outcome=InboundMail.Outcome.IGNORED,
        reason=reason,
        problems=mail.problems,
    )
    try:
        with transaction.atomic():
            inbound.save()
            if reason:
                return IngestResult("ignored", inbound, None, None, reason)
            try:
                with transaction.atomic():
                    return _file(mail, inbound, department)
            except ServiceError as refused:
                # E.g. the department was closed meanwhile: the mail is kept for a person
                # to look at rather than bounced back or lost.
                inbound.reason = f"not filed: {'; '.join(refused.messages)}"[:300]
                inbound.save(update_fields=["reason"])
                return IngestResult("ignored", inbound, None, None, inbound.reason)
    except IntegrityError:
        existing = InboundMail.objects.filter(key=inbound.key).first()
        if existing is None:  # a different constraint failed: not a duplicate
            raise
        return IngestResult("duplicate", existing, existing.ticket, None, "seen before")


def _file(mail: ParsedMail, inbound: InboundMail, department: Department | None) -> IngestResult:
    attachments = [services.NewAttachment(n, t, c) for n, t, c in mail.attachments]
    fields = {
        "body_html": mail.html,
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "to": mail.recipients[:20],
        "cc": mail.cc[:20],
        "auto_generated": mail.auto_submitted,
        "problems": mail.problems,
        "inbound": inbound,
    }
    body = mail.text
    if not body and not mail.html:
        body = "" if mail.attachments else "(empty message)"
    ticket = _thread(mail)
    if ticket is not None:
        message = services.customer_message_add(
            ticket=ticket,
            body=body,
            from_email=mail.sender_email,
            from_name=mail.sender_name,
            attachments=attachments,
            message_fields=fields,
        )
        inbound.outcome = InboundMail.Outcome.REPLY
        inbound.ticket = message.ticket
        inbound.save(update_fields=["outcome", "ticket"])
        return IngestResult("reply", inbound, message.ticket, message)
    department = department or services.department_for_address([*mail.recipients, *mail.cc])
    if department is None:
        inbound.reason = "no support department is set up"
        inbound.save(update_fields=["reason"])
        return IngestResult("ignored", inbound, None, None, inbound.reason)
    sender = mail.sender_email if _is_address(mail.sender_email) else "unknown@sender.invalid"
    ours = _our_addresses()
    ticket = services.ticket_open(
        by=None,
        department=department,
        subject=mail.subject or "(no subject)",
        body=body,
        email=sender,
        name=mail.sender_name,
        cc=[a for a in mail.cc if a not in ours and _is_address(a)][: services.MAX_CC],
        source=Ticket.Source.EMAIL,
        from_customer=True,
        attachments=attachments,
        message_fields=fields,
    )
    message = ticket.messages.get()
    inbound.outcome = InboundMail.Outcome.TICKET
    inbound.ticket = ticket
    inbound.save(update_fields=["outcome", "ticket"])
    if _answerable(mail):
        services.ticket_acknowledge(ticket=ticket)
    return IngestResult("ticket", inbound, ticket, message)


def _is_address(value: str) -> bool:
    try:
        # An empty value cleans to no address at all, which is not an address either.
        return bool(services.clean_emails([value], field="email"))
    except ServiceError:
        return False
