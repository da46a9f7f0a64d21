"""Mail intake (SUP-2) against the mail real senders write: threads, loops, robots, bad MIME."""

import datetime as dt
import hashlib
import io
import unicodedata
from base64 import b64encode
from pathlib import Path

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from clientbase.clients.services import contact_add
from clientbase.core.models import Event
from clientbase.support import services
from clientbase.support.intake import mail_ingest
from clientbase.support.mail import build_ticket_mail
from clientbase.support.mailparse import safe_name, sanitize_html
from clientbase.support.models import Attachment, InboundMail, Ticket, TicketMessage

from .conftest import raw_mail

pytestmark = pytest.mark.django_db

MAILS = Path(__file__).parent / "mails"
NOON = dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
RUSSIAN = "Здравствуйте! Почта не отправляется с утра, сервер отвечает ошибкой."
VIETNAMESE = "Xin chào, tôi không đăng nhập được vào tài khoản của công ty."
# Vietnamese tone marks: windows-1258 writes them as combining characters after the letter.
_TONES = "\u0300\u0301\u0303\u0309\u0323"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Attachments land in the test's own directory."""
    settings.MEDIA_ROOT = tmp_path / "media"


def _acks(ticket: Ticket) -> list[TicketMessage]:
    return list(ticket.messages.filter(kind="reply", auto_generated=True))


def _bytes_mail(
    body: bytes,
    *,
    content_type: str = "text/plain; charset=utf-8",
    subject: bytes = b"Test",
    sender: bytes = b"Ivan Petrov <ivan@vms-group.ru>",
    message_id: bytes = b"<bytes@vms-group.ru>",
    extra: bytes = b"",
) -> bytes:
    """A message written byte by byte, as a badly behaved mail program sends it."""
    return (
        b"From: " + sender + b"\nTo: support@clientbase.test\nSubject: " + subject + b"\n"
        b"Date: Mon, 02 Nov 2026 09:00:00 +0000\nMessage-ID: " + message_id + b"\n"
        b"MIME-Version: 1.0\nContent-Type: " + content_type.encode() + b"\n"
        b"Content-Transfer-Encoding: 8bit\n" + extra + b"\n" + body
    )


def _cp1258(text: str) -> bytes:
    """Text in windows-1258: letters with their vowel marks, then the tone as a combining mark."""
    out = b""
    for char in text:
        decomposed = unicodedata.normalize("NFD", char)
        tones = "".join(c for c in decomposed if c in _TONES)
        base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))
        out += base.encode("cp1258") + tones.encode("cp1258")
    return out


def _stored(ticket: Ticket) -> TicketMessage:
    return ticket.messages.get(kind="customer")


# --- threading ------------------------------------------------------------------------------


def test_a_reply_threads_by_in_reply_to_our_acknowledgement(support_desk, customer):
    # Given a ticket whose acknowledgement the customer answers, subject without the tag
    ticket = mail_ingest(raw_mail()).ticket
    [ack] = _acks(ticket)

    # When the answer arrives
    result = mail_ingest(
        raw_mail(
            subject="Re: Не работает почта",
            body="Добавлю: с телефона тоже не уходит.",
            message_id="<answer@vms-group.ru>",
            headers={"In-Reply-To": ack.message_id},
        )
    )

    # Then it is a reply on that ticket, not a new one
    assert (result.outcome, result.ticket, Ticket.objects.count()) == ("reply", ticket, 1)
    assert result.message.body == "Добавлю: с телефона тоже не уходит."
    assert result.message.in_reply_to == ack.message_id
    assert result.inbound.outcome == "reply" and result.inbound.ticket == ticket


def test_a_reply_threads_by_references_when_in_reply_to_is_unknown(support_desk, customer):
    ticket = mail_ingest(raw_mail()).ticket

    result = mail_ingest(
        raw_mail(
            subject="Fwd: problem",
            message_id="<third@vms-group.ru>",
            headers={
                "In-Reply-To": "<somewhere-else@other.example>",
                "References": "<first@vms-group.ru> <somewhere-else@other.example>",
            },
        )
    )

    assert (result.outcome, result.ticket) == ("reply", ticket)
    assert list(ticket.messages.filter(kind="customer").values_list("message_id", flat=True)) == [
        "<first@vms-group.ru>",
        "<third@vms-group.ru>",
    ]


