"""Polling a real IMAP mailbox (SUP-2) on the throwaway Dovecot of tests/support/dovecot/."""

import imaplib
import re
import socket
import uuid

import pytest
from django.db import transaction

from clientbase.support import intake
from clientbase.support.imap import PollResult, poll_all, poll_mailbox
from clientbase.support.intake import mail_ingest
from clientbase.support.models import InboundMail, Ticket, TicketMessage
from clientbase.support.services import department_save

from .conftest import raw_mail

HOST, PORT = "127.0.0.1", 10143
USER, PASSWORD = "support@clientbase.test", "support-secret"


def _dovecot_answers() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=2) as connection:
            connection.settimeout(2)
            return connection.recv(4) == b"* OK"
    except OSError:
        return False


if not _dovecot_answers():
    pytest.skip(
        f"Dovecot not running on {HOST}:{PORT}: run tests/support/dovecot/start.sh",
        allow_module_level=True,
    )

pytestmark = pytest.mark.django_db


class Mailbox:
    """A folder of its own on the Dovecot for one test, filled the way a mail server does."""

    def __init__(self):
        self.folder = f"test-{uuid.uuid4().hex[:12]}"
        self.imap = imaplib.IMAP4(HOST, PORT, timeout=10)
        self.imap.login(USER, PASSWORD)
        status, answer = self.imap.create(self.folder)
        assert status == "OK", answer

    def deliver(self, raw: bytes, flags: str = "") -> None:
        # Over IMAP every message travels with CRLF line ends, as from a real server.
        message = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        status, answer = self.imap.append(self.folder, flags or None, None, message)
        assert status == "OK", answer

    def flags(self) -> list[set[str]]:
        """Each message's flags, in the order they arrived."""
        self.imap.select(self.folder, readonly=True)
        status, data = self.imap.uid("fetch", "1:*", "(FLAGS)")
        assert status == "OK", data
        self.imap.unselect()
        # \Recent only says whether a session saw the message first: not ours to check.
        return [
            set(re.search(rb"FLAGS \(([^)]*)\)", line).group(1).decode().split()) - {"\\Recent"}
            for line in data
            if line
        ]

    def close(self) -> None:
        self.imap.delete(self.folder)
        self.imap.logout()


@pytest.fixture
def mailbox():
    """An empty IMAP folder, removed after the test."""
    box = Mailbox()
    yield box
    box.close()


@pytest.fixture
def department(support_desk, mailbox):
    """The technical support department polling the test's folder."""
    return department_save(
        by=None,
        department=support_desk["technical"],
        imap_enabled=True,
        imap_host=HOST,
        imap_port=PORT,
        imap_ssl=False,
        imap_user=USER,
        imap_password=PASSWORD,
        imap_folder=mailbox.folder,
    )


def _three_mails() -> list[bytes]:
    return [
        raw_mail(),
        raw_mail(
            subject="Re: [#000001] Не работает почта",
            body="Добавлю подробности.",
            message_id="<second@vms-group.ru>",
        ),
        raw_mail(sender="anna@other.example", subject="Счёт", message_id="<anna@other.example>"),
    ]


def test_a_poll_files_each_new_message_and_marks_it_seen(department, customer, mailbox):
    # Given three new messages: a new ticket, a reply to it, and another customer's mail
    for raw in _three_mails():
        mailbox.deliver(raw)

    # When the mailbox is polled
    result = poll_mailbox(department)

    # Then each is filed, and each is marked seen on the server
    assert result == PollResult("Technical support", 3, 2, 1, 0, 0, error="", failed=0)
    assert list(Ticket.objects.order_by("number").values_list("number", "email")) == [
        ("000001", "ivan@vms-group.ru"),
        ("000002", "anna@other.example"),
    ]
    assert list(
        TicketMessage.objects.filter(kind="customer")
        .order_by("id")
        .values_list("ticket__number", "body")
    ) == [
        ("000001", "Здравствуйте! Почта не отправляется с утра."),
        ("000001", "Добавлю подробности."),
        ("000002", "Здравствуйте! Почта не отправляется с утра."),
    ]
    assert set(InboundMail.objects.values_list("via", flat=True)) == {"imap"}
    assert all("\\Seen" in flags for flags in mailbox.flags())

    # And a second poll files nothing new
    again = poll_mailbox(department)
    assert again == PollResult("Technical support", 0, 0, 0, 0, 0)
    assert (Ticket.objects.count(), InboundMail.objects.count()) == (2, 3)


def test_a_message_already_read_is_left_alone(department, mailbox):
    mailbox.deliver(raw_mail(), flags="(\\Seen)")

    assert poll_mailbox(department) == PollResult("Technical support", 0, 0, 0, 0, 0)
    assert Ticket.objects.count() == 0


