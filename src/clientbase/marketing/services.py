"""Every write of the marketing module: message templates, and sending a message from a card.

A one-to-one message a person writes from a card is correspondence, not marketing: it goes
out whatever the client's marketing consents say (`consent_email`, `consent_sms` govern
campaigns, MKT-3), as an invoice or a ticket reply does.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils.translation import gettext as _

from clientbase.accounts.models import User
from clientbase.clients.validation import normalize_phone
from clientbase.core import clock
from clientbase.core.audit import audit_create, audit_delete, audit_update, snapshot
from clientbase.core.errors import ServiceError
from clientbase.marketing import templating
from clientbase.marketing.models import MessageTemplate, SmsMessage
from clientbase.marketing.queries import Records, in_sight
from clientbase.marketing.sms import sms_deliver, sms_length
from clientbase.sales.activity_services import activity_create
from clientbase.sales.models import Activity

BODY_MAX = 20_000
# Longer texts are split into too many paid segments to be a message from a card.
SMS_MAX_SEGMENTS = 10


def _text(value: str, field: str, label: str, max_length: int, *, required: bool = True) -> str:
    value = (value or "").replace("\x00", "").strip()
    if required and not value:
        raise ServiceError(_("%(field)s cannot be empty.") % {"field": label}, field=field)
    if len(value) > max_length:
        raise ServiceError(
            _("%(field)s can hold at most %(max)d characters.")
            % {"field": label, "max": max_length},
            field=field,
        )
    return value


def _checked(source: str, field: str) -> None:
    """Check a template text, reporting its error at the given field."""
    try:
        templating.check(source)
    except ServiceError as error:
        raise ServiceError(error.message_dict["body"][0], field=field) from None


def _rendered(source: str, context: dict, field: str) -> str:
    try:
        return templating.render(source, context)
    except ServiceError as error:
        raise ServiceError(error.message_dict["body"][0], field=field) from None


# --- templates -------------------------------------------------------------------------


def template_save(
    *,
    by: User,
    template: MessageTemplate | None = None,
    name: str,
    channel: str,
    body: str,
    subject: str = "",
    language: str = "",
    active: bool = True,
) -> MessageTemplate:
    """Create or change a message template; its subject and text are checked for unknown tags."""
    name = _text(name, "name", _("The name"), 100)
    if channel not in MessageTemplate.Channel.values:
        raise ServiceError(_("Choose email or SMS."), field="channel")
    language = (language or "").strip()
    if language and language not in dict(settings.LANGUAGES):
        raise ServiceError(_("Choose a language from the list."), field="language")
    body = _text(body, "body", _("The text"), BODY_MAX)
    if channel == MessageTemplate.Channel.EMAIL:
        subject = _text(subject, "subject", _("The subject"), 200)
        _checked(subject, "subject")
    else:
        subject = ""
    _checked(body, "body")
    template = template or MessageTemplate()
    before = snapshot(template) if template.pk else None
    template.name, template.channel, template.language = name, channel, language
    template.subject, template.body, template.active = subject, body, bool(active)
    template.updated_at, template.updated_by = clock.now(), by
    try:
        with transaction.atomic():
            template.save()
            if before is None:
                audit_create(template, by=by)
            else:
                audit_update(template, before, by=by)
    except IntegrityError:
        raise ServiceError(
            _("A template with this name, channel and language exists."), field="name"
        ) from None
    return template


def template_delete(*, by: User, template: MessageTemplate) -> None:
    """Remove a message template; messages sent with it keep their text."""
    with transaction.atomic():
        audit_delete(template, by=by)
        template.delete()


# --- composing and sending -------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A template filled in for one recipient: what the compose form starts from."""

    subject: str
    body: str
    to: str


def _require_sight(records: Records, by: User) -> None:
    for record in records.as_kwargs().values():
        if record is not None and not in_sight(record, by):
            raise Http404(_("Not found."))


def _context(records: Records, by: User) -> dict:
    return templating.merge_context(user=by, **records.as_kwargs())


def recipient_address(channel: str, records: Records) -> str:
    """The address a message to these records goes to: the most specific one that has it."""
    deal = records.deal
    people = (
        records.contact,
        records.client,
        records.lead,
        records.invoice.client if records.invoice else None,
        deal.client if deal and deal.client_id else None,
        deal.lead if deal and deal.lead_id else None,
    )
    for person in people:
        if person is None:
            continue
        if channel == MessageTemplate.Channel.EMAIL and person.email:
            return person.email
        if channel == MessageTemplate.Channel.SMS:
            phone = getattr(person, "phone", "")
            if not phone and hasattr(person, "phones"):
                phone = person.phones.order_by("id").values_list("number", flat=True).first()
            if phone:
                return phone
    return ""