def test_a_subject_tag_threads_mail_from_the_ticket_address(support_desk, customer):
    ticket = mail_ingest(raw_mail()).ticket

    result = mail_ingest(
        raw_mail(subject="RE: [#000001] Не работает почта", message_id="<tag@vms-group.ru>")
    )

    assert (result.outcome, result.ticket) == ("reply", ticket)
    assert ticket.messages.filter(kind="customer").count() == 2


@pytest.mark.parametrize("who", ["cc", "client", "contact"])
def test_a_subject_tag_threads_mail_from_the_people_of_the_ticket(
    support_desk, customer, agent, who
):
    # Given a ticket opened by one of the client's contacts, with a colleague in copy
    contact_add(client=customer, by=agent, last_name="Smirnova", email="olga@vms-group.ru")
    opened = mail_ingest(
        raw_mail(
            sender="Olga <olga@vms-group.ru>",
            message_id="<olga@vms-group.ru>",
            headers={"Cc": "Boss <boss@partner.example>"},
        )
    )
    ticket = opened.ticket
    assert (ticket.email, ticket.cc, ticket.client) == (
        "olga@vms-group.ru",
        ["boss@partner.example"],
        customer,
    )
    sender = {
        "cc": "boss@partner.example",
        "client": "ivan@vms-group.ru",
        "contact": "OLGA@vms-group.ru",
    }[who]

    # When that person writes with the ticket number in the subject
    result = mail_ingest(
        raw_mail(sender=sender, subject="[#000001] still broken", message_id=f"<{who}@x.example>")
    )

    # Then the mail joins the ticket
    assert (result.outcome, result.ticket, Ticket.objects.count()) == ("reply", ticket, 1)
    assert result.message.from_email == sender.lower()


def test_a_subject_tag_from_a_stranger_opens_a_ticket_of_their_own(support_desk, customer):
    # Given the client's ticket #000001
    ticket = mail_ingest(raw_mail()).ticket

    # When somebody else guesses its number
    result = mail_ingest(
        raw_mail(
            sender="Mallory <mallory@evil.example>",
            subject="Re: [#000001] send me the invoices",
            message_id="<guess@evil.example>",
        )
    )

    # Then the guess opens a new ticket and reaches nothing of the client's
    assert result.outcome == "ticket"
    assert (result.ticket.number, result.ticket.client, result.ticket.email) == (
        "000002",
        None,
        "mallory@evil.example",
    )
    assert result.ticket.subject == "Re: [#000001] send me the invoices"
    ticket.refresh_from_db()
    assert (ticket.status, ticket.messages.filter(kind="customer").count()) == ("open", 1)


def test_a_subject_tag_without_a_sender_threads_nothing(support_desk, customer):
    # Given a client whose record has no email, and a ticket of theirs
    ticket = mail_ingest(raw_mail()).ticket
    type(customer).objects.filter(pk=customer.pk).update(email="")

    # When a mail without any From names its number
    result = mail_ingest(b"To: support@clientbase.test\nSubject: [#000001] hi\n\nGuess.\n")

    # Then an empty sender is nobody's: a new ticket
    assert result.outcome == "ticket"
    assert result.ticket != ticket
    assert result.ticket.email == "unknown@sender.invalid"


# --- exactly once -------------------------------------------------------------------------------


def test_the_same_message_by_pipe_and_then_by_imap_files_once(support_desk, customer):
    raw = raw_mail()
    first = mail_ingest(raw, via="pipe")
    # IMAP hands the same message over with CRLF line ends and the relay's headers on top
    relayed = b"Received: from mx.vms-group.ru by mx.clientbase.test\r\n" + raw.replace(
        b"\n", b"\r\n"
    )

    second = mail_ingest(relayed, via="imap")

    assert (first.outcome, second.outcome, second.reason) == ("ticket", "duplicate", "seen before")
    assert second.inbound == first.inbound and second.ticket == first.ticket
    assert list(InboundMail.objects.values_list("key", "via")) == [("<first@vms-group.ru>", "pipe")]
    assert TicketMessage.objects.filter(kind="customer").count() == 1