def test_a_message_piped_in_before_is_not_filed_again_from_the_mailbox(department, mailbox):
    # The MTA pipes a copy in and keeps one in the mailbox too
    mail_ingest(raw_mail(), via="pipe")
    mailbox.deliver(raw_mail())

    result = poll_mailbox(department)

    assert result == PollResult("Technical support", 1, 0, 0, 1, 0)
    assert (Ticket.objects.count(), InboundMail.objects.count()) == (1, 1)
    assert mailbox.flags() == [{"\\Seen"}]


@pytest.mark.parametrize("when", ["before the commit", "after the commit"])
def test_a_poll_killed_midway_and_rerun_files_each_message_once(
    department, customer, mailbox, monkeypatch, when
):
    # Given three new messages, and a worker that dies while filing them: inside the batch's
    # transaction, or after it committed but before the messages were marked seen
    for raw in _three_mails():
        mailbox.deliver(raw)
    real_batch = intake.mail_ingest_batch

    def dies(raws, **kwargs):
        if when == "before the commit":
            with transaction.atomic():
                real_batch(raws[:2], **kwargs)  # filed, but never committed
                raise KeyboardInterrupt  # the process is stopped: nothing of it is caught
        real_batch(raws, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(intake, "mail_ingest_batch", dies)
    with pytest.raises(KeyboardInterrupt):
        poll_mailbox(department)
    assert InboundMail.objects.count() == (0 if when == "before the commit" else 3)
    assert mailbox.flags() == [set(), set(), set()]

    # When the poll runs again
    monkeypatch.setattr(intake, "mail_ingest_batch", real_batch)
    result = poll_mailbox(department)

    # Then the rest is filed, the messages filed already are seen as such, nothing twice
    if when == "before the commit":
        assert result == PollResult("Technical support", 3, 2, 1, 0, 0)
    else:
        assert result == PollResult("Technical support", 3, 0, 0, 3, 0)
    assert (Ticket.objects.count(), InboundMail.objects.count()) == (2, 3)
    assert TicketMessage.objects.filter(kind="customer").count() == 3
    assert all("\\Seen" in flags for flags in mailbox.flags())


def test_a_message_that_fails_to_file_does_not_hold_up_the_others(
    department, customer, mailbox, monkeypatch
):
    # Given three messages, the second of which cannot be filed (a bug, a database hiccup)
    for raw in _three_mails():
        mailbox.deliver(raw)
    real_file = intake._Intake._file

    def fails_at_the_second(self, received, key):
        if received.parsed.message_id == "<second@vms-group.ru>":
            TicketMessage.objects.create(ticket=Ticket.objects.get(), kind="note", body="half")
            raise RuntimeError("database went away")
        return real_file(self, received, key)

    monkeypatch.setattr(intake._Intake, "_file", fails_at_the_second)

    # When polled, the others are filed and the failing one stays unseen for next time,
    # with nothing of it left behind
    result = poll_mailbox(department)
    assert result == PollResult("Technical support", 3, 2, 0, 0, 0, failed=1)
    assert mailbox.flags() == [{"\\Seen"}, set(), {"\\Seen"}]
    assert TicketMessage.objects.filter(kind="note").count() == 0
    assert InboundMail.objects.count() == 2

    # And the next poll files it
    monkeypatch.setattr(intake._Intake, "_file", real_file)
    assert poll_mailbox(department) == PollResult("Technical support", 1, 0, 1, 0, 0)
    assert TicketMessage.objects.filter(kind="customer").count() == 3


def test_a_wrong_password_is_reported_not_raised(department, mailbox):
    mailbox.deliver(raw_mail())
    department.imap_password = "not-the-password"

    result = poll_mailbox(department)

    assert result == PollResult(
        "Technical support",
        0,
        0,
        0,
        0,
        0,
        error="[AUTHENTICATIONFAILED] Authentication failed.",
    )
    assert (Ticket.objects.count(), InboundMail.objects.count()) == (0, 0)
    assert mailbox.flags() == [set()]


def test_a_missing_folder_is_reported(department):
    department.imap_folder = "No Such Folder"

    result = poll_mailbox(department)

    assert (result.fetched, result.error) == (0, "no folder No Such Folder")


def test_a_server_that_does_not_answer_is_reported(department):
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        department.imap_port = probe.getsockname()[1]

    result = poll_mailbox(department)

    assert result.fetched == 0
    assert "refused" in result.error.lower()


def test_poll_all_sums_up_each_mailbox(department, customer, mailbox, support_desk):
    mailbox.deliver(raw_mail())
    department_save(
        by=None,
        department=support_desk["billing"],
        imap_enabled=True,
        imap_host=HOST,
        imap_port=PORT,
        imap_ssl=False,
        imap_user=USER,
        imap_password="wrong",
        imap_folder=mailbox.folder,
    )

    summary = poll_all()

    assert sorted(summary.split("; ")) == [
        "Billing questions: [AUTHENTICATIONFAILED] Authentication failed.",
        "Technical support: 1 fetched, 1 new tickets, 0 replies, 0 seen before, 0 ignored",
    ]
