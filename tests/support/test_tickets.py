"""Ticket services: opening, deadlines and escalation, replies and notes, routing, merging,
statuses, complaints, contact change notes and reply templates (SUP-1, 3, 4, 5, ACT-1)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.urls import reverse

from clientbase.clients.models import Note
from clientbase.clients.services import client_create, client_delete, contact_add
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.models import Event
from clientbase.support import queries, services
from clientbase.support.mail import rating_token, ticket_for_rating
from clientbase.support.models import Attachment, ReplyTemplate, Ticket, TicketMessage

pytestmark = pytest.mark.django_db

NINE = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def at(hours: int, minutes: int = 0, seconds: int = 0) -> dt.datetime:
    """A moment of the test day, 2 November 2026 (UTC)."""
    return NINE.replace(hour=hours, minute=minutes, second=seconds)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Attachments are stored under a temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def clock(time_machine):
    """Move the clock to a moment of the test day; it stands still there."""

    def move(moment: dt.datetime) -> dt.datetime:
        time_machine.move_to(moment, tick=False)
        return moment

    move(NINE)
    return move


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run the block and then what it left for after commit (mail tasks)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def colleague(make_user):
    """A second support agent."""
    return make_user("oleg", role="support", unit="company", first_name="Oleg", last_name="Smirnov")


def customer_ticket(department, *, subject="Не работает почта", email="ivan@vms-group.ru",
                    body="Почта не отправляется с утра.", priority="medium", msgid="<q1@vms-group.ru>",
                    **extra) -> Ticket:  # fmt: skip
    """A ticket as the customer's mail opens it: it waits for our answer."""
    return services.ticket_open(
        by=None,
        department=department,
        subject=subject,
        body=body,
        email=email,
        priority=priority,
        source=Ticket.Source.EMAIL,
        from_customer=True,
        message_fields={"message_id": msgid},
        **extra,
    )


def counts() -> tuple[int, int, int]:
    return Ticket.objects.count(), TicketMessage.objects.count(), Attachment.objects.count()


def state(ticket: Ticket) -> tuple:
    ticket.refresh_from_db()
    return ticket.status, ticket.owner, ticket.due_at, ticket.version


# --- opening ----------------------------------------------------------------------------------


def test_staff_open_a_ticket_for_a_client_and_the_first_message_is_mailed(
    support_desk, customer, agent, outbox, committed, clock
):
    # When the agent opens a ticket for the client
    with committed():
        ticket = services.ticket_open(
            by=agent,
            department=support_desk["technical"],
            client=customer,
            subject="  Настройка\n   почты ",
            body="Добрый день! Высылаем настройки почты.",
        )
        # Then nothing is mailed before the transaction commits
        assert outbox == []

    # Then the ticket is the client's, answered: the customer has our message
    ticket.refresh_from_db()
    assert (
        ticket.number, ticket.client, ticket.contact, ticket.email, ticket.name, ticket.subject,
        ticket.status, ticket.source, ticket.priority, ticket.owner, ticket.due_at,
        ticket.org_unit_id, ticket.created_at, ticket.version, ticket.cc, ticket.is_complaint,
    ) == (
        "000001", customer, None, "ivan@vms-group.ru", 'ООО "ВМС-ГРУПП"', "Настройка почты",
        "answered", "staff", "medium", None, None,
        customer.org_unit_id, NINE, 1, [], False,
    )  # fmt: skip
    message = ticket.messages.get()
    assert (
        message.kind, message.author, message.from_email, message.to, message.cc,
        message.body, message.auto_generated, message.sent_at,
    ) == (
        "reply", agent, "support@clientbase.test", ["ivan@vms-group.ru"], [],
        "Добрый день! Высылаем настройки почты.", False, NINE,
    )  # fmt: skip
    # and it was mailed once, threaded by its own Message-ID
    assert len(outbox) == 1
    sent = outbox[0]
    assert (sent.to, sent.cc, sent.subject, sent.body) == (
        ["ivan@vms-group.ru"],
        [],
        "[#000001] Настройка почты",
        "Добрый день! Высылаем настройки почты.",
    )
    assert sent.extra_headers["Message-ID"] == message.message_id
    assert sent.extra_headers["X-Clientbase-Ticket"] == "000001"
    assert "Auto-Submitted" not in sent.extra_headers
    assert "In-Reply-To" not in sent.extra_headers
    assert Event.objects.filter(type="ticket.opened", client=customer).count() == 1

    # When a second ticket is opened, it takes the next number
    second = services.ticket_open(
        by=agent,
        department=support_desk["billing"],
        client=customer,
        subject="Счёт",
        body="Вот счёт.",
    )
    assert second.number == "000002"


def test_a_ticket_for_a_guest_by_email(support_desk, agent, org, outbox, committed, clock):
    with committed():
        ticket = services.ticket_open(
            by=agent,
            department=support_desk["billing"],
            email="  Guest@Example.ORG ",
            name="  Анна   Ким ",
            subject="Вопрос по тарифу",
            body="Расскажите о тарифах.",
            priority="high",
            assignee=agent,
        )
    ticket.refresh_from_db()
    assert (
        ticket.number, ticket.client, ticket.email, ticket.name, ticket.department,
        ticket.org_unit_id, ticket.owner, ticket.priority, ticket.status,
    ) == (
        "000001", None, "guest@example.org", "Анна Ким", support_desk["billing"],
        org["company"].pk, agent, "high", "answered",
    )  # fmt: skip
    assert [(m.to, m.subject) for m in outbox] == [
        (["guest@example.org"], "[#000001] Вопрос по тарифу")
    ]


