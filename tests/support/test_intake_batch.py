"""Mail intake in batches (SUP-2): one transaction for many mails, each filed exactly once,
one bad mail losing none of the others, history as complete as one mail at a time."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clientbase.core.models import AuditEntry, Event, NumberSeries
from clientbase.support import services
from clientbase.support.intake import mail_ingest, mail_ingest_batch
from clientbase.support.mailparse import parse_mail
from clientbase.support.models import Attachment, InboundMail, Ticket, TicketMessage

from .conftest import raw_mail

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Attachments land in the test's own directory."""
    settings.MEDIA_ROOT = tmp_path / "media"


def _anna(n: int, **kwargs) -> bytes:
    return raw_mail(
        sender="Anna <anna@other.example>",
        subject=f"Счёт {n}",
        message_id=f"<anna{n}@other.example>",
        **kwargs,
    )


def _history() -> tuple[list, list]:
    tickets = ContentType.objects.get_for_model(Ticket)
    audit = list(
        AuditEntry.objects.filter(object_type=tickets)
        .order_by("id")
        .values_list("action", "object_repr")
    )
    events = list(
        Event.objects.filter(type__startswith="ticket.")
        .order_by("id")
        .values_list("type", "reference")
    )
    return audit, events


def test_a_batch_files_tickets_and_replies_with_their_history(
    support_desk, customer, outbox, django_capture_on_commit_callbacks
):
    # Given a batch: a new ticket, a reply to it by In-Reply-To, one by its subject tag,
    # and another customer's new ticket with an attachment
    raws = [
        raw_mail(),
        raw_mail(
            subject="Re: Не работает почта",
            body="Добавлю: с телефона тоже.",
            message_id="<second@vms-group.ru>",
            headers={"In-Reply-To": "<first@vms-group.ru>"},
        ),
        raw_mail(subject="[#000001] и ещё", body="Третье.", message_id="<third@vms-group.ru>"),
        _anna(1, attachments=[("scan.pdf", "application/pdf", b"%PDF-1.4 scan")]),
    ]

    # When it is filed
    with django_capture_on_commit_callbacks(execute=True):
        results = mail_ingest_batch(raws, via="imap")

    # Then the replies sit in the ticket opened earlier in the same batch
    assert [(r.outcome, r.ticket.number) for r in results] == [
        ("ticket", "000001"),
        ("reply", "000001"),
        ("reply", "000001"),
        ("ticket", "000002"),
    ]
    first, anna = Ticket.objects.order_by("number")
    assert (first.status, first.version, first.client, anna.client) == (
        "customer_reply",
        3,
        customer,
        None,
    )
    assert list(
        TicketMessage.objects.order_by("id").values_list(
            "ticket__number", "kind", "auto_generated", "message_id"
        )
    ) == [
        ("000001", "customer", False, "<first@vms-group.ru>"),
        ("000001", "reply", True, first.messages.get(kind="reply").message_id),
        ("000001", "customer", False, "<second@vms-group.ru>"),
        ("000001", "customer", False, "<third@vms-group.ru>"),
        ("000002", "customer", False, "<anna1@other.example>"),
        ("000002", "reply", True, anna.messages.get(kind="reply").message_id),
    ]
    assert [r.message.pk for r in results] == list(
        TicketMessage.objects.filter(kind="customer").order_by("id").values_list("pk", flat=True)
    )
    assert list(
        InboundMail.objects.order_by("id").values_list("key", "via", "outcome", "ticket__number")
    ) == [
        ("<first@vms-group.ru>", "imap", "ticket", "000001"),
        ("<second@vms-group.ru>", "imap", "reply", "000001"),
        ("<third@vms-group.ru>", "imap", "reply", "000001"),
        ("<anna1@other.example>", "imap", "ticket", "000002"),
    ]
    assert list(Attachment.objects.values_list("message__message_id", "name", "size")) == [
        ("<anna1@other.example>", "scan.pdf", 13)
    ]
    # And the history is what one mail at a time writes: an audit entry per ticket, an
    # event per ticket and per reply
    assert _history() == (
        [("create", "#000001 Не работает почта"), ("create", "#000002 Счёт 1")],
        [
            ("ticket.opened", "000001"),
            ("ticket.customer_reply", "000001"),
            ("ticket.customer_reply", "000001"),
            ("ticket.opened", "000002"),
        ],
    )
    assert NumberSeries.objects.get(key="ticket").next_value == 3
    # And each acknowledgement went out once, after the commit
    assert sorted(m.subject for m in outbox) == [
        "[#000001] Не работает почта",
        "[#000002] Счёт 1",
    ]


