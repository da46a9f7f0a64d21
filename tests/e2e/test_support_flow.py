"""A support agent's ticket in a real browser: a Russian mail becomes a ticket on the client's
profile, the agent replies (the reply arrives over real SMTP), closes it, and the customer's
answer to the closing mail reopens it."""

import email
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import expect

from clientbase.accounts.models import Role
from clientbase.accounts.services import org_unit_create, user_create
from clientbase.clients.services import client_create
from clientbase.support.intake import mail_ingest
from clientbase.support.services import department_save
from tests.conftest import PASSWORD
from tests.e2e.test_billing_flow import _shot, _watch
from tests.support.conftest import raw_mail

pytestmark = pytest.mark.e2e


class _Inbox:
    """An SMTP server's mailbox: the raw messages it accepted."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_inbox(settings):
    """A real SMTP server on loopback that Django sends through."""
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()


def test_mail_to_ticket_reply_close_and_reopen(live_server, page, sign_in, smtp_inbox):
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    agent = user_create(
        username="sasha",
        password=PASSWORD,
        by=None,
        email="sasha@example.com",
        first_name="Sasha",
        last_name="Ivanova",
        role=Role.objects.get(slug="support"),
        org_unit=company,
    )
    department_save(
        by=None,
        name="Technical support",
        email="support@clientbase.test",
        org_unit=company,
        is_default=True,
    )
    client = client_create(
        by=agent, name='ООО "ВМС-ГРУПП"', email="ivan@vms-group.ru", country="RU", language="ru"
    )
    problems = _watch(page)

    # A mail with a Russian subject reaches the support address
    first = mail_ingest(raw_mail(), via="pipe")
    number = first.ticket.number
    assert (number, first.outcome) == ("000001", "ticket")
    acknowledgement = smtp_inbox.messages[0]
    assert acknowledgement["Subject"] == "[#000001] Не работает почта"
    assert acknowledgement["Auto-Submitted"] == "auto-generated"

    # The agent finds it on the client's profile
    sign_in(page, agent.username, PASSWORD)
    page.goto(f"/clients/{client.pk}/")
    expect(page.locator("#tab-tickets")).to_contain_text("1")
    page.click("#tab-tickets")
    expect(page.locator("#client-tickets")).to_contain_text("Не работает почта")
    _shot(page, "support_01_profile_tickets")
    page.click("#client-tickets a:has-text('#000001')")
    expect(page.locator("#ticket-subject")).to_have_text("Не работает почта")
    expect(page.locator("#thread")).to_contain_text("Почта не отправляется с утра.")

    # and replies from the browser; the reply arrives by SMTP, threaded
    page.fill("#id_body", "Проверили: теперь письма уходят.")
    _shot(page, "support_02_ticket_reply")
    page.click("#send-reply")
    expect(page.locator(".alert-success")).to_contain_text("Reply sent to ivan@vms-group.ru")
    expect(page.locator(".ticket-status")).to_have_text("Answered")
    reply = smtp_inbox.messages[1]
    assert reply["Subject"].strip() == "Re: [#000001] Не работает почта"
    assert reply["To"] == "ivan@vms-group.ru"
    assert reply["In-Reply-To"] == "<first@vms-group.ru>"
    assert reply.get_content().strip() == "Проверили: теперь письма уходят."

    # An internal note stays inside
    page.fill("#note-form textarea", "Клиент на тарифе Бизнес.")
    page.click("#add-note")
    expect(page.locator(".message-note")).to_contain_text("Клиент на тарифе Бизнес.")
    assert len(smtp_inbox.messages) == 2

    # Closing mails a rating link
    page.click("#close-ticket")
    expect(page.locator(".ticket-status")).to_have_text("Closed")
    closing = smtp_inbox.messages[2]
    assert closing["Auto-Submitted"] == "auto-generated"
    assert "/support/rate/" in closing.get_content()

    # The customer answers the closing mail: the ticket opens again
    again = mail_ingest(
        raw_mail(
            subject="Re: [#000001] Не работает почта",
            body="Снова не работает.",
            message_id="<second@vms-group.ru>",
            headers={"In-Reply-To": closing["Message-ID"]},
        ),
        via="imap",
    )
    assert (again.outcome, again.ticket.number) == ("reply", number)
    page.reload()
    expect(page.locator(".ticket-status")).to_have_text("Customer reply")
    expect(page.locator("#thread .message-customer").last).to_contain_text("Снова не работает.")
    _shot(page, "support_03_reopened")

    # and counts as awaiting a reply on the ticket list
    page.goto("/support/")
    expect(page.locator("#count-awaiting .badge")).to_have_text("1")
    _shot(page, "support_04_ticket_list")

    # The customer rates the answer from the closing mail's link, without signing in
    link = closing.get_content().split("/support/rate/", 1)[1].split()[0]
    guest = page.context.browser.new_page()
    guest.goto(f"{live_server.url}/support/rate/{link}")
    guest.click("label[for=score-5]")
    guest.click("#rating-submit")
    expect(guest.locator("#rating-done")).to_contain_text("5 of 5")
    guest.close()
    assert problems == []