def test_a_message_without_message_id_delivered_twice_files_once(support_desk, customer):
    raw = raw_mail(message_id=None)
    first = mail_ingest(raw, via="pipe")
    relayed = (
        b"Return-Path: <ivan@vms-group.ru>\r\nReceived: by mx.clientbase.test\r\n"
        + raw.replace(b"\n", b"\r\n")
        + b"\r\n"
    )

    second = mail_ingest(relayed, via="imap")

    assert (first.outcome, second.outcome) == ("ticket", "duplicate")
    assert first.inbound.key.startswith("sha256:") and len(first.inbound.key) == 71
    assert (Ticket.objects.count(), InboundMail.objects.count()) == (1, 1)
    assert TicketMessage.objects.filter(kind="customer").count() == 1


def test_two_different_messages_without_message_id_make_two_tickets(support_desk, customer):
    first = mail_ingest(raw_mail(message_id=None, body="Первое письмо."))
    second = mail_ingest(raw_mail(message_id=None, body="Второе письмо."))

    assert (first.outcome, second.outcome) == ("ticket", "ticket")
    assert first.inbound.key != second.inbound.key
    assert list(Ticket.objects.order_by("number").values_list("number", flat=True)) == [
        "000001",
        "000002",
    ]


def test_two_headerless_scraps_are_not_taken_for_one(support_desk):
    # Nothing to tell them apart but their text: they must not collapse into one
    first = mail_ingest(b"\x01garbage one \xff\xfe")
    second = mail_ingest(b"\x01garbage two \xff\xfe")

    assert (first.outcome, second.outcome) == ("ticket", "ticket")
    assert InboundMail.objects.count() == 2


# --- reopening, matching the sender ---------------------------------------------------------------


def test_a_reply_to_a_closed_ticket_reopens_it(support_desk, customer, agent):
    ticket = mail_ingest(raw_mail()).ticket
    services.ticket_close(by=agent, ticket=ticket)
    closing = ticket.messages.filter(kind="reply").last()

    result = mail_ingest(
        raw_mail(
            subject="Re: [#000001] Не работает почта",
            body="Опять не работает.",
            message_id="<again@vms-group.ru>",
            headers={"In-Reply-To": closing.message_id},
        )
    )

    ticket.refresh_from_db()
    assert (result.outcome, result.ticket) == ("reply", ticket)
    assert (ticket.status, ticket.closed_at, ticket.closed_by) == ("customer_reply", None, None)
    assert ticket.due_at is not None
    assert list(
        Event.objects.filter(reference="000001").order_by("id").values_list("type", "actor")
    ) == [
        ("ticket.opened", None),
        ("ticket.closed", agent.pk),
        ("ticket.customer_reply", None),
        ("ticket.reopened", None),
    ]


def test_the_sender_is_matched_to_the_client_by_its_email(support_desk, customer):
    ticket = mail_ingest(raw_mail(sender="IVAN@VMS-GROUP.RU")).ticket

    assert (ticket.client, ticket.contact, ticket.email) == (customer, None, "ivan@vms-group.ru")
    assert ticket.org_unit_id == customer.org_unit_id


def test_the_sender_is_matched_to_a_contact_of_a_client(support_desk, customer, agent):
    contact = contact_add(
        client=customer, by=agent, first_name="Olga", last_name="Smirnova", email="olga@vms.ru"
    )

    ticket = mail_ingest(raw_mail(sender="Olga S. <olga@vms.ru>")).ticket

    assert (ticket.client, ticket.contact, ticket.name) == (customer, contact, "Olga S.")