def test_the_history_of_a_batch_matches_one_mail_at_a_time(support_desk, customer, agent):
    raws = [raw_mail(), _anna(1), raw_mail(subject="[#000001] ещё", message_id="<x@vms-group.ru>")]
    ticket = mail_ingest_batch(raws)[0].ticket
    batch_audit = AuditEntry.objects.get(object_id=str(ticket.pk), object_type__model="ticket")
    batch_event = Event.objects.filter(type="ticket.opened").order_by("id").first()

    # The same first mail filed alone in a fresh ticket writes the same entry
    single = mail_ingest(raw_mail(message_id="<alone@vms-group.ru>")).ticket
    single_audit = AuditEntry.objects.get(object_id=str(single.pk), object_type__model="ticket")
    single_event = Event.objects.filter(type="ticket.opened").order_by("id").last()

    def same(changes: dict) -> dict:
        # Only the number, the secret link key and the times differ between two tickets.
        return {k: v for k, v in changes.items() if k not in {"number", "created_at", "due_at"}}

    assert same(batch_audit.changes) == same(single_audit.changes)
    assert set(batch_audit.changes) == set(single_audit.changes)
    assert (batch_audit.actor, batch_audit.org_unit_id) == (None, customer.org_unit_id)
    assert (batch_event.client, batch_event.details, batch_event.subject_id) == (
        customer,
        {"subject": "Не работает почта"},
        str(ticket.pk),
    )
    assert (single_event.client, single_event.subject_id) == (customer, str(single.pk))


def test_a_duplicate_inside_a_batch_and_one_stored_before_file_nothing_twice(
    support_desk, customer
):
    # Given a mail stored before
    stored = mail_ingest(_anna(1), via="pipe")

    # When a batch brings it again, and another mail twice (IMAP relays add CRLF)
    results = mail_ingest_batch(
        [_anna(1), raw_mail(), raw_mail().replace(b"\n", b"\r\n"), _anna(2)], via="imap"
    )

    # Then each is filed once; the repeats are duplicates pointing at the first filing
    assert [(r.outcome, r.reason) for r in results] == [
        ("duplicate", "seen before"),
        ("ticket", ""),
        ("duplicate", "seen before"),
        ("ticket", ""),
    ]
    assert results[0].inbound == stored.inbound and results[0].ticket == stored.ticket
    assert results[2].inbound == results[1].inbound and results[2].ticket == results[1].ticket
    assert (Ticket.objects.count(), InboundMail.objects.count()) == (3, 3)
    assert TicketMessage.objects.filter(kind="customer").count() == 3
    assert Event.objects.filter(type="ticket.opened").count() == 3


