"""Shared support fixtures: a support desk with two departments, an agent, and a client.

`raw_mail` writes RFC 5322 messages the way mail programs send them, so intake tests read
like the mail a support address receives.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from django.core import mail as outbox_module

from clientbase.clients.services import client_create
from clientbase.support.services import department_save


@pytest.fixture
def agent(make_user):
    """A support agent who sees every client."""
    return make_user(
        "sasha", role="support", unit="company", first_name="Sasha", last_name="Ivanova"
    )


@pytest.fixture
def support_desk(org):
    """The technical support department (default, two hours) and billing questions."""
    technical = department_save(
        by=None,
        name="Technical support",
        email="support@clientbase.test",
        org_unit=org["company"],
        is_default=True,
    )
    billing = department_save(
        by=None,
        name="Billing questions",
        email="billing@clientbase.test",
        org_unit=org["company"],
        sla_urgent=30,
    )
    return {"technical": technical, "billing": billing}


@pytest.fixture
def customer(make_user):
    """A client whose mail comes from ivan@vms-group.ru, written in Russian."""
    seller = make_user("seller", role="sales", unit="team_a")
    return client_create(
        by=seller,
        name='ООО "ВМС-ГРУПП"',
        email="ivan@vms-group.ru",
        country="RU",
        language="ru",
    )


def raw_mail(
    *,
    subject: str = "Не работает почта",
    body: str = "Здравствуйте! Почта не отправляется с утра.",
    sender: str = "Иван Петров <ivan@vms-group.ru>",
    to: str = "support@clientbase.test",
    message_id: str | None = "<first@vms-group.ru>",
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
    html: str | None = None,
) -> bytes:
    """A mail as a mail program sends it, in UTF-8, with optional HTML and attachments."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(
        __import__("datetime").datetime(2026, 11, 2, 9, 0, tzinfo=__import__("datetime").UTC)
    )
    if message_id:
        message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for name, content_type, content in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


@pytest.fixture
def outbox(settings):
    """The mail sent during the test, through Django's memory backend."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    outbox_module.outbox = []
    return outbox_module.outbox
