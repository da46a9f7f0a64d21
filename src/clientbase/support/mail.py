"""Mail the support desk sends: replies, acknowledgements, closing mails, escalations, surveys.

Every mail leaves from a task after the action's transaction commits, never inside the
request. Replies carry the ticket number in the subject and proper threading headers, so the
customer's answer finds its ticket; automatic mail says so (`Auto-Submitted`), so other
robots do not answer it.
"""

import datetime as dt
from email.utils import formataddr

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import override

from clientbase.core import clock
from clientbase.support.models import SurveyInvitation, Ticket, TicketMessage

CLAIM_MINUTES = 10
RATING_SALT = "clientbase.support.rating"
RATING_MAX_AGE = 90 * 24 * 3600  # a rating link works for 90 days


def _language(ticket: Ticket) -> str:
    return (ticket.client.language if ticket.client_id else "") or settings.LANGUAGE_CODE


def _company() -> str:
    return getattr(settings, "COMPANY_NAME", "Clientbase")


def rating_token(ticket: Ticket) -> str:
    """The signed part of a ticket's rating link."""
    return signing.dumps({"ticket": ticket.pk, "key": ticket.access_key[:8]}, salt=RATING_SALT)


def ticket_for_rating(token: str) -> Ticket | None:
    """The ticket a rating link names, if the link is genuine and not expired."""
    try:
        data = signing.loads(token, salt=RATING_SALT, max_age=RATING_MAX_AGE)
    except signing.BadSignature:
        return None
    ticket = Ticket.objects.filter(pk=data.get("ticket")).first()
    if ticket is None or ticket.access_key[:8] != data.get("key"):
        return None
    return ticket


def ticket_view_url(ticket: Ticket) -> str:
    """The customer's link to read their ticket without signing in."""
    return settings.SITE_URL + reverse("support:guest_ticket", args=[ticket.access_key])


def acknowledgement_text(ticket: Ticket) -> str:
    """The automatic answer to a new ticket, in the customer's language."""
    with override(_language(ticket)):
        return _(
            "Hello,\n\nwe have received your message and opened ticket #%(number)s: "
            "%(subject)s.\nWe answer within %(hours)s hours. To add anything, reply to this "
            "mail and keep the ticket number in the subject.\n\nYou can read the ticket "
            "here: %(link)s\n\n%(company)s"
        ) % {
            "number": ticket.number,
            "subject": ticket.subject,
            "hours": max(1, round(ticket.department.response_minutes(ticket.priority) / 60)),
            "link": ticket_view_url(ticket),
            "company": _company(),
        }


def closing_text(ticket: Ticket) -> str:
    """The closing mail: how to reopen, and the link to rate our answer."""
    link = settings.SITE_URL + reverse("support:rate", args=[rating_token(ticket)])
    with override(_language(ticket)):
        return _(
            "Hello,\n\nticket #%(number)s (%(subject)s) is now closed. If anything is still "
            "not right, reply to this mail and the ticket opens again.\n\nHow did we do? "
            "Rate our answer (one click, no sign-in needed): %(link)s\n\n%(company)s"
        ) % {
            "number": ticket.number,
            "subject": ticket.subject,
            "link": link,
            "company": _company(),
        }


def _references(message: TicketMessage) -> list[str]:
    earlier = (
        TicketMessage.objects.filter(ticket_id=message.ticket_id, id__lt=message.pk)
        .exclude(kind=TicketMessage.Kind.NOTE)
        .exclude(message_id="")
        .order_by("id")
        .values_list("message_id", flat=True)
    )
    return list(earlier)[-20:]


def build_ticket_mail(message: TicketMessage) -> EmailMessage:
    """The mail of a reply (or an automatic message) of a ticket, ready to send."""
    ticket = message.ticket
    department = ticket.department
    sender = formataddr((f"{_company()} · {department.name}", department.email))
    headers = {
        "Message-ID": message.message_id,
        "Reply-To": department.email,
        "X-Clientbase-Ticket": ticket.number,
    }
    if message.in_reply_to:
        headers["In-Reply-To"] = message.in_reply_to
    references = _references(message)
    if references:
        headers["References"] = " ".join(references)
    if message.auto_generated:
        headers["Auto-Submitted"] = "auto-generated"
        headers["X-Auto-Response-Suppress"] = "All"
    # "Re:" only answers something: the first mail of a ticket staff opened is not a reply.
    answers = (
        not message.auto_generated
        and TicketMessage.objects.filter(ticket_id=ticket.pk, id__lt=message.pk)
        .exclude(kind=TicketMessage.Kind.NOTE)
        .exclude(auto_generated=True)
        .exists()
    )
    subject = f"{'Re: ' if answers else ''}{ticket.subject_tag} {ticket.subject}"
    mail = EmailMessage(
        subject=subject,
        body=message.body,
        from_email=sender,
        to=message.to or [ticket.email],
        cc=message.cc,
        headers=headers,
    )
    for attachment in message.attachments.exclude(file=""):
        with attachment.file.open("rb") as stored:
            mail.attach(attachment.name, stored.read(), attachment.content_type)
    return mail