def test_a_mail_that_fails_among_good_ones_loses_none_of_them(support_desk, customer, monkeypatch):
    # Given a batch whose second mail fails after its ticket was written
    real = services._customer_message

    def fails_on_boom(ticket, **kwargs):
        if kwargs["body"] == "BOOM":
            raise RuntimeError("disk full")
        return real(ticket, **kwargs)

    monkeypatch.setattr(services, "_customer_message", fails_on_boom)
    raws = [raw_mail(), _anna(1, body="BOOM"), _anna(2), raw_mail(subject="[#000001] ещё")]
    raws[3] = raw_mail(subject="[#000001] ещё", message_id="<more@vms-group.ru>")

    # When the batch is filed
    results = mail_ingest_batch(raws)

    # Then the bad mail alone is rolled back, with its ticket and its number
    assert [r.outcome for r in results] == ["ticket", "failed", "ticket", "reply"]
    assert (results[1].reason, type(results[1].error)) == ("disk full", RuntimeError)
    assert (results[1].inbound, results[1].ticket) == (None, None)
    assert list(Ticket.objects.order_by("number").values_list("number", "email")) == [
        ("000001", "ivan@vms-group.ru"),
        ("000002", "anna@other.example"),
    ]
    assert list(InboundMail.objects.order_by("id").values_list("key", flat=True)) == [
        "<first@vms-group.ru>",
        "<anna2@other.example>",
        "<more@vms-group.ru>",
    ]
    assert TicketMessage.objects.filter(kind="customer").count() == 3
    assert TicketMessage.objects.filter(kind="reply", auto_generated=True).count() == 2
    assert [t for t, _r in _history()[1]] == [
        "ticket.opened",
        "ticket.opened",
        "ticket.customer_reply",
    ]
    assert NumberSeries.objects.get(key="ticket").next_value == 3

    # And delivered again, it is filed (not taken for a duplicate)
    monkeypatch.setattr(services, "_customer_message", real)
    assert mail_ingest(_anna(1, body="BOOM")).ticket.number == "000003"


def test_a_reply_that_fails_leaves_its_ticket_as_it_was(support_desk, customer, monkeypatch):
    real_message, real_wrote = services._customer_message, services._customer_wrote
    current = []
    calls = []

    def message(ticket, **fields):
        current.append(fields["message_fields"]["message_id"])
        return real_message(ticket, **fields)

    def fails_after_changing(ticket, now):
        real_wrote(ticket, now)  # the ticket's row is written, then reply "b" fails
        calls.append(ticket.version)
        if current[-1] == "<b@vms-group.ru>":
            raise RuntimeError("lost")
        return False

    monkeypatch.setattr(services, "_customer_message", message)
    monkeypatch.setattr(services, "_customer_wrote", fails_after_changing)
    results = mail_ingest_batch(
        [
            raw_mail(),
            raw_mail(subject="[#000001] a", message_id="<a@vms-group.ru>"),
            raw_mail(subject="[#000001] b", message_id="<b@vms-group.ru>"),
            raw_mail(subject="[#000001] c", message_id="<c@vms-group.ru>"),
        ]
    )

    assert [r.outcome for r in results] == ["ticket", "reply", "failed", "reply"]
    # Filed whole first (a, then b fails: all rolled back), then with a savepoint each,
    # where the reply after the failed one counts from the row as it was
    assert calls == [2, 3, 2, 3, 3]
    ticket = Ticket.objects.get()
    assert (ticket.version, ticket.status) == (3, "customer_reply")
    assert list(ticket.messages.filter(kind="customer").values_list("message_id", flat=True)) == [
        "<first@vms-group.ru>",
        "<a@vms-group.ru>",
        "<c@vms-group.ru>",
    ]


def test_a_batch_whose_bulk_writes_fail_is_filed_one_by_one(support_desk, customer, monkeypatch):
    # Given bulk writes that fail whenever a poisoned message is among them
    real = services.MailBatch.finish

    def finish(self):
        if any(m.body == "poison" for m in self.messages):
            raise ValueError("cannot store this")
        real(self)

    monkeypatch.setattr(services.MailBatch, "finish", finish)

    results = mail_ingest_batch([raw_mail(), _anna(1, body="poison"), _anna(2)])

    assert [r.outcome for r in results] == ["ticket", "failed", "ticket"]
    assert list(Ticket.objects.order_by("number").values_list("number", "email")) == [
        ("000001", "ivan@vms-group.ru"),
        ("000002", "anna@other.example"),
    ]
    assert InboundMail.objects.count() == 2