def test_a_guest_address_that_belongs_to_a_client_or_a_contact_files_under_the_client(
    support_desk, customer, agent, make_user
):
    contact = contact_add(
        client=customer, by=agent, last_name="Петров", first_name="Пётр", email="petr@vms-group.ru"
    )
    by_client = services.ticket_open(
        by=agent, department=support_desk["technical"], email="IVAN@vms-group.ru",
        subject="Первый", body="Текст.",
    )  # fmt: skip
    by_contact = services.ticket_open(
        by=agent, department=support_desk["technical"], email="petr@vms-group.ru",
        subject="Второй", body="Текст.",
    )  # fmt: skip
    assert (by_client.client, by_client.contact, by_client.email) == (
        customer, None, "ivan@vms-group.ru",
    )  # fmt: skip
    assert (by_contact.client, by_contact.contact, by_contact.name) == (
        customer, contact, str(contact),
    )  # fmt: skip


def test_a_deleted_clients_address_opens_a_guest_ticket_or_the_new_clients(
    support_desk, customer, agent, make_user
):
    # Given the client was deleted, and later a new client took the same address
    seller = customer.owner
    client_delete(client=customer, reason="Дубликат", by=seller)
    guest = services.ticket_open(
        by=agent, department=support_desk["technical"], email="ivan@vms-group.ru",
        subject="После удаления", body="Текст.",
    )  # fmt: skip
    successor = client_create(
        by=seller, name="ВМС-ГРУПП 2", email="ivan@vms-group.ru", country="RU"
    )
    filed = services.ticket_open(
        by=agent, department=support_desk["technical"], email="ivan@vms-group.ru",
        subject="Новый клиент", body="Текст.",
    )  # fmt: skip
    # Then the deleted client gets no new tickets; the live one with the address does
    assert (guest.client, filed.client) == (None, successor)


def test_cc_is_cleaned_and_mailed(support_desk, customer, agent, outbox, committed, clock):
    with committed():
        ticket = services.ticket_open(
            by=agent, department=support_desk["technical"], client=customer, subject="Копия",
            body="Текст.", cc="Anna@vms-group.ru; boss@vms-group.ru,\nanna@vms-group.ru, ",
        )  # fmt: skip
    ticket.refresh_from_db()
    assert ticket.cc == ["anna@vms-group.ru", "boss@vms-group.ru"]
    assert ticket.messages.get().cc == ["anna@vms-group.ru", "boss@vms-group.ru"]
    assert outbox[0].cc == ["anna@vms-group.ru", "boss@vms-group.ru"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"cc": ["anna@vms-group.ru", "not an address"]}, "cc",
         "not an address is not an email address."),
        ({"cc": [f"u{n}@vms-group.ru" for n in range(21)]}, "cc", "At most 20 addresses."),
        ({"subject": "  \n "}, "subject", "The subject cannot be empty."),
        ({"subject": "x" * 301}, "subject", "The subject can hold at most 300 characters."),
        ({"body": " \x00 "}, "body", "The message cannot be empty."),
        ({"priority": "critical"}, "priority", "Choose a priority."),
        ({"email": "ivan(at)vms-group.ru"}, "email", "ivan(at)vms-group.ru is not an email address."),
    ],
)  # fmt: skip
def test_bad_input_to_open_a_ticket_is_refused_at_its_field_and_nothing_is_saved(
    support_desk, customer, agent, outbox, committed, fields, field, message
):
    given = {"subject": "Тема", "body": "Текст.", "client": customer} | fields
    with committed(), pytest.raises(ServiceError) as refused:
        services.ticket_open(by=agent, department=support_desk["technical"], **given)
    assert refused.value.message_dict == {field: [message]}
    assert counts() == (0, 0, 0)
    assert outbox == []
    # and the number was not used up: the next ticket still gets the first one
    assert (
        services.ticket_open(
            by=agent,
            department=support_desk["technical"],
            client=customer,
            subject="Тема",
            body="Т.",
        ).number
        == "000001"
    )


def test_a_closed_department_another_clients_contact_a_deleted_client_are_refused(
    support_desk, customer, agent
):
    other = client_create(
        by=customer.owner, name="Другая фирма", email="info@other.ru", country="RU"
    )
    stranger = contact_add(client=other, by=agent, last_name="Чужой", email="alien@other.ru")
    closed = services.department_save(by=None, department=support_desk["billing"], active=False)
    cases = [
        ({"department": closed, "client": customer}, "department", "This department is closed."),
        (
            {"department": support_desk["technical"], "client": customer, "contact": stranger},
            "contact",
            "This contact belongs to another client.",
        ),
    ]
    for given, field, message in cases:
        with pytest.raises(ServiceError) as refused:
            services.ticket_open(by=agent, subject="Тема", body="Текст.", **given)
        assert refused.value.message_dict == {field: [message]}
    client_delete(client=other, reason="Закрылись", by=customer.owner)
    other.refresh_from_db()
    with pytest.raises(ServiceError) as refused:
        services.ticket_open(
            by=agent, department=support_desk["technical"], client=other, subject="Т", body="Т"
        )
    assert refused.value.message_dict == {"client": ["This client is no longer in the base."]}
    assert counts() == (0, 0, 0)
    # A guest ticket without any address to answer to is refused too
    with pytest.raises(ServiceError) as refused:
        services.ticket_open(by=agent, department=support_desk["technical"], subject="Т", body="Т")
    assert refused.value.message_dict == {"email": ["Give the email address to answer to."]}
    assert counts() == (0, 0, 0)


