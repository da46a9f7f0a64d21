"""Outgoing support mail (SUP-3) through a real SMTP server: headers, threading, failures."""

import datetime as dt
import re
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.db import transaction

from clientbase.core import clock
from clientbase.support import services
from clientbase.support.intake import mail_ingest
from clientbase.support.mail import retry_unsent, ticket_for_rating
from clientbase.support.models import Ticket, TicketMessage

from .conftest import raw_mail

# Mail leaves on commit: the tests must really commit.
pytestmark = pytest.mark.django_db(transaction=True)


class Mailbox:
    """An SMTP server's handler that keeps every message it is given."""

    def __init__(self):
        self.received: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        # SMTP carries CRLF line ends; a mail program reads them as plain line breaks.
        content = envelope.original_content.replace(b"\r\n", b"\n")
        message = message_from_bytes(content, policy=policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    @property
    def messages(self) -> list[EmailMessage]:
        return [message for _, _, message in self.received]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """A real SMTP server on 127.0.0.1 that the test starts and stops at will."""

    def __init__(self, port: int):
        self.port = port
        self.mailbox = Mailbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server(settings):
    """Django mails through SMTP to a server on a free local port (not started yet)."""
    server = SmtpServer(_free_port())
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server):
    """A running SMTP server; its mailbox holds what arrived."""
    smtp_server.start()
    return smtp_server.mailbox


def _subject(message: EmailMessage) -> str:
    # Django folds a long encoded subject onto a second line; Python then keeps the fold's
    # space at the start, which mail programs drop.
    return " ".join(str(message["Subject"]).split())


def _open_ticket() -> Ticket:
    """The customer's mail, with a colleague in copy, as the support address receives it."""
    return mail_ingest(raw_mail(headers={"Cc": "Boss <boss@partner.example>"})).ticket


def test_a_staff_reply_arrives_with_the_ticket_number_and_threading(
    support_desk, customer, agent, smtp
):
    # Given a ticket opened by mail (its acknowledgement arrives first)
    ticket = _open_ticket()
    ack = ticket.messages.get(kind="reply", auto_generated=True)

    # When the agent replies
    reply = services.ticket_reply(by=agent, ticket=ticket, body="Проверили, теперь работает.")

    # Then the reply arrives by SMTP to the customer and the copy
    assert len(smtp.received) == 2
    envelope_from, recipients, sent = smtp.received[1]
    assert envelope_from == "support@clientbase.test"
    assert recipients == ["ivan@vms-group.ru", "boss@partner.example"]
    assert _subject(sent) == "Re: [#000001] Не работает почта"
    assert sent["From"].addresses[0].addr_spec == "support@clientbase.test"
    assert sent["From"].addresses[0].display_name == "Clientbase · Technical support"
    assert (sent["To"], sent["Cc"], sent["Reply-To"]) == (
        "ivan@vms-group.ru",
        "boss@partner.example",
        "support@clientbase.test",
    )
    assert sent["X-Clientbase-Ticket"] == "000001"
    # and threads under the customer's mail
    reply.refresh_from_db()
    assert sent["Message-ID"] == reply.message_id
    assert sent["In-Reply-To"] == "<first@vms-group.ru>"
    assert sent["References"] == f"<first@vms-group.ru> {ack.message_id}"
    assert sent["Auto-Submitted"] is None
    assert sent.get_content() == "Проверили, теперь работает.\n"
    assert (reply.send_error, reply.sent_at is not None) == ("", True)


def test_the_acknowledgement_arrives_as_automatic_mail(support_desk, customer, smtp):
    ticket = _open_ticket()

    [(_, recipients, sent)] = smtp.received
    ack = ticket.messages.get(kind="reply")
    assert recipients == ["ivan@vms-group.ru"]
    assert _subject(sent) == "[#000001] Не работает почта"
    assert sent["Auto-Submitted"] == "auto-generated"
    assert sent["X-Auto-Response-Suppress"] == "All"
    assert (sent["Message-ID"], sent["In-Reply-To"]) == (ack.message_id, "<first@vms-group.ru>")


def test_internal_notes_never_arrive(support_desk, customer, agent, smtp):
    ticket = _open_ticket()

    services.ticket_note(by=agent, ticket=ticket, body="Клиент должен нам за прошлый месяц.")

    assert len(smtp.received) == 1  # the acknowledgement only
    assert all("прошлый месяц" not in m.get_content() for m in smtp.messages)
    assert ticket.messages.get(kind="note").sent_at is None


def test_the_closing_mail_arrives_with_a_rating_link(support_desk, customer, agent, smtp, settings):
    ticket = _open_ticket()

    services.ticket_close(by=agent, ticket=ticket)

    sent = smtp.messages[-1]
    assert len(smtp.received) == 2
    assert _subject(sent) == "[#000001] Не работает почта"
    assert sent["Auto-Submitted"] == "auto-generated"
    assert sent["X-Auto-Response-Suppress"] == "All"
    links = re.findall(rf"{settings.SITE_URL}/support/rate/([^/\s]+)/", sent.get_content())
    assert len(links) == 1
    assert ticket_for_rating(links[0]) == ticket


def test_mail_goes_out_only_after_the_commit(support_desk, customer, agent, smtp):
    ticket = _open_ticket()

    # While the reply's transaction is open, nothing leaves
    with transaction.atomic():
        services.ticket_reply(by=agent, ticket=ticket, body="Первый ответ.")
        assert len(smtp.received) == 1
    assert len(smtp.received) == 2

    # And a reply whose transaction rolls back never leaves at all
    with pytest.raises(RuntimeError), transaction.atomic():
        services.ticket_reply(by=agent, ticket=ticket, body="Отменённый ответ.")
        raise RuntimeError("the request failed after the reply")
    assert len(smtp.received) == 2
    assert list(ticket.messages.filter(kind="reply").values_list("body", flat=True))[-1] == (
        "Первый ответ."
    )


def test_a_reply_is_kept_when_the_server_is_down_and_sent_later(
    support_desk, customer, agent, smtp_server, signed_in
):
    # Given the SMTP server is down when the mail comes in and the agent replies
    ticket = _open_ticket()
    response = signed_in(agent).post(
        f"/support/t/{ticket.number}/reply/",
        {"body": "Проверили, теперь работает.", "status": "answered", "version": 1},
    )

    # Then the reply is saved and the agent's action succeeded
    assert response.status_code == 302
    assert response["Location"] == "/support/t/000001/"
    ticket.refresh_from_db()
    assert (ticket.status, ticket.owner) == ("answered", agent)
    pending = list(ticket.messages.filter(kind="reply").order_by("id"))
    assert [(m.auto_generated, m.sent_at) for m in pending] == [(True, None), (False, None)]
    assert all("refused" in m.send_error.lower() for m in pending)

    # When the server is up again, a retry within five minutes leaves it alone
    smtp_server.start()
    assert retry_unsent() == 0
    assert smtp_server.mailbox.received == []

    # But past five minutes both mails go out, once
    with time_machine.travel(clock.now() + dt.timedelta(minutes=6), tick=False):
        assert retry_unsent() == 2
        assert retry_unsent() == 0
    sent = smtp_server.mailbox.messages
    assert [m["Message-ID"] for m in sent] == [m.message_id for m in pending]
    assert sent[1]["In-Reply-To"] == "<first@vms-group.ru>"
    assert list(
        TicketMessage.objects.filter(kind="reply").values_list("send_error", flat=True)
    ) == ["", ""]
    assert TicketMessage.objects.filter(kind="reply", sent_at=None).count() == 0