def test_an_unknown_sender_gets_a_ticket_without_a_client(support_desk, customer):
    ticket = mail_ingest(raw_mail(sender="Anna <anna@new-customer.example>")).ticket

    assert (ticket.client, ticket.contact, ticket.email, ticket.name) == (
        None,
        None,
        "anna@new-customer.example",
        "Anna",
    )
    assert ticket.org_unit_id == support_desk["technical"].org_unit_id


# --- robots, loops, acknowledgements ----------------------------------------------------------------


def test_an_ordinary_mail_is_acknowledged_once(support_desk, customer):
    ticket = mail_ingest(raw_mail()).ticket

    [ack] = _acks(ticket)
    assert (ack.to, ack.in_reply_to, ack.from_email) == (
        ["ivan@vms-group.ru"],
        "<first@vms-group.ru>",
        "support@clientbase.test",
    )
    assert "#000001" in ack.body


@pytest.mark.parametrize(
    "header",
    [
        ("Auto-Submitted", "auto-replied"),
        ("Precedence", "bulk"),
        ("X-Autoreply", "yes"),
        ("Return-Path", "<>"),
    ],
)
def test_a_robot_gets_a_ticket_but_no_acknowledgement(support_desk, customer, header):
    # Given an out-of-office answer to something of ours
    result = mail_ingest(raw_mail(subject="Out of office", headers=dict([header])))

    # Then it is kept as a ticket, but nothing answers it (no mail ping-pong)
    assert result.outcome == "ticket"
    assert _acks(result.ticket) == []
    assert _stored(result.ticket).auto_generated is (header[0] != "Return-Path")