def test_attachments_are_stored_and_mailed(support_desk, customer, agent, outbox, committed):
    files = [
        services.NewAttachment("../../etc/отчёт.pdf", "application/pdf", b"%PDF-1.4 report"),
        services.NewAttachment("photo.png", "image/png", b"\x89PNG fake"),
    ]
    with committed():
        ticket = services.ticket_open(
            by=agent, department=support_desk["technical"], client=customer, subject="Файлы",
            body="Во вложении отчёт.", attachments=files,
        )  # fmt: skip
    stored = list(Attachment.objects.filter(message__ticket=ticket).order_by("id"))
    assert [(a.name, a.content_type, a.size, a.dropped_reason) for a in stored] == [
        ("отчёт.pdf", "application/pdf", 15, ""),
        ("photo.png", "image/png", 9, ""),
    ]
    with stored[0].file.open("rb") as kept:
        assert kept.read() == b"%PDF-1.4 report"
    assert outbox[0].attachments == [
        ("отчёт.pdf", b"%PDF-1.4 report", "application/pdf"),
        ("photo.png", b"\x89PNG fake", "image/png"),
    ]


# --- response deadlines (SUP-4) ---------------------------------------------------------------


def test_the_deadline_counts_from_the_customers_message_by_department_and_priority(
    support_desk, clock
):
    technical = customer_ticket(support_desk["technical"], priority="urgent")
    billing = customer_ticket(support_desk["billing"], priority="urgent", msgid="<q2@x.ru>")
    billing_low = customer_ticket(support_desk["billing"], priority="low", msgid="<q3@x.ru>")
    assert (technical.status, technical.due_at) == ("open", at(11))
    assert (billing.due_at, billing_low.due_at) == (at(9, 30), at(11))


def test_a_priority_change_recomputes_the_deadline_from_the_waiting_message(
    support_desk, agent, clock
):
    # Given a billing question at 9:00, answered at 9:20, and the customer writes at 10:30
    ticket = customer_ticket(support_desk["billing"])
    clock(at(9, 20))
    services.ticket_reply(by=agent, ticket=ticket, body="Ответ.")
    clock(at(10, 30))
    services.customer_message_add(ticket=ticket, body="Ещё вопрос.", from_email="ivan@vms-group.ru")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.due_at) == ("customer_reply", at(12, 30))

    # When at 10:40 the agent makes it urgent (30 minutes in billing)
    clock(at(10, 40))
    services.ticket_update(by=agent, ticket=ticket, priority="urgent")

    # Then the deadline counts from the waiting message of 10:30, not from now
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.due_at) == ("urgent", at(11))

    # And back to low: two hours from 10:30 again
    services.ticket_update(by=agent, ticket=ticket, priority="low")
    ticket.refresh_from_db()
    assert ticket.due_at == at(12, 30)


def test_a_priority_change_of_an_answered_ticket_sets_no_deadline(support_desk, agent, clock):
    ticket = customer_ticket(support_desk["billing"])
    services.ticket_reply(by=agent, ticket=ticket, body="Ответ.")
    services.ticket_update(by=agent, ticket=ticket, priority="urgent")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.due_at) == ("urgent", None)


def test_a_transfer_recomputes_the_deadline_by_the_new_departments_rules(
    support_desk, agent, colleague, clock
):
    ticket = customer_ticket(support_desk["technical"], priority="urgent")
    assert ticket.due_at == at(11)
    clock(at(9, 10))
    services.ticket_transfer(
        by=agent, ticket=ticket, department=support_desk["billing"], assignee=colleague
    )
    ticket.refresh_from_db()
    assert (ticket.department, ticket.owner, ticket.due_at, ticket.version) == (
        support_desk["billing"], colleague, at(9, 30), 2,
    )  # fmt: skip
    assert ticket.messages.filter(kind="note").count() == 0


def test_a_reply_clears_the_deadline_the_customer_sets_it_on_hold_clears_it(
    support_desk, agent, clock
):
    ticket = customer_ticket(support_desk["technical"])
    clock(at(9, 45))
    services.ticket_reply(by=agent, ticket=ticket, body="Ответ.")
    assert state(ticket) == ("answered", agent, None, 2)
    clock(at(13, 15))
    services.customer_message_add(ticket=ticket, body="Не помогло.", from_email="ivan@vms-group.ru")
    assert state(ticket) == ("customer_reply", agent, at(15, 15), 3)
    # a second message of the customer keeps the deadline of the first
    clock(at(14))
    services.customer_message_add(ticket=ticket, body="Совсем.", from_email="ivan@vms-group.ru")
    assert state(ticket) == ("customer_reply", agent, at(15, 15), 4)
    services.ticket_set_status(by=agent, ticket=ticket, status="on_hold")
    assert state(ticket) == ("on_hold", agent, None, 5)


def test_escalation_only_flags_an_overdue_ticket_once(support_desk, clock):
    ticket = customer_ticket(support_desk["technical"])
    # not before the deadline, nor at its very minute
    clock(at(10, 59))
    assert services.tickets_escalate() == 0
    clock(at(11))
    assert services.tickets_escalate() == 0
    clock(at(11, 0, 1))
    assert services.tickets_escalate() == 1
    assert state(ticket) == ("open", None, at(11), 2)
    assert ticket.escalated_at == at(11, 0, 1)
    assert Event.objects.filter(type="ticket.escalated").count() == 1
    # a second run does nothing
    clock(at(12))
    assert services.tickets_escalate() == 0
    assert state(ticket) == ("open", None, at(11), 2)
    assert ticket.escalated_at == at(11, 0, 1)
    assert Event.objects.filter(type="ticket.escalated").count() == 1


def test_escalation_reassigns_to_the_escalation_contact(support_desk, agent, make_user, clock):
    lead = make_user("lead", role="support", unit="company", first_name="Lena", last_name="Lead")
    services.department_save(
        by=None, department=support_desk["billing"], escalation="reassign", escalate_to=lead
    )
    ticket = customer_ticket(support_desk["billing"], priority="urgent", assignee=agent)
    untouched = customer_ticket(support_desk["technical"], priority="urgent", msgid="<q2@x.ru>")
    clock(at(9, 31))
    assert services.tickets_escalate() == 1
    assert state(ticket) == ("open", lead, at(9, 30), 2)
    assert (ticket.escalated_at, untouched.escalated_at) == (at(9, 31), None)
    assert services.tickets_escalate() == 0
    assert state(ticket) == ("open", lead, at(9, 30), 2)


