"""The seed's support workflow end to end, below the browser: mail in, reply, close, reopen."""

import pytest

from clientbase.support import services
from clientbase.support.intake import mail_ingest
from clientbase.support.models import Ticket, TicketMessage

from .conftest import raw_mail

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_russian_mail_becomes_a_ticket_is_answered_closed_and_reopened(
    support_desk, customer, agent, outbox
):
    # Given a mail with a Russian subject to the support address
    first = mail_ingest(raw_mail(), via="pipe")

    # Then it is a new ticket of the client, waiting two hours for an answer
    ticket = first.ticket
    assert first.outcome == "ticket"
    assert (ticket.number, ticket.subject, ticket.client, ticket.status) == (
        "000001",
        "Не работает почта",
        customer,
        "open",
    )
    assert ticket.department == support_desk["technical"]
    assert (ticket.due_at - ticket.created_at).total_seconds() == 7200
    assert first.message.body == "Здравствуйте! Почта не отправляется с утра."
    # and the customer is told the ticket number, by an automatic mail
    assert len(outbox) == 1
    assert outbox[0].subject == "[#000001] Не работает почта"
    assert outbox[0].extra_headers["Auto-Submitted"] == "auto-generated"

    # When the agent replies
    reply = services.ticket_reply(by=agent, ticket=ticket, body="Проверили, теперь работает.")

    # Then the reply is mailed with the ticket number and threading headers
    ticket.refresh_from_db()
    assert (ticket.status, ticket.owner, ticket.due_at) == ("answered", agent, None)
    sent = outbox[1]
    assert sent.subject == "Re: [#000001] Не работает почта"
    assert sent.to == ["ivan@vms-group.ru"]
    assert sent.extra_headers["In-Reply-To"] == "<first@vms-group.ru>"
    assert sent.extra_headers["Message-ID"] == reply.message_id
    reply.refresh_from_db()
    assert reply.sent_at is not None

    # When the ticket is closed, the closing mail carries a rating link
    services.ticket_close(by=agent, ticket=ticket)
    closing = outbox[2]
    assert "/support/rate/" in closing.body
    closing_id = closing.extra_headers["Message-ID"]

    # And the customer answers the closing mail
    again = mail_ingest(
        raw_mail(
            subject="Re: [#000001] Не работает почта",
            body="Снова не работает.",
            message_id="<second@vms-group.ru>",
            headers={"In-Reply-To": closing_id},
        ),
        via="imap",
    )

    # Then the same ticket reopens, waiting for us
    ticket.refresh_from_db()
    assert (again.outcome, again.ticket, ticket.status) == ("reply", ticket, "customer_reply")
    assert ticket.closed_at is None and ticket.due_at is not None
    assert list(ticket.messages.values_list("kind", "auto_generated")) == [
        ("customer", False),
        ("reply", True),
        ("reply", False),
        ("reply", True),
        ("customer", False),
    ]
    # and no acknowledgement answers a reply
    assert len(outbox) == 3


def test_the_same_message_twice_files_once(support_desk, customer, outbox):
    first = mail_ingest(raw_mail(), via="pipe")
    second = mail_ingest(raw_mail(), via="imap")
    assert (first.outcome, second.outcome) == ("ticket", "duplicate")
    assert second.ticket == first.ticket
    assert Ticket.objects.count() == 1
    assert TicketMessage.objects.filter(kind="customer").count() == 1