def test_a_robot_answering_a_ticket_adds_a_reply_and_no_acknowledgement(support_desk, customer):
    ticket = mail_ingest(raw_mail()).ticket

    result = mail_ingest(
        raw_mail(
            subject="Auto: [#000001] Не работает почта",
            message_id="<vacation@vms-group.ru>",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )

    assert (result.outcome, result.message.auto_generated) == ("reply", True)
    assert len(_acks(ticket)) == 1


@pytest.mark.parametrize(
    "sender",
    ["support@clientbase.test", "Billing <BILLING@clientbase.test>", "noreply@localhost"],
)
def test_mail_from_our_own_addresses_is_ignored(support_desk, settings, sender):
    settings.DEFAULT_FROM_EMAIL = "Clientbase <noreply@localhost>"

    result = mail_ingest(raw_mail(sender=sender, subject="Re: [#000001] x"))

    assert (result.outcome, result.ticket, result.reason) == (
        "ignored",
        None,
        "sent from one of our own addresses (a mail loop)",
    )
    assert Ticket.objects.count() == 0
    assert list(InboundMail.objects.values_list("outcome", "sender")) == [
        ("ignored", sender.rsplit("<", 1)[-1].rstrip(">").lower())
    ]


def test_our_automatic_mail_says_so_and_our_replies_do_not(support_desk, customer, agent):
    ticket = mail_ingest(raw_mail()).ticket
    [ack] = _acks(ticket)
    reply = services.ticket_reply(by=agent, ticket=ticket, body="Проверили.")

    automatic, answer = build_ticket_mail(ack), build_ticket_mail(reply)

    assert automatic.subject == "[#000001] Не работает почта"
    assert automatic.extra_headers["Auto-Submitted"] == "auto-generated"
    assert automatic.extra_headers["X-Auto-Response-Suppress"] == "All"
    assert answer.subject == "Re: [#000001] Не работает почта"
    assert "Auto-Submitted" not in answer.extra_headers
    assert answer.extra_headers["References"] == f"<first@vms-group.ru> {ack.message_id}"


def test_acknowledgements_are_limited_per_sender_and_hour(support_desk, customer, settings):
    settings.SUPPORT_AUTOREPLY_PER_HOUR = 2
    with time_machine.travel(NOON, tick=False) as traveller:
        # Given three new mails from one sender within the hour, and one from another
        tickets = [
            mail_ingest(raw_mail(subject=f"Problem {n}", message_id=f"<p{n}@vms-group.ru>")).ticket
            for n in range(3)
        ]
        other = mail_ingest(raw_mail(sender="anna@other.example", message_id="<a@o.example>"))

        # Then the first two are acknowledged, the third is not; the other sender is
        assert [len(_acks(t)) for t in tickets] == [1, 1, 0]
        assert len(_acks(other.ticket)) == 1

        # And an hour later the sender is acknowledged again
        traveller.shift(dt.timedelta(hours=1, seconds=1))
        later = mail_ingest(raw_mail(subject="Problem 4", message_id="<p4@vms-group.ru>"))
        assert len(_acks(later.ticket)) == 1


# --- broken mail ----------------------------------------------------------------------------------


def test_a_message_with_a_wrong_mime_boundary_is_read_with_the_one_it_uses(support_desk):
    raw = (MAILS / "broken_boundary.eml").read_bytes()

    result = mail_ingest(raw)

    ticket = result.ticket
    message = _stored(ticket)
    assert (ticket.subject, ticket.name, ticket.email) == (
        "Не работает почта",
        "Иван Петров",
        "ivan@vms-group.ru",
    )
    assert message.body == "Почта не отправляется с утра."
    assert message.problems == [
        "MIME: StartBoundaryNotFoundDefect",
        "MIME: MultipartInvariantViolationDefect",
        "the message names a MIME boundary it does not use",
    ]
    assert list(message.attachments.values_list("name", "content_type", "size")) == [
        ("log.csv", "text/csv", 24)
    ]
    assert message.attachments.get().file.read() == b"time,error\n09:00,timeout"
    assert bytes(result.inbound.raw) == raw
    assert result.inbound.problems == message.problems


def test_a_truncated_message_keeps_what_arrived(support_desk):
    raw = (MAILS / "truncated.eml").read_bytes()

    result = mail_ingest(raw)

    message = _stored(result.ticket)
    assert (result.outcome, message.body) == ("ticket", "The invoice is attached.")
    assert message.problems == ["MIME: CloseBoundaryNotFoundDefect"]
    [attachment] = message.attachments.all()
    assert (attachment.name, attachment.size) == ("invoice.pdf", 12)
    assert attachment.file.read() == b"%PDF-1.4\n%\xc7\xec"
    assert bytes(result.inbound.raw) == raw


def test_garbage_bytes_are_kept_and_still_make_a_readable_ticket(support_desk):
    raw = bytes(range(256)) * 4

    result = mail_ingest(raw)

    ticket, message = result.ticket, _stored(result.ticket)
    assert (result.outcome, ticket.subject, ticket.email) == (
        "ticket",
        "(no subject)",
        "unknown@sender.invalid",
    )
    assert message.problems == [
        "MIME: MissingHeaderBodySeparatorDefect",
        "the message has no sender address",
        "the text could not be decoded; unreadable characters are replaced",
    ]
    # No control character (PostgreSQL refuses NUL) and every printable one is there
    assert message.body.startswith("!\"#$%&'()*+,-./0123456789:;<=>?@ABC")
    assert not any(c in message.body for c in "\x00\x01\x08\x0b\x1b\x7f")
    assert bytes(result.inbound.raw) == raw
    assert _acks(ticket) == []


def test_a_message_with_no_headers_at_all_becomes_a_ticket(support_desk):
    result = mail_ingest(b"Please call me back at +7 495 123-45-67.\n")

    message = _stored(result.ticket)
    assert (result.ticket.subject, message.body) == (
        "(no subject)",
        "Please call me back at +7 495 123-45-67.",
    )
    assert message.problems == [
        "MIME: MissingHeaderBodySeparatorDefect",
        "the message has no sender address",
    ]
    assert result.ticket.department == support_desk["technical"]


def test_a_message_without_from_becomes_a_ticket_that_nobody_is_mailed(support_desk):
    raw = (MAILS / "no_from.eml").read_bytes()

    result = mail_ingest(raw)

    ticket = result.ticket
    assert (ticket.subject, ticket.email, ticket.name, ticket.client) == (
        "Who wrote this?",
        "unknown@sender.invalid",
        "",
        None,
    )
    assert _stored(ticket).body == "Nobody signed this message."
    assert result.inbound.problems == ["the message has no sender address"]
    assert (result.inbound.sender, _acks(ticket)) == ("", [])


def test_an_empty_message_is_kept(support_desk):
    result = mail_ingest(b"")

    assert (result.outcome, _stored(result.ticket).body) == ("ticket", "(empty message)")
    assert result.inbound.problems == [
        "the message has no sender address",
        "the message has no body",
    ]


def test_a_message_over_the_size_limit_keeps_its_start(support_desk, customer, settings):
    settings.SUPPORT_MAIL_MAX_BYTES = 2048
    raw = raw_mail(body="x" * 5000)

    result = mail_ingest(raw)

    assert (len(bytes(result.inbound.raw)), result.inbound.size) == (2048, len(raw))
    assert bytes(result.inbound.raw) == raw[:2048]
    assert result.inbound.problems == ["the message is larger than 2 KB: its start is kept"]
    assert _stored(result.ticket).body == "x" * 5000


def test_mail_for_a_closed_department_is_kept_not_lost(support_desk, customer):
    closed = support_desk["billing"]
    type(closed).objects.filter(pk=closed.pk).update(active=False)
    closed.refresh_from_db()

    result = mail_ingest(raw_mail(), via="imap", department=closed)

    assert (result.outcome, result.reason) == ("ignored", "not filed: This department is closed.")
    assert Ticket.objects.count() == 0
    assert list(InboundMail.objects.values_list("outcome", "reason", "ticket")) == [
        ("ignored", "not filed: This department is closed.", None)
    ]


# --- charsets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "problems"),
    [
        (
            "text/plain; charset=windows-1251",
            ["the text is not in the charset it names (windows-1251)", "read as koi8-r"],
        ),
        ("text/plain", ["read as koi8-r"]),
    ],
)
def test_a_koi8_r_body_labelled_wrongly_or_not_at_all_is_read(support_desk, content_type, problems):
    raw = _bytes_mail(RUSSIAN.encode("koi8-r"), content_type=content_type)

    message = _stored(mail_ingest(raw).ticket)

    assert message.body == RUSSIAN
    assert message.problems == problems