def test_escalation_notifies_the_escalation_contact_by_an_automatic_mail(
    support_desk, make_user, outbox, committed, clock
):
    lead = make_user("lead", role="support", unit="company", email="lead@clientbase.test")
    services.department_save(
        by=None, department=support_desk["billing"], escalation="notify", escalate_to=lead
    )
    ticket = customer_ticket(support_desk["billing"], priority="urgent")
    clock(at(9, 31))
    with committed():
        assert services.tickets_escalate() == 1
        assert outbox == []
    assert state(ticket) == ("open", None, at(9, 30), 2)
    assert len(outbox) == 1
    mail = outbox[0]
    assert (mail.to, mail.subject, mail.body) == (
        ["lead@clientbase.test"],
        "Overdue ticket #000001",
        "Ticket #000001 (Не работает почта) in Billing questions has waited past its response "
        f"deadline.\n\n{settings.SITE_URL}/support/t/000001/",
    )
    assert mail.extra_headers["Auto-Submitted"] == "auto-generated"
    # a second run mails nobody
    with committed():
        assert services.tickets_escalate() == 0
    assert len(outbox) == 1


def test_a_reply_ends_the_escalation_and_a_new_wait_can_escalate_again(support_desk, agent, clock):
    ticket = customer_ticket(support_desk["billing"], priority="urgent")
    clock(at(9, 31))
    assert services.tickets_escalate() == 1
    services.ticket_reply(by=agent, ticket=ticket, body="Ответ.")
    ticket.refresh_from_db()
    assert (ticket.due_at, ticket.escalated_at) == (None, None)
    clock(at(10))
    services.customer_message_add(ticket=ticket, body="Снова.", from_email="ivan@vms-group.ru")
    clock(at(10, 31))
    assert services.tickets_escalate() == 1
    ticket.refresh_from_db()
    assert ticket.escalated_at == at(10, 31)


def test_awaiting_overdue_and_my_queue_counts(support_desk, customer, agent, colleague, clock):
    waiting = customer_ticket(support_desk["technical"], msgid="<a@x>")
    answered = customer_ticket(support_desk["technical"], msgid="<b@x>")
    assigned = customer_ticket(support_desk["technical"], msgid="<c@x>")
    closed = customer_ticket(support_desk["billing"], priority="urgent", msgid="<d@x>")
    staff = services.ticket_open(
        by=agent, department=support_desk["technical"], client=customer, subject="Т", body="Т"
    )
    clock(at(9, 10))
    services.ticket_reply(by=agent, ticket=answered, body="Ответ.")
    services.ticket_assign(by=agent, ticket=assigned, assignee=agent)
    services.ticket_close(by=agent, ticket=closed, notify=False)
    services.ticket_assign(by=agent, ticket=staff, assignee=colleague)

    def figures(user):
        return (
            sorted(queries.awaiting_reply(user).values_list("number", flat=True)),
            sorted(queries.overdue(user).values_list("number", flat=True)),
            sorted(queries.my_queue(user).values_list("number", flat=True)),
        )

    clock(at(10))
    assert [waiting.number, answered.number, assigned.number, staff.number] == [
        "000001", "000002", "000003", "000005",
    ]  # fmt: skip
    assert figures(agent) == (["000001", "000003"], [], ["000002", "000003"])
    assert figures(colleague) == (["000001", "000003"], [], ["000005"])
    clock(at(11))
    assert figures(agent)[1] == []
    clock(at(11, 0, 1))
    assert figures(agent) == (["000001", "000003"], ["000001", "000003"], ["000002", "000003"])


def test_the_counters_count_no_further_than_the_cap(support_desk, customer, agent, monkeypatch):
    for n in range(4):
        customer_ticket(support_desk["technical"], msgid=f"<m{n}@x>", subject=f"Вопрос {n}")
    merged_away = customer_ticket(support_desk["technical"], msgid="<m9@x>")
    services.ticket_merge(by=agent, source=merged_away, target=Ticket.objects.get(number="000001"))
    # Merged tickets never count; past the cap the count stops at cap + 1
    assert queries.count_upto(queries.awaiting_reply(agent)) == 4
    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    assert queries.count_upto(queries.awaiting_reply(agent)) == 4
    assert queries.count_upto(queries.awaiting_reply(agent).filter(number="000002")) == 1
    assert [queries.count_label(n) for n in (0, 3, 4, 250_000)] == ["0", "3", "3+", "3+"]
    assert queries.COUNT_CAP == 3
    monkeypatch.setattr(queries, "COUNT_CAP", 1000)
    assert [queries.count_label(n) for n in (999, 1000, 1001)] == ["999", "1,000", "1,000+"]
    monkeypatch.undo()
    assert [queries.count_label(n) for n in (99, 100, 100_000)] == ["99", "99+", "99+"]


def test_the_api_list_finds_a_subject_fragment_newest_first(support_desk, customer, agent):
    for n in range(3):
        customer_ticket(support_desk["technical"], msgid=f"<s{n}@x>", subject=f"Site {n} down")
    customer_ticket(support_desk["billing"], msgid="<s9@x>", subject="Sitemap question")
    found = queries.ticket_list(agent, queries.TicketFilters(q="SITE "))
    assert [t.number for t in found] == ["000004", "000003", "000002", "000001"]
    assert found.count() == 4
    assert [t.number for t in found[1:3]] == ["000003", "000002"]
    narrowed = queries.TicketFilters(q="site", department=support_desk["technical"].pk)
    assert [t.number for t in queries.ticket_list(agent, narrowed)] == [
        "000003",
        "000002",
        "000001",
    ]
    assert [t.number for t in queries.ticket_list(agent, queries.TicketFilters(q="down"))] == [
        "000003", "000002", "000001",
    ]  # fmt: skip
    assert list(queries.ticket_list(agent, queries.TicketFilters(q="up d"))) == []