def send_ticket_message(message_id: int) -> bool:
    """Send one outgoing ticket message once; a failure is kept on it to retry."""
    message = (
        TicketMessage.objects.select_related("ticket", "ticket__department", "ticket__client")
        .filter(pk=message_id, kind=TicketMessage.Kind.REPLY, sent_at=None)
        .first()
    )
    if message is None:
        return False
    # Claim it first, so a worker and the retry job cannot both send it; a sender that died
    # holding the claim gives it up after CLAIM_MINUTES.
    now = clock.now()
    claimed = (
        TicketMessage.objects.filter(pk=message.pk, sent_at=None)
        .filter(
            Q(send_claimed_at=None)
            | Q(send_claimed_at__lt=now - dt.timedelta(minutes=CLAIM_MINUTES))
        )
        .update(send_claimed_at=now)
    )
    if not claimed:
        return False
    try:
        build_ticket_mail(message).send()
    except Exception as failure:  # kept on the message; the retry job sends it again
        TicketMessage.objects.filter(pk=message.pk).update(
            send_error=str(failure)[:1000], send_claimed_at=None
        )
        raise
    TicketMessage.objects.filter(pk=message.pk).update(sent_at=clock.now(), send_error="")
    return True


def send_escalation(ticket_id: int, user_id: int) -> None:
    """Tell the escalation contact that a ticket is past its response deadline."""
    from clientbase.accounts.models import User

    ticket = Ticket.objects.select_related("department").get(pk=ticket_id)
    user = User.objects.get(pk=user_id)
    if not user.email:
        return
    link = settings.SITE_URL + reverse("support:ticket", args=[ticket.number])
    with override(user.language or settings.LANGUAGE_CODE):
        subject = _("Overdue ticket #%(number)s") % {"number": ticket.number}
        body = _(
            "Ticket #%(number)s (%(subject)s) in %(department)s has waited past its response "
            "deadline.\n\n%(link)s"
        ) % {
            "number": ticket.number,
            "subject": ticket.subject,
            "department": ticket.department.name,
            "link": link,
        }
    EmailMessage(
        subject,
        body,
        settings.DEFAULT_FROM_EMAIL,
        [user.email],
        headers={"Auto-Submitted": "auto-generated"},
    ).send()


def send_survey_invitations(survey_id: int) -> int:
    """Mail each client invited to a survey their own answer link, once."""
    sent = 0
    invitations = SurveyInvitation.objects.filter(survey_id=survey_id, sent_at=None).select_related(
        "survey", "client"
    )
    for invitation in invitations.iterator(chunk_size=500):
        client = invitation.client
        link = settings.SITE_URL + reverse("support:survey_answer", args=[invitation.token])
        with override(client.language or settings.LANGUAGE_CODE):
            body = _(
                "Hello %(name)s,\n\n%(intro)s\n\nPlease answer a few questions: %(link)s\n\n"
                "%(company)s"
            ) % {
                "name": client.name,
                "intro": invitation.survey.intro or invitation.survey.title,
                "link": link,
                "company": _company(),
            }
        EmailMessage(
            invitation.survey.title,
            body,
            settings.DEFAULT_FROM_EMAIL,
            [client.email],
            headers={"Auto-Submitted": "auto-generated"},
        ).send()
        SurveyInvitation.objects.filter(pk=invitation.pk).update(sent_at=clock.now())
        sent += 1
    return sent


def retry_unsent(older_than_minutes: int = 5) -> int:
    """Send again the ticket mail whose first attempt failed (or whose worker died)."""
    cutoff = clock.now() - dt.timedelta(minutes=older_than_minutes)
    sent = 0
    pending = TicketMessage.objects.filter(
        kind=TicketMessage.Kind.REPLY, sent_at=None, created_at__lt=cutoff
    ).values_list("pk", flat=True)
    for message_id in list(pending[:1000]):
        try:
            sent += send_ticket_message(message_id)
        except Exception:  # kept on the message as send_error; the next run tries again
            continue
    return sent