def test_a_windows_1251_body_labelled_utf_8_is_read(support_desk):
    raw = _bytes_mail(RUSSIAN.encode("cp1251"), content_type="text/plain; charset=utf-8")

    message = _stored(mail_ingest(raw).ticket)

    assert message.body == RUSSIAN
    assert message.problems == [
        "the text is not in the charset it names (utf-8)",
        "read as cp1251",
    ]


@pytest.mark.parametrize(
    ("content_type", "problems"),
    [
        (
            "text/plain; charset=windows-1251",
            ["the text is not in the charset it names (windows-1251)", "read as utf-8"],
        ),
        (
            "text/plain; charset=x-no-such-charset",
            ["the text names an unknown charset (x-no-such-charset)"],
        ),
    ],
)
def test_a_utf_8_body_labelled_wrongly_is_read(support_desk, content_type, problems):
    raw = _bytes_mail(RUSSIAN.encode(), content_type=content_type)

    message = _stored(mail_ingest(raw).ticket)

    assert (message.body, message.problems) == (RUSSIAN, problems)


def test_a_correctly_labelled_windows_1251_body_is_read_without_a_problem(support_desk):
    raw = _bytes_mail(RUSSIAN.encode("cp1251"), content_type="text/plain; charset=windows-1251")

    message = _stored(mail_ingest(raw).ticket)

    assert (message.body, message.problems) == (RUSSIAN, [])


def test_a_vietnamese_body_in_windows_1258_is_read_as_composed_text(support_desk):
    raw = _bytes_mail(_cp1258(VIETNAMESE), content_type="text/plain; charset=windows-1258")

    message = _stored(mail_ingest(raw).ticket)

    assert message.body == VIETNAMESE
    assert message.body == unicodedata.normalize("NFC", message.body)
    assert message.problems == []