def test_acknowledgements_are_queued_only_after_the_commit(
    support_desk, customer, outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        results = mail_ingest_batch(
            [raw_mail(), _anna(1), _anna(2, headers={"Precedence": "bulk"})]
        )

        # Inside the transaction the acknowledgements are written, none is sent
        acks = TicketMessage.objects.filter(kind="reply", auto_generated=True)
        assert [(a.ticket.number, a.sent_at) for a in acks.order_by("id")] == [
            ("000001", None),
            ("000002", None),
        ]
        assert outbox == []

    # One callback queues them all once the transaction commits
    assert len(callbacks) == 1
    callbacks[0]()
    assert sorted(m.to[0] for m in outbox) == ["anna@other.example", "ivan@vms-group.ru"]
    assert [r.outcome for r in results] == ["ticket", "ticket", "ticket"]
    assert all(a.sent_at for a in TicketMessage.objects.filter(kind="reply"))


def test_the_acknowledgement_limit_counts_the_batch_too(support_desk, customer, settings):
    settings.SUPPORT_AUTOREPLY_PER_HOUR = 2
    mail_ingest(_anna(1))

    mail_ingest_batch([_anna(2), _anna(3), _anna(4)])

    assert list(
        Ticket.objects.order_by("number").values_list("number", "messages__auto_generated")
    ) == [
        ("000001", False),
        ("000001", True),
        ("000002", False),
        ("000002", True),
        ("000003", False),
        ("000004", False),
    ]


def test_an_empty_batch_files_nothing(support_desk):
    assert mail_ingest_batch([]) == []
    assert InboundMail.objects.count() == 0


def test_a_large_batch_is_filed_in_transactions_of_a_hundred(
    support_desk, customer, django_assert_max_num_queries
):
    # 150 mails: half open tickets, half answer them by the subject tag
    raws = []
    for n in range(75):
        raws.append(_anna(n))
        raws.append(
            raw_mail(
                sender="anna@other.example",
                subject=f"[#{n + 1:06d}] Re",
                message_id=f"<re{n}@other.example>",
            )
        )

    with django_assert_max_num_queries(150 * 6):
        results = mail_ingest_batch(raws)

    assert [r.outcome for r in results] == ["ticket", "reply"] * 75
    assert all(r.ticket.number == f"{n // 2 + 1:06d}" for n, r in enumerate(results))
    assert Event.objects.filter(type__startswith="ticket.").count() == 150
    assert NumberSeries.objects.get(key="ticket").next_value == 76


def test_a_large_batch_read_half_in_a_second_process_is_filed_the_same(support_desk, customer):
    # Given 24 mails: Russian in KOI8-R without a charset, HTML, attachments, garbage
    raws = [
        _anna(n, html="<p>Hi<script>x()</script></p>", attachments=[("a.txt", "text/plain", b"a")])
        for n in range(20)
    ]
    raws += [
        b"From: ivan@vms-group.ru\nSubject: koi\nMessage-ID: <koi@x>\n\n"
        + "Здравствуйте! Почта не отправляется с утра.".encode("koi8-r"),
        bytes(range(256)),
        raw_mail(),
        raw_mail(subject="[#000021] ещё", message_id="<more@vms-group.ru>"),
    ]
    expected = [parse_mail(raw) for raw in raws]

    # When the batch is read half here, half in the helper process
    results = mail_ingest_batch(raws, parallel=True)

    # Then every mail reads as it does here, and files the same way
    assert [r.outcome for r in results] == ["ticket"] * 23 + ["reply"]
    assert [(r.message.body, r.message.body_html, r.message.problems) for r in results] == [
        (m.text or "(empty message)", m.html, m.problems) for m in expected
    ]
    assert Attachment.objects.count() == 20


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL storage setting")
def test_received_mail_is_stored_without_a_compression_attempt():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute"
            " WHERE attrelid = 'support_inboundmail'::regclass AND attname = 'raw'"
        )
        assert cursor.fetchone() == ("e",)


def test_a_batch_that_files_whole_takes_no_savepoint_a_mail(support_desk, customer):
    with CaptureQueriesContext(connection) as queries:
        results = mail_ingest_batch(
            [
                raw_mail(),
                raw_mail(subject="[#000001] a", message_id="<a@vms-group.ru>"),
                raw_mail(subject="Another matter", message_id="<n@vms-group.ru>"),
            ]
        )

    assert [r.outcome for r in results] == ["ticket", "reply", "ticket"]
    savepoints = [q["sql"] for q in queries if q["sql"].startswith("SAVEPOINT")]
    # The batch's transaction and the number series' reservation: once a batch, not a mail
    assert len(savepoints) == 2