# --- replies and notes (SUP-3) ----------------------------------------------------------------


def test_a_reply_is_mailed_once_after_commit_and_takes_the_ticket(
    support_desk, customer, agent, outbox, committed, clock
):
    ticket = customer_ticket(support_desk["technical"], cc=["anna@vms-group.ru"])
    clock(at(9, 20))
    with committed():
        reply = services.ticket_reply(by=agent, ticket=ticket, body="Проверили, работает.")
        assert outbox == []
    assert state(ticket) == ("answered", agent, None, 2)
    reply.refresh_from_db()
    assert (reply.kind, reply.author, reply.to, reply.cc, reply.in_reply_to, reply.sent_at) == (
        "reply", agent, ["ivan@vms-group.ru"], ["anna@vms-group.ru"], "<q1@vms-group.ru>", at(9, 20),
    )  # fmt: skip
    assert len(outbox) == 1
    sent = outbox[0]
    assert (sent.to, sent.cc, sent.subject, sent.body) == (
        ["ivan@vms-group.ru"],
        ["anna@vms-group.ru"],
        "Re: [#000001] Не работает почта",
        "Проверили, работает.",
    )
    assert sent.extra_headers["In-Reply-To"] == "<q1@vms-group.ru>"
    assert sent.extra_headers["References"] == "<q1@vms-group.ru>"
    # sending again (a retried task) does not mail twice
    from clientbase.support.mail import send_ticket_message

    assert send_ticket_message(reply.pk) is False
    assert len(outbox) == 1


def test_a_reply_to_an_assigned_ticket_keeps_its_assignee_and_may_change_cc(
    support_desk, agent, colleague, outbox, committed
):
    ticket = customer_ticket(support_desk["technical"], assignee=colleague)
    with committed():
        services.ticket_reply(by=agent, ticket=ticket, body="Ответ.", cc="boss@vms-group.ru")
    ticket.refresh_from_db()
    assert (ticket.owner, ticket.cc) == (colleague, ["boss@vms-group.ru"])
    assert outbox[0].cc == ["boss@vms-group.ru"]


@pytest.mark.parametrize("status", ["on_hold", "in_progress"])
def test_the_status_a_reply_leaves(support_desk, agent, status, clock):
    ticket = customer_ticket(support_desk["technical"])
    services.ticket_reply(by=agent, ticket=ticket, body="Ждём логи.", status=status)
    assert state(ticket) == (status, agent, None, 3)


def test_a_closing_reply_closes_and_mails_the_rating_link(
    support_desk, customer, agent, outbox, committed, clock
):
    ticket = customer_ticket(support_desk["technical"], cc=["anna@vms-group.ru"])
    clock(at(9, 30))
    with committed():
        services.ticket_reply(by=agent, ticket=ticket, body="Готово.", status="closed")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.closed_at, ticket.closed_by, ticket.due_at) == (
        "closed", at(9, 30), agent, None,
    )  # fmt: skip
    assert [m.subject for m in outbox] == [
        "Re: [#000001] Не работает почта",
        "[#000001] Не работает почта",
    ]
    closing = outbox[1]
    link = f"{settings.SITE_URL}{reverse('support:rate', args=[rating_token(ticket)])}"
    assert link in closing.body
    assert ticket_for_rating(rating_token(ticket)) == ticket
    assert (closing.to, closing.cc) == (["ivan@vms-group.ru"], ["anna@vms-group.ru"])
    assert closing.extra_headers["Auto-Submitted"] == "auto-generated"
    assert list(ticket.messages.values_list("kind", "auto_generated")) == [
        ("customer", False), ("reply", False), ("reply", True),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("given", "field", "message"),
    [
        ({"body": "  "}, "body", "The message cannot be empty."),
        ({"status": "open"}, "status", "Choose the status the ticket takes."),
        ({"cc": "anna@vms-group.ru, анна"}, "cc", "анна is not an email address."),
    ],
)
def test_a_bad_reply_is_refused_and_nothing_is_saved(
    support_desk, agent, outbox, committed, given, field, message
):
    ticket = customer_ticket(support_desk["technical"])
    with committed(), pytest.raises(ServiceError) as refused:
        services.ticket_reply(by=agent, ticket=ticket, **({"body": "Ответ."} | given))
    assert refused.value.message_dict == {field: [message]}
    assert state(ticket) == ("open", None, ticket.created_at + dt.timedelta(hours=2), 1)
    assert ticket.messages.count() == 1
    assert outbox == []


def test_a_reply_drawn_from_an_old_version_is_a_conflict_and_nothing_is_saved(
    support_desk, agent, colleague, outbox, committed
):
    ticket = customer_ticket(support_desk["technical"])
    seen = ticket.version
    services.ticket_note(by=colleague, ticket=ticket, body="Смотрю.")
    with committed(), pytest.raises(ConflictError) as refused:
        services.ticket_reply(by=agent, ticket=ticket, body="Ответ.", version=seen)
    assert refused.value.messages == [
        "Somebody else changed ticket #000001 meanwhile; reload it and try again."
    ]
    assert state(ticket)[:2] == ("open", None)
    assert ticket.version == 2
    assert list(ticket.messages.values_list("kind", flat=True)) == ["customer", "note"]
    assert outbox == []
    # with the current version it goes through
    services.ticket_reply(by=agent, ticket=ticket, body="Ответ.", version=2)
    assert state(ticket)[:2] == ("answered", agent)