def template_apply(*, by: User, template: MessageTemplate, records: Records) -> Draft:
    """A template's subject and text filled in for records in the sender's sight."""
    _require_sight(records, by)
    context = _context(records, by)
    return Draft(
        subject=_rendered(template.subject, context, "subject") if template.subject else "",
        body=_rendered(template.body, context, "body"),
        to=recipient_address(template.channel, records),
    )


@dataclass(frozen=True)
class SentMessage:
    """A message that went out, and the activity that logs it."""

    channel: str
    to: str
    subject: str
    body: str
    activity: Activity
    sms: SmsMessage | None = None


def _address(channel: str, to: str, records: Records) -> str:
    to = (to or "").strip()
    if not to:
        raise ServiceError(_("Say where the message goes."), field="to")
    if channel == MessageTemplate.Channel.EMAIL:
        try:
            validate_email(to)
        except ValidationError:
            raise ServiceError(
                _("This is not an email address: %(to)s") % {"to": to}, field="to"
            ) from None
        return to
    country = next(
        (r.country for r in (records.client, records.lead) if r is not None and r.country), ""
    )
    try:
        return normalize_phone(to, country=country)
    except ValidationError as error:
        raise ServiceError(error.messages[0], field="to") from None


def _send_email(to: str, subject: str, body: str, reply_to: str) -> None:
    EmailMessage(
        subject,
        body,
        settings.DEFAULT_FROM_EMAIL,
        [to],
        reply_to=[reply_to] if reply_to else None,
    ).send()


def message_send(
    *,
    by: User,
    channel: str,
    to: str,
    subject: str,
    body: str,
    client=None,
    contact=None,
    lead=None,
    deal=None,
    invoice=None,
    template: MessageTemplate | None = None,
) -> SentMessage:
    """Send one email or SMS about records in the sender's sight and log it as a done activity.

    The subject and text as edited are rendered again, so tags typed by hand work too; the
    email leaves from the company address after the transaction commits, the SMS goes to the
    outbox and the gateway. Bad input sends and logs nothing.
    """
    if channel not in MessageTemplate.Channel.values:
        raise ServiceError(_("Choose email or SMS."), field="channel")
    if contact is not None and client is None:
        client = contact.client
    if invoice is not None and client is None:
        client = invoice.client
    records = Records(client=client, contact=contact, lead=lead, deal=deal, invoice=invoice)
    _require_sight(records, by)
    if template is not None and template.channel != channel:
        raise ServiceError(_("This template is for another channel."), field="template")
    to = _address(channel, to, records)
    context = _context(records, by)
    body = _rendered(_text(body, "body", _("The text"), BODY_MAX), context, "body").strip()
    if not body:
        raise ServiceError(_("The text cannot be empty."), field="body")
    if channel == MessageTemplate.Channel.EMAIL:
        subject = _rendered(_text(subject, "subject", _("The subject"), 200), context, "subject")
        subject = " ".join(subject.split())[:200]
        if not subject:
            raise ServiceError(_("The subject cannot be empty."), field="subject")
    else:
        length = sms_length(body)
        if length.segments > SMS_MAX_SEGMENTS:
            raise ServiceError(
                _("The text needs %(segments)d SMS segments; at most %(max)d are allowed.")
                % {"segments": length.segments, "max": SMS_MAX_SEGMENTS},
                field="body",
            )
        subject = _("SMS to %(to)s") % {"to": to}
    sms = None
    with transaction.atomic():
        if channel == MessageTemplate.Channel.SMS:
            sms = SmsMessage.objects.create(
                to=to,
                body=body,
                client=client,
                lead=lead or (deal.lead if deal is not None and deal.lead_id else None),
                sent_by=by,
            )
            sms_id = sms.pk
            transaction.on_commit(lambda: sms_deliver(sms_id))
        else:
            reply_to = by.email
            transaction.on_commit(lambda: _send_email(to, subject, body, reply_to))
        activity = activity_create(
            by=by,
            kind=Activity.Kind.EMAIL
            if channel == MessageTemplate.Channel.EMAIL
            else Activity.Kind.SMS,
            subject=subject,
            body=_("To: %(to)s") % {"to": to} + "\n\n" + body,
            done=True,
            client=client,
            lead=lead,
            deal=deal,
            owner=by,
        )
    return SentMessage(channel, to, subject, body, activity, sms)