def test_a_vietnamese_mail_in_utf_8_with_an_encoded_subject(support_desk):
    subject = "Không gửi được hóa đơn tháng 11"
    raw = _bytes_mail(
        VIETNAMESE.encode(),
        subject=b"=?UTF-8?B?" + b64encode(subject.encode()) + b"?=",
        sender=b"=?utf-8?Q?Nguy=E1=BB=85n_V=C4=83n_An?= <an@congty.vn>",
    )

    ticket = mail_ingest(raw).ticket

    assert (ticket.subject, ticket.name, ticket.email) == (subject, "Nguyễn Văn An", "an@congty.vn")
    assert (_stored(ticket).body, _stored(ticket).problems) == (VIETNAMESE, [])


def test_a_koi8_r_encoded_word_subject_is_decoded(support_desk):
    subject = "Счёт 42 не оплачивается"
    raw = _bytes_mail(b"text", subject=b"=?koi8-r?B?" + b64encode(subject.encode("koi8-r")) + b"?=")

    assert mail_ingest(raw).ticket.subject == "Счёт 42 не оплачивается"


def test_a_raw_windows_1251_subject_is_decoded(support_desk):
    raw = _bytes_mail(b"text", subject="Счёт не пришёл".encode("cp1251"))

    result = mail_ingest(raw)

    assert (result.ticket.subject, result.inbound.subject) == ("Счёт не пришёл", "Счёт не пришёл")


# --- attachments ------------------------------------------------------------------------------------


def test_an_attachment_over_the_limit_is_listed_not_kept(support_desk, customer, settings):
    settings.SUPPORT_ATTACHMENT_MAX_BYTES = 1000
    big, small = b"B" * 1001, b"small file"
    raw = raw_mail(
        attachments=[
            ("dump.bin", "application/octet-stream", big),
            ("notes.txt", "text/plain", small),
        ]
    )

    result = mail_ingest(raw)

    message = _stored(result.ticket)
    assert message.body == "Здравствуйте! Почта не отправляется с утра."
    assert list(
        message.attachments.values_list("name", "size", "sha256", "file", "dropped_reason")
    ) == [
        ("dump.bin", 1001, "", "", "larger than the limit of 1000 bytes; not kept"),
        (
            "notes.txt",
            10,
            hashlib.sha256(small).hexdigest(),
            f"tickets/{hashlib.sha256(small).hexdigest()[:2]}/{hashlib.sha256(small).hexdigest()}",
            "",
        ),
    ]
    assert default_storage.open(Attachment.objects.get(name="notes.txt").file.name).read() == small
    assert bytes(result.inbound.raw) == raw


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("<script>alert(1)</script>.html", "script_.html"),
        ("report\r\n.pdf", "report_.pdf"),
        ("", "attachment"),
        ("...", "attachment"),
        ("счёт «42».pdf", "счёт «42».pdf"),
        ("a" * 300 + ".pdf", "a" * 146 + ".pdf"),
        ("bad\udcff.txt", "bad_.txt"),
    ],
)
def test_attachment_names_become_inert(sent, stored):
    assert safe_name(sent) == stored


def test_dangerous_attachment_names_in_a_mail_are_stored_inert(support_desk):
    part = (
        b"--b\nContent-Type: application/octet-stream\n"
        b"Content-Disposition: attachment; filename*=utf-8''{name}\n\nx\n"
    )
    names = [
        b"..%2F..%2Fetc%2Fpasswd",
        b"%3Cscript%3Ealert%281%29%3C%2Fscript%3E.html",
        b"report%0D%0A.pdf",
    ]
    body = b"--b\nContent-Type: text/plain\n\nFiles.\n" + b"".join(
        part.replace(b"{name}", name) for name in names
    )
    raw = _bytes_mail(body + b"--b--\n", content_type='multipart/mixed; boundary="b"')

    message = _stored(mail_ingest(raw).ticket)

    assert list(message.attachments.values_list("name", flat=True)) == [
        "passwd",
        "script_.html",
        "report_.pdf",
    ]
    assert {a.file.name for a in message.attachments.all()} == {
        f"tickets/{hashlib.sha256(b'x').hexdigest()[:2]}/{hashlib.sha256(b'x').hexdigest()}"
    }