def test_an_internal_note_is_never_mailed_nor_shown_to_the_customer(
    support_desk, agent, outbox, committed, client, clock
):
    ticket = customer_ticket(support_desk["technical"])
    services.ticket_reply(by=agent, ticket=ticket, body="Публичный ответ.")
    clock(at(9, 5))
    with committed() as callbacks:
        note = services.ticket_note(by=agent, ticket=ticket, body="Клиент должен нам, не спешить.")
    assert callbacks == []
    assert (note.kind, note.author, note.to, note.sent_at, note.message_id) == (
        "note", agent, [], None, "",
    )  # fmt: skip
    assert outbox == []
    # the note changes neither status nor deadline
    assert state(ticket) == ("answered", agent, None, 3)
    page = client.get(reverse("support:guest_ticket", args=[ticket.access_key]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Публичный ответ." in text and "Почта не отправляется с утра." in text
    assert "Клиент должен нам" not in text
    assert [m.kind for m in page.context["thread"]] == ["customer", "reply"]
    with pytest.raises(ServiceError) as refused:
        services.ticket_note(by=agent, ticket=ticket, body="\n")
    assert refused.value.message_dict == {"body": ["The message cannot be empty."]}
    assert ticket.messages.count() == 3


def test_assign_and_transfer_with_a_note_leave_a_note(
    support_desk, agent, colleague, make_user, outbox, committed
):
    ticket = customer_ticket(support_desk["technical"])
    with committed():
        services.ticket_assign(
            by=agent, ticket=ticket, assignee=colleague, note="  Посмотри, пожалуйста. "
        )
        services.ticket_transfer(
            by=colleague, ticket=ticket, department=support_desk["billing"], note="Это к биллингу."
        )
    ticket.refresh_from_db()
    assert (ticket.owner, ticket.department, ticket.version) == (None, support_desk["billing"], 3)
    assert list(ticket.messages.filter(kind="note").values_list("author", "body")) == [
        (agent.pk, "Посмотри, пожалуйста."),
        (colleague.pk, "Это к биллингу."),
    ]
    assert outbox == []
    assert list(
        Event.objects.filter(type__in=["ticket.assigned", "ticket.transferred"])
        .order_by("id")
        .values_list("type", "details__from", "details__to")
    ) == [
        ("ticket.assigned", None, None),
        ("ticket.transferred", "Technical support", "Billing questions"),
    ]
    # without a note, no note; to an inactive user or a closed department: refused
    services.ticket_assign(by=agent, ticket=ticket, assignee=agent)
    gone = make_user("gone", role="support", unit="company", is_active=False)
    with pytest.raises(ServiceError) as refused:
        services.ticket_assign(by=agent, ticket=ticket, assignee=gone)
    assert refused.value.message_dict == {"assignee": ["This user cannot sign in any more."]}
    closed = services.department_save(by=None, department=support_desk["technical"], active=False)
    with pytest.raises(ServiceError) as refused:
        services.ticket_transfer(by=agent, ticket=ticket, department=closed)
    assert refused.value.message_dict == {"department": ["This department is closed."]}
    ticket.refresh_from_db()
    assert (ticket.owner, ticket.department, ticket.version) == (agent, support_desk["billing"], 4)
    assert ticket.messages.filter(kind="note").count() == 2


def test_a_guest_ticket_transferred_follows_the_new_departments_unit(support_desk, agent, org):
    desk = services.department_save(
        by=None, name="Team A desk", email="team-a@clientbase.test", org_unit=org["team_a"]
    )
    ticket = customer_ticket(support_desk["technical"], email="guest@example.org")
    services.ticket_transfer(by=agent, ticket=ticket, department=desk)
    ticket.refresh_from_db()
    assert (ticket.client, ticket.org_unit) == (None, org["team_a"])


# --- merging ----------------------------------------------------------------------------------


def test_merging_moves_the_messages_unites_cc_and_leaves_a_closed_pointer(
    support_desk, customer, agent, clock
):
    target = customer_ticket(support_desk["technical"], cc=["anna@vms-group.ru"], msgid="<t@x>")
    services.ticket_reply(by=agent, ticket=target, body="Ответ на первый.")
    clock(at(9, 30))
    source = customer_ticket(
        support_desk["technical"], email="petr@vms-group.ru", cc=["boss@vms-group.ru"],
        client=customer, subject="Опять почта", msgid="<s@x>",
    )  # fmt: skip
    source_messages = list(source.messages.values_list("pk", flat=True))
    clock(at(9, 40))
    merged = services.ticket_merge(by=agent, source=source, target=target)

    target.refresh_from_db()
    source.refresh_from_db()
    assert merged == target
    assert list(target.messages.values_list("pk", flat=True)) == [
        *target.messages.filter(pk__lt=source_messages[0]).values_list("pk", flat=True),
        *source_messages,
    ]
    assert target.messages.count() == 3
    assert source.messages.count() == 0
    assert target.cc == ["anna@vms-group.ru", "boss@vms-group.ru", "petr@vms-group.ru"]
    # the source waited: so does the target now, by the source's deadline
    assert (target.status, target.due_at) == ("customer_reply", at(11, 30))
    assert (
        source.status, source.merged_into, source.closed_at, source.closed_by, source.due_at,
    ) == ("closed", target, at(9, 40), agent, None)  # fmt: skip
    assert Event.objects.filter(type="ticket.merged").count() == 1

    # merging it again, or merging into it, or answering it is refused
    other = customer_ticket(support_desk["technical"], msgid="<o@x>")
    for action in (
        lambda: services.ticket_merge(by=agent, source=source, target=target),
        lambda: services.ticket_merge(by=agent, source=other, target=source),
        lambda: services.ticket_reply(by=agent, ticket=source, body="Ответ."),
        lambda: services.ticket_note(by=agent, ticket=source, body="Заметка."),
    ):
        with pytest.raises(ServiceError) as refused:
            action()
        assert refused.value.messages == ["This ticket was merged into #000001; work there."]
    assert (source.messages.count(), target.messages.count(), other.messages.count()) == (0, 3, 1)
    # a customer reply to the merged ticket lands on the target
    services.customer_message_add(ticket=source, body="Ну что?", from_email="petr@vms-group.ru")
    assert (source.messages.count(), target.messages.count()) == (0, 4)


def test_tickets_of_two_clients_or_a_ticket_with_itself_are_not_merged(
    support_desk, customer, agent, clock
):
    other = client_create(
        by=customer.owner, name="Другая фирма", email="info@other.ru", country="RU"
    )
    mine = customer_ticket(support_desk["technical"], msgid="<m@x>")
    theirs = customer_ticket(support_desk["technical"], email="info@other.ru", msgid="<t@x>")
    assert (mine.client, theirs.client) == (customer, other)
    with pytest.raises(ServiceError) as refused:
        services.ticket_merge(by=agent, source=theirs, target=mine)
    assert refused.value.message_dict == {"target": ["Both tickets must be of the same client."]}
    with pytest.raises(ServiceError) as refused:
        services.ticket_merge(by=agent, source=mine, target=mine)
    assert refused.value.message_dict == {"target": ["A ticket cannot be merged into itself."]}
    assert state(mine) == ("open", None, at(11), 1)
    assert state(theirs) == ("open", None, at(11), 1)
    assert (mine.messages.count(), theirs.messages.count(), theirs.merged_into) == (1, 1, None)


def test_a_guest_ticket_merged_into_a_client_ticket_and_back(support_desk, customer, agent, org):
    guest = customer_ticket(support_desk["technical"], email="guest@example.org", msgid="<g@x>")
    mine = customer_ticket(support_desk["technical"], msgid="<m@x>")
    services.ticket_merge(by=agent, source=mine, target=guest)
    guest.refresh_from_db()
    # the guest ticket becomes the client's, seen as the client's
    assert (guest.client, guest.org_unit_id) == (customer, customer.org_unit_id)
    assert guest.cc == ["ivan@vms-group.ru"]


# --- statuses ---------------------------------------------------------------------------------


def test_close_and_reopen(support_desk, agent, clock):
    ticket = customer_ticket(support_desk["technical"])
    clock(at(9, 30))
    services.ticket_close(by=agent, ticket=ticket, notify=False)
    assert state(ticket) == ("closed", None, None, 2)
    with pytest.raises(ServiceError) as refused:
        services.ticket_close(by=agent, ticket=ticket)
    assert refused.value.message_dict == {"status": ["The ticket is already closed."]}
    clock(at(14))
    services.ticket_reopen(by=agent, ticket=ticket)
    assert state(ticket) == ("open", None, at(16), 3)
    assert (ticket.closed_at, ticket.closed_by) == (None, None)
    with pytest.raises(ServiceError) as refused:
        services.ticket_reopen(by=agent, ticket=ticket)
    assert refused.value.message_dict == {"status": ["Only a closed ticket can be reopened."]}
    assert state(ticket) == ("open", None, at(16), 3)


def test_set_status_rules(support_desk, agent, clock):
    ticket = customer_ticket(support_desk["technical"])
    for bad in ("closed", "merged", ""):
        with pytest.raises(ServiceError) as refused:
            services.ticket_set_status(by=agent, ticket=ticket, status=bad)
        assert refused.value.message_dict == {"status": ["Choose a status."]}
    # the same status again changes nothing
    services.ticket_set_status(by=agent, ticket=ticket, status="open")
    assert state(ticket) == ("open", None, at(11), 1)
    clock(at(9, 30))
    services.ticket_set_status(by=agent, ticket=ticket, status="in_progress")
    assert state(ticket) == ("in_progress", None, None, 2)
    clock(at(10))
    services.ticket_set_status(by=agent, ticket=ticket, status="customer_reply")
    assert state(ticket) == ("customer_reply", None, at(12), 3)
    services.ticket_set_status(by=agent, ticket=ticket, status="answered")
    assert state(ticket) == ("answered", None, None, 4)
    assert list(
        Event.objects.filter(type="ticket.status").order_by("id").values_list("details__status")
    ) == [("in_progress",), ("customer_reply",), ("answered",)]
    services.ticket_close(by=agent, ticket=ticket, notify=False)
    with pytest.raises(ServiceError) as refused:
        services.ticket_set_status(by=agent, ticket=ticket, status="in_progress")
    assert refused.value.message_dict == {"status": ["Reopen the ticket first."]}
    assert state(ticket)[0] == "closed"


def test_a_customer_message_reopens_a_closed_ticket(support_desk, agent, clock):
    ticket = customer_ticket(support_desk["technical"])
    services.ticket_close(by=agent, ticket=ticket, notify=False)
    clock(at(12))
    services.customer_message_add(ticket=ticket, body="Опять.", from_email="ivan@vms-group.ru")
    assert state(ticket) == ("customer_reply", None, at(14), 3)
    assert (ticket.closed_at, ticket.closed_by) == (None, None)
    assert Event.objects.filter(type="ticket.reopened").count() == 1


def test_the_complaint_flag_counts_while_unresolved(support_desk, customer, agent):
    ticket = customer_ticket(support_desk["technical"], is_complaint=True)
    plain = customer_ticket(support_desk["technical"], msgid="<p@x>")
    assert queries.has_open_complaint(customer) is True
    assert queries.client_support(customer) == queries.ClientSupport(open=2, total=2, complaints=1)
    services.ticket_close(by=agent, ticket=ticket, notify=False)
    assert queries.has_open_complaint(customer) is False
    assert queries.client_support(customer) == queries.ClientSupport(open=1, total=2, complaints=0)
    services.ticket_update(by=agent, ticket=plain, is_complaint=True)
    assert queries.has_open_complaint(customer) is True


# --- contact change notes (ACT-1) -------------------------------------------------------------


def test_a_contact_change_becomes_an_important_client_note_with_the_old_details(
    support_desk, make_user, agent, clock
):
    seller = make_user("owner", role="sales", unit="team_a")
    firm = client_create(
        by=seller, name="ООО Ромашка", email="office@romashka.ru", phone="+7 495 123-45-67",
        street="ул. Ленина, 1", postcode="101000", city="Москва", country="RU",
    )  # fmt: skip
    ticket = customer_ticket(
        support_desk["technical"], email="office@romashka.ru", subject="Смена адреса",
        body="  Наш новый адрес: new@romashka.ru, телефон +7 495 000-00-00.  ",
    )  # fmt: skip
    message = ticket.messages.get()
    clock(at(10))
    services.contact_change_note(by=agent, message=message)
    note = Note.objects.get()
    assert (note.client, note.important, note.actor, note.created_at) == (firm, True, agent, at(10))
    assert note.body == (
        "Contact change reported in ticket #000001 on 2026-11-02.\n\n"
        "Details before the change:\n"
        "Email: office@romashka.ru\n"
        "Phone: +74951234567\n"
        "Address: ул. Ленина, 1, 101000, Москва, RU\n\n"
        "The customer wrote:\n"
        "Наш новый адрес: new@romashka.ru, телефон +7 495 000-00-00."
    )


def test_the_note_date_is_the_company_day(support_desk, customer, agent, settings, clock):
    settings.TIME_ZONE = "Europe/Moscow"
    clock(dt.datetime(2026, 11, 2, 22, 30, tzinfo=dt.UTC))
    ticket = customer_ticket(support_desk["technical"])
    services.contact_change_note(by=agent, message=ticket.messages.get())
    assert Note.objects.get().body.splitlines()[0] == (
        "Contact change reported in ticket #000001 on 2026-11-03."
    )
    assert "Phone: —\nAddress: RU\n" in Note.objects.get().body


def test_a_contact_change_of_a_ticket_without_client_is_refused(support_desk, agent):
    ticket = customer_ticket(support_desk["technical"], email="guest@example.org")
    with pytest.raises(ServiceError) as refused:
        services.contact_change_note(by=agent, message=ticket.messages.get())
    assert refused.value.messages == ["The ticket has no client to write the note on."]
    assert Note.objects.count() == 0


# --- reply templates (SUP-3) ------------------------------------------------------------------


def test_a_template_fills_every_tag(support_desk, customer, agent):
    ticket = customer_ticket(support_desk["billing"], subject="Счёт за ноябрь")
    template = services.reply_template_save(
        by=agent,
        name="Ответ по счёту",
        body=(
            "Здравствуйте, $client_name (клиент $client_number, $client_email)!\n"
            "По заявке #$ticket_number «${ticket_subject}» отдела $department "
            "отвечает $agent_name. Скидка 5$$. $company"
        ),
    )
    assert services.template_render(template, ticket, agent) == (
        'Здравствуйте, ООО "ВМС-ГРУПП" (клиент ' + customer.number + ", ivan@vms-group.ru)!\n"
        "По заявке #000001 «Счёт за ноябрь» отдела Billing questions "
        "отвечает Sasha Ivanova. Скидка 5$. Clientbase"
    )
    guest = customer_ticket(
        support_desk["technical"], email="anna@example.org", name="Анна", msgid="<g@x>"
    )
    assert services.template_render("$client_name|$client_number|$agent_name", guest, None) == (
        "Анна||"
    )


def test_an_unknown_tag_is_refused_by_name(support_desk, agent):
    ticket = customer_ticket(support_desk["technical"])
    with pytest.raises(ServiceError) as refused:
        services.template_render("Сумма: $invoice_total", ticket, agent)
    assert refused.value.message_dict == {
        "body": [
            "Unknown tag $invoice_total; the tags are: $ticket_number, $ticket_subject, "
            "$department, $client_name, $client_number, $client_email, $agent_name, $company"
        ]
    }
    with pytest.raises(ServiceError) as refused:
        services.reply_template_save(by=agent, name="Плохой", body="Привет, $clientname!")
    assert refused.value.message_dict["body"][0].startswith("Unknown tag $clientname;")
    with pytest.raises(ServiceError) as refused:
        services.reply_template_save(by=agent, name="Доллар", body="Цена 5 $ в месяц")
    assert refused.value.message_dict == {
        "body": ["A $ must start a tag such as $client_name; write $$ for a dollar sign."]
    }
    assert ReplyTemplate.objects.count() == 0


def test_a_mail_being_sent_by_one_sender_is_not_sent_by_another(
    clock, agent, support_desk, customer, outbox
):
    from clientbase.support.mail import send_ticket_message

    # given a reply whose first sender claimed it and then died before sending
    reply = services.ticket_reply(
        by=agent, ticket=customer_ticket(support_desk["technical"]), body="Ответ."
    )  # no commit callbacks run: the task never started
    TicketMessage.objects.filter(pk=reply.pk).update(send_claimed_at=at(9, 0))
    # when the retry job tries within ten minutes, it leaves it alone
    clock(at(9, 9))
    assert send_ticket_message(reply.pk) is False
    assert outbox == []
    # and after ten minutes it sends it, once
    clock(at(9, 11))
    assert send_ticket_message(reply.pk) is True
    assert send_ticket_message(reply.pk) is False
    reply.refresh_from_db()
    assert ([m.subject for m in outbox], reply.sent_at) == (
        ["Re: [#000001] Не работает почта"],
        at(9, 11),
    )