# --- HTML ------------------------------------------------------------------------------------------

DANGEROUS_HTML = (
    '<html><head><style>body{display:none}</style><script>alert("head")</script></head>'
    '<body onload="alert(1)"><p class="x" onclick="steal()">Hello <b>there</b></p>'
    '<script>alert("body")</script><img src="x" onerror="alert(2)">'
    '<a href="javascript:alert(3)">click</a> <a href="https://help.example/kb">help</a>'
    '<iframe src="https://evil.example/"></iframe><form action="https://evil.example/">'
    '<input name="password"></form><a href="JaVaScRiPt:alert(4)" onmouseover="x()">x</a>'
    "</body></html>"
)


def test_html_mail_is_sanitised():
    assert sanitize_html(DANGEROUS_HTML) == (
        "<p>Hello <b>there</b></p>"
        '<a rel="noopener noreferrer nofollow">click</a> '
        '<a href="https://help.example/kb" rel="noopener noreferrer nofollow">help</a>'
        '<a rel="noopener noreferrer nofollow">x</a>'
    )


def test_the_ticket_page_never_runs_script_from_a_mail(support_desk, customer, agent, signed_in):
    raw = raw_mail(body="Plain part <script>alert('text')</script>", html=DANGEROUS_HTML)
    ticket = mail_ingest(raw).ticket
    message = _stored(ticket)
    for piece in ("<script", "onerror", "onclick", "onload", "javascript:", "<iframe", "<style"):
        assert piece not in message.body_html.lower()

    response = signed_in(agent).get(f"/support/t/{ticket.number}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>alert" not in page
    assert "Plain part &lt;script&gt;alert(&#x27;text&#x27;)&lt;/script&gt;" in page
    assert "<p>Hello <b>there</b></p>" in page


def test_an_html_only_mail_gets_a_text_body(support_desk, customer):
    raw = _bytes_mail(
        b"<p>First line<br>second line</p><script>alert(1)</script><p>Bye</p>",
        content_type="text/html; charset=utf-8",
    )

    message = _stored(mail_ingest(raw).ticket)

    assert message.body == "First line\nsecond line\nBye"
    assert message.body_html == "<p>First line<br>second line</p><p>Bye</p>"


# --- the command an MTA pipes mail into -------------------------------------------------------------


def _stdin(monkeypatch, raw: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))


def test_clientbase_mail_ingest_files_a_message_from_standard_input(
    support_desk, customer, monkeypatch
):
    out = io.StringIO()
    _stdin(monkeypatch, raw_mail())
    call_command("mail", "ingest", stdout=out)
    assert out.getvalue() == "ticket #000001\n"

    # A redelivery says so and files nothing
    again = io.StringIO()
    _stdin(monkeypatch, raw_mail())
    call_command("mail", "ingest", "--department", "billing@clientbase.test", stdout=again)
    assert again.getvalue() == "duplicate #000001 (seen before)\n"
    assert Ticket.objects.get().department == support_desk["technical"]


def test_clientbase_mail_ingest_files_into_the_department_named(support_desk, monkeypatch):
    out = io.StringIO()
    _stdin(monkeypatch, raw_mail(to="someone@else.example"))

    call_command("mail", "ingest", "--department", "Billing questions", stdout=out)

    assert out.getvalue() == "ticket #000001\n"
    assert Ticket.objects.get().department == support_desk["billing"]


@pytest.mark.parametrize(
    ("raw", "args", "error"),
    [
        (b"", [], "No message on standard input."),
        (b"  \n\n", [], "No message on standard input."),
        (b"Subject: x\n\ny\n", ["--department", "Sales"], "No department named 'Sales'."),
    ],
)
def test_clientbase_mail_ingest_refuses_bad_input(support_desk, monkeypatch, raw, args, error):
    _stdin(monkeypatch, raw)

    with pytest.raises(CommandError, match=error):
        call_command("mail", "ingest", *args, stdout=io.StringIO())

    assert InboundMail.objects.count() == 0
