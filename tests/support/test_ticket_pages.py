"""Ticket pages: the list and its filters, paging and counters, a ticket's thread and every
action form, opening a ticket, the htmx helpers, the client profile's support parts, and what
each user may see (SUP-1, 3, 4, 5)."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clientbase.clients.models import Note
from clientbase.clients.services import client_create
from clientbase.support import services
from clientbase.support.models import (
    Attachment,
    KbArticle,
    KbCategory,
    ReplyTemplate,
    Ticket,
    TicketMessage,
)

pytestmark = pytest.mark.django_db

NINE = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def at(hours: int, minutes: int = 0) -> dt.datetime:
    """A moment of the test day, 2 November 2026 (UTC)."""
    return NINE.replace(hour=hours, minute=minutes)


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
def desk(agent, signed_in):
    """The support agent, signed in to the test browser."""
    return signed_in(agent)


@pytest.fixture
def colleague(make_user):
    """A second support agent."""
    return make_user("oleg", role="support", unit="company", first_name="Oleg", last_name="Smirnov")


def customer_ticket(department, *, subject="Не работает почта", email="ivan@vms-group.ru",
                    body="Почта не отправляется с утра.", **extra) -> Ticket:  # fmt: skip
    """A ticket as the customer's mail opens it: it waits for our answer."""
    return services.ticket_open(
        by=None,
        department=department,
        subject=subject,
        body=body,
        email=email,
        source=Ticket.Source.EMAIL,
        from_customer=True,
        **extra,
    )


def rows(response) -> list[str]:
    """The ticket numbers of a list's rows, top to bottom, as rendered."""
    html = response.content.decode()
    return re.findall(r'<tr class="ticket-row[^"]*">\s*<td[^>]*><a[^>]*>#(\d+)</a>', html)


def text(response) -> str:
    """The page's HTML with entities decoded."""
    return unescape(response.content.decode())


def flashed(response) -> str:
    """The message the last request left for the next page."""
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


def url(name: str, ticket: Ticket | None = None) -> str:
    return reverse(f"support:{name}", args=[ticket.number] if ticket else [])


# --- the list ---------------------------------------------------------------------------------


@pytest.fixture
def five(support_desk, customer, agent, colleague, clock):
    """Five tickets of every kind, seen at 10:00.

    1 the client's mail, open, due 11:00 · 2 a guest's urgent billing question, due 9:30
    (overdue) · 3 a complaint the agent opened and owns · 4 a closed complaint · 5 a billing
    ticket the agent answered and put on hold.
    """
    first = customer_ticket(support_desk["technical"])
    second = customer_ticket(
        support_desk["billing"], email="anna@example.org", subject="Счёт не пришёл",
        priority="urgent",
    )  # fmt: skip
    third = services.ticket_open(
        by=agent, department=support_desk["technical"], client=customer, subject="Жалоба на сроки",
        body="Разбираемся.", priority="high", assignee=agent, is_complaint=True,
    )  # fmt: skip
    fourth = customer_ticket(
        support_desk["technical"], subject="Старая жалоба", priority="low", is_complaint=True
    )
    services.ticket_close(by=colleague, ticket=fourth, notify=False)
    fifth = customer_ticket(support_desk["billing"], subject="Акт сверки")
    services.ticket_reply(by=agent, ticket=fifth, body="Пришлём завтра.", status="on_hold")
    clock(at(10))
    return [first, second, third, fourth, fifth]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["000005", "000004", "000003", "000002", "000001"]),
        ("?status=open", ["000002", "000001"]),
        ("?status=awaiting", ["000002", "000001"]),
        ("?status=unresolved", ["000005", "000003", "000002", "000001"]),
        ("?status=closed", ["000004"]),
        ("?status=on_hold", ["000005"]),
        ("?status=answered", ["000003"]),
        ("?status=bogus", ["000005", "000004", "000003", "000002", "000001"]),
        ("?overdue=1", ["000002"]),
        ("?department=DEPT_BILLING", ["000005", "000002"]),
        ("?department=DEPT_BILLING&status=awaiting", ["000002"]),
        ("?department=abc", ["000005", "000004", "000003", "000002", "000001"]),
        ("?priority=urgent", ["000002"]),
        ("?priority=low", ["000004"]),
        ("?assignee=me", ["000005", "000003"]),
        ("?assignee=me&status=unresolved", ["000005", "000003"]),
        ("?assignee=none", ["000004", "000002", "000001"]),
        ("?complaint=1", ["000003"]),
        ("?q=2", ["000002"]),
        ("?q=%23000003", ["000003"]),
        ("?q=+Anna@Example.org+", ["000002"]),
        ("?q=%D0%BF%D0%BE%D1%87%D1%82%D0%B0", ["000001"]),  # "почта"
        ("?q=%D0%96%D0%B0%D0%BB%D0%BE%D0%B1%D0%B0&status=unresolved", ["000003"]),  # "Жалоба"
        ("?q=nobody@example.org", []),
    ],
)
def test_each_filter_lists_exactly_its_tickets(desk, five, support_desk, query, expected):
    query = query.replace("DEPT_BILLING", str(support_desk["billing"].pk))
    page = desk.get(url("tickets") + query)
    assert page.status_code == 200
    assert rows(page) == expected
    assert [t.number for t in page.context["page"].items] == expected
    if not expected:
        assert "No tickets." in text(page)


def test_subject_search_ignores_the_case_of_any_alphabet(desk, five):
    assert rows(desk.get(url("tickets") + "?q=%D0%B6%D0%B0%D0%BB%D0%BE%D0%B1%D0%B0")) == [
        "000004", "000003",
    ]  # fmt: skip


def test_the_counters_on_top_of_the_list(desk, five, agent, colleague, signed_in):
    page = desk.get(url("tickets"))
    assert page.context["counts"] == {"awaiting": 2, "overdue": 1, "mine": 2}
    html = text(page)
    assert re.search(r'id="count-awaiting">.*?<span class="badge[^"]*">2</span>', html)
    assert re.search(r'id="count-overdue">.*?<span class="badge[^"]*">1</span>', html)
    assert re.search(r'id="count-mine">.*?<span class="badge[^"]*">2</span>', html)
    assert signed_in(colleague).get(url("tickets")).context["counts"] == {
        "awaiting": 2, "overdue": 1, "mine": 0,
    }  # fmt: skip


def test_older_tickets_page_continues_exactly_where_the_first_ended(
    desk, support_desk, customer, agent
):
    tickets = [
        services.ticket_open(
            by=agent, department=support_desk["technical"], client=customer,
            subject=f"Вопрос {n}", body="Текст.",
        )
        for n in range(1, 54)
    ]  # fmt: skip
    first = desk.get(url("tickets") + "?status=answered")
    shown = rows(first)
    assert shown == [f"{n:06d}" for n in range(53, 3, -1)]
    assert len(shown) == 50
    next_link = re.search(r'href="\?([^"]+)" id="next-page"', first.content.decode())
    assert unescape(next_link.group(1)) == f"status=answered&after={tickets[3].pk}"

    second = desk.get(url("tickets") + "?" + unescape(next_link.group(1)))
    assert rows(second) == ["000003", "000002", "000001"]
    assert not set(rows(second)) & set(shown)
    assert 'id="next-page"' not in second.content.decode()
    # a page after the last is empty, and a bad "after" is the first page
    assert rows(desk.get(url("tickets") + f"?after={tickets[0].pk}")) == []
    assert len(rows(desk.get(url("tickets") + "?after=x1"))) == 50


def test_the_list_costs_the_same_queries_however_many_rows(
    desk, support_desk, customer, agent, colleague, django_assert_num_queries
):
    def open_some(count: int) -> None:
        for n in range(count):
            services.ticket_open(
                by=agent, department=support_desk["technical"], client=customer,
                subject=f"Т{n}", body="Т.", assignee=colleague if n % 2 else agent,
            )  # fmt: skip
        customer_ticket(support_desk["billing"], email=f"guest{count}@example.org")

    open_some(1)
    with CaptureQueriesContext(connection) as few:
        assert len(rows(desk.get(url("tickets")))) == 2
    open_some(20)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(rows(desk.get(url("tickets")))) == 23


# --- a ticket's page --------------------------------------------------------------------------


def test_the_thread_in_order_with_the_note_set_apart_and_attachment_links(
    desk, support_desk, customer, agent, clock
):
    ticket = customer_ticket(
        support_desk["technical"],
        attachments=[services.NewAttachment("лог.txt", "text/plain", b"error 42")],
    )
    clock(at(9, 10))
    services.ticket_note(by=agent, ticket=ticket, body="Похоже на SMTP.")
    clock(at(9, 20))
    services.ticket_reply(by=agent, ticket=ticket, body="Проверьте порт 587.")
    page = desk.get(url("ticket", ticket))
    assert page.status_code == 200
    html = text(page)
    kinds = re.findall(r'<article class="card mb-3 ticket-message message-(\w+)', html)
    assert kinds == ["customer", "note", "reply"]
    bodies = re.findall(r'<div class="message-body">(.*?)</div>', html)
    assert bodies == ["Почта не отправляется с утра.", "Похоже на SMTP.", "Проверьте порт 587."]
    attachment = Attachment.objects.get()
    assert f'<a href="/support/attachment/{attachment.pk}/">лог.txt</a>' in html
    download = desk.get(reverse("support:attachment", args=[attachment.pk]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"error 42"
    assert download["Content-Disposition"] == "attachment; filename*=utf-8''%D0%BB%D0%BE%D0%B3.txt"
    assert (download["Content-Type"], download["X-Content-Type-Options"]) == (
        "application/octet-stream", "nosniff",
    )  # fmt: skip


def test_a_reply_through_the_page(desk, support_desk, agent, outbox, committed, clock):
    ticket = customer_ticket(support_desk["technical"])
    clock(at(9, 30))
    with committed():
        done = desk.post(
            url("reply", ticket),
            {"body": "Готово.", "cc": "boss@vms-group.ru", "status": "in_progress", "version": "1"},
        )
    assert (done.status_code, done.url) == (302, url("ticket", ticket))
    assert flashed(done) == "Reply sent to ivan@vms-group.ru."
    ticket.refresh_from_db()
    assert (ticket.status, ticket.owner, ticket.cc, ticket.due_at) == (
        "in_progress", agent, ["boss@vms-group.ru"], None,
    )  # fmt: skip
    assert [(m.to, m.cc, m.body) for m in outbox] == [
        (["ivan@vms-group.ru"], ["boss@vms-group.ru"], "Готово.")
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"body": ""}, "This field is required."),
        ({"cc": "boss@, anna@vms-group.ru"}, "boss@ is not an email address."),
        ({"status": "open"}, "Select a valid choice. open is not one of the available choices."),
        ({"version": "1"}, "Somebody else changed ticket #000001 meanwhile; reload it and try again."),
        ({"version": ""}, "This field is required."),
    ],
)  # fmt: skip
def test_a_bad_reply_is_shown_again_with_its_error(
    desk, support_desk, agent, outbox, committed, data, message
):
    ticket = customer_ticket(support_desk["technical"])
    services.ticket_note(by=agent, ticket=ticket, body="Версия 2.")
    with committed():
        page = desk.post(
            url("reply", ticket),
            {"body": "Ответ.", "cc": "", "status": "answered", "version": "2"} | data,
        )
    assert page.status_code == 400
    assert message in text(page)
    assert 'id="reply-form"' in page.content.decode()
    ticket.refresh_from_db()
    assert (ticket.status, ticket.owner, ticket.version, ticket.messages.count()) == (
        "open", None, 2, 2,
    )  # fmt: skip
    assert outbox == []


def test_a_note_through_the_page(desk, support_desk, agent, outbox, committed):
    ticket = customer_ticket(support_desk["technical"])
    with committed():
        done = desk.post(url("note", ticket), {"body": "Для своих."})
    assert (done.status_code, flashed(done)) == (302, "Note added.")
    assert list(ticket.messages.values_list("kind", "author", "body")) == [
        ("customer", None, "Почта не отправляется с утра."),
        ("note", agent.pk, "Для своих."),
    ]
    assert outbox == []
    refused = desk.post(url("note", ticket), {"body": "   "})
    assert refused.status_code == 400
    assert "This field is required." in text(refused)
    assert ticket.messages.count() == 2


def test_assign_and_transfer_through_the_page(desk, support_desk, agent, colleague, clock):
    ticket = customer_ticket(support_desk["technical"], priority="urgent")
    done = desk.post(url("assign", ticket), {"assignee": colleague.pk, "note": "Возьми."})
    assert (done.status_code, flashed(done)) == (302, "Ticket assigned.")
    ticket.refresh_from_db()
    assert ticket.owner == colleague
    clock(at(9, 10))
    moved = desk.post(
        url("transfer", ticket),
        {"department": support_desk["billing"].pk, "assignee": "", "note": "В биллинг."},
    )
    assert (moved.status_code, flashed(moved)) == (302, "Ticket moved to Billing questions.")
    ticket.refresh_from_db()
    assert (ticket.department, ticket.owner, ticket.due_at) == (
        support_desk["billing"], None, at(9, 30),
    )  # fmt: skip
    assert list(ticket.messages.filter(kind="note").values_list("body", flat=True)) == [
        "Возьми.", "В биллинг.",
    ]  # fmt: skip

    # bad choices: 400, the error at the field, nothing changed
    closed = services.department_save(
        by=None, name="Закрытый", email="closed@clientbase.test", org_unit=support_desk[
            "billing"].org_unit, active=False,
    )  # fmt: skip
    wrong_person = desk.post(url("assign", ticket), {"assignee": "999999", "note": ""})
    wrong_desk = desk.post(url("transfer", ticket), {"department": closed.pk, "assignee": ""})
    for page in (wrong_person, wrong_desk):
        assert page.status_code == 400
        assert "Select a valid choice. That choice is not one of the available choices." in text(
            page
        )
    ticket.refresh_from_db()
    assert (ticket.department, ticket.owner, ticket.version) == (support_desk["billing"], None, 3)


def test_status_buttons(desk, support_desk, agent, outbox, committed, clock):
    ticket = customer_ticket(support_desk["technical"])
    held = desk.post(url("status", ticket), {"status": "on_hold"})
    assert (held.status_code, held.url, flashed(held)) == (
        302,
        url("ticket", ticket),
        "Ticket saved.",
    )
    ticket.refresh_from_db()
    assert (ticket.status, ticket.due_at) == ("on_hold", None)
    bad = desk.post(url("status", ticket), {"status": "lost"})
    assert (bad.status_code, flashed(bad)) == (302, "Choose a status.")
    ticket.refresh_from_db()
    assert ticket.status == "on_hold"
    with committed():
        desk.post(url("status", ticket), {"status": "closed"})
    ticket.refresh_from_db()
    assert (ticket.status, ticket.closed_by) == ("closed", agent)
    assert [m.subject for m in outbox] == ["[#000001] Не работает почта"]
    page = desk.get(url("ticket", ticket))
    assert 'id="reopen-ticket"' in page.content.decode()
    assert 'id="close-ticket"' not in page.content.decode()
    clock(at(12))
    desk.post(url("status", ticket), {"status": "reopen"})
    ticket.refresh_from_db()
    assert (ticket.status, ticket.due_at) == ("open", at(14))


def test_properties_through_the_page(desk, support_desk, agent, clock):
    ticket = customer_ticket(support_desk["billing"])
    clock(at(9, 10))
    done = desk.post(
        url("properties", ticket),
        {"priority": "urgent", "cc": "Anna@vms-group.ru", "is_complaint": "on", "version": "1"},
    )
    assert (done.status_code, flashed(done)) == (302, "Ticket saved.")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.cc, ticket.is_complaint, ticket.due_at, ticket.version) == (
        "urgent", ["anna@vms-group.ru"], True, at(9, 30), 2,
    )  # fmt: skip
    for data, message in [
        ({"priority": "critical"}, "Select a valid choice. critical is not one of the available"),
        ({"cc": "anna@"}, "anna@ is not an email address."),
        ({"version": "1"}, "Somebody else changed ticket #000001 meanwhile"),
    ]:
        page = desk.post(
            url("properties", ticket),
            {"priority": "low", "cc": "", "version": "2"} | data,
        )
        assert page.status_code == 400
        assert message in text(page)
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.cc, ticket.is_complaint, ticket.version) == (
        "urgent", ["anna@vms-group.ru"], True, 2,
    )  # fmt: skip


def test_merge_through_the_page(desk, support_desk, customer, agent):
    target = customer_ticket(support_desk["technical"])
    source = customer_ticket(support_desk["technical"], subject="Ещё раз про почту")
    other = client_create(
        by=customer.owner, name="Другая фирма", email="info@other.ru", country="RU"
    )
    theirs = customer_ticket(support_desk["technical"], email="info@other.ru")
    assert theirs.client == other

    for given, message in [
        ("999", "No ticket with this number that you may see."),
        ("", "This field is required."),
        (theirs.number, "Both tickets must be of the same client."),
        (source.number, "A ticket cannot be merged into itself."),
    ]:
        page = desk.post(url("merge", source), {"target": given})
        assert page.status_code == 400
        assert message in text(page)
    source.refresh_from_db()
    assert (source.merged_into, source.status, source.messages.count()) == (None, "open", 1)

    done = desk.post(url("merge", source), {"target": "#1"})
    assert (done.status_code, done.url) == (302, url("ticket", target))
    assert flashed(done) == "Ticket #000002 merged into #000001."
    source.refresh_from_db()
    assert (source.merged_into, source.status, target.messages.count()) == (target, "closed", 2)
    # the merged ticket's page points at the target and offers no actions
    page = text(desk.get(url("ticket", source)))
    assert 'This ticket was merged into <a href="/support/t/000001/">#000001</a>' in page
    assert 'id="reply-form"' not in page


def test_copy_a_contact_change_to_a_client_note_through_the_page(desk, support_desk, customer):
    ticket = customer_ticket(support_desk["technical"], body="Новый телефон: +7 999 000-00-00")
    message = ticket.messages.get()
    done = desk.post(reverse("support:message_to_note", args=[ticket.number, message.pk]))
    assert (done.status_code, flashed(done)) == (302, "Copied to an important note on the client.")
    assert Note.objects.get().body.endswith("The customer wrote:\nНовый телефон: +7 999 000-00-00")
    services.ticket_note(by=None, ticket=ticket, body="Заметка.")
    note = ticket.messages.get(kind="note")
    missing = desk.post(reverse("support:message_to_note", args=[ticket.number, note.pk]))
    assert missing.status_code == 404
    assert Note.objects.count() == 1


# --- opening a ticket -------------------------------------------------------------------------


def test_open_a_ticket_for_a_client_from_the_profile(
    desk, support_desk, customer, agent, outbox, committed
):
    form = desk.get(url("open") + f"?client={customer.pk}")
    assert form.status_code == 200
    assert f'For ООО "ВМС-ГРУПП" (client {customer.number}).' in text(form)
    assert f'<input type="hidden" name="client" value="{customer.pk}">' in form.content.decode()
    with committed():
        done = desk.post(
            url("open"),
            {
                "client": customer.pk,
                "department": support_desk["billing"].pk,
                "email": "",
                "name": "",
                "subject": "Сверка",
                "priority": "high",
                "body": "Пришлите акт сверки.",
                "cc": "",
                "assignee": "",
            },
        )
    ticket = Ticket.objects.get()
    assert (done.status_code, done.url, flashed(done)) == (
        302, url("ticket", ticket), "Ticket #000001 opened.",
    )  # fmt: skip
    assert (ticket.client, ticket.email, ticket.department, ticket.priority, ticket.status) == (
        customer, "ivan@vms-group.ru", support_desk["billing"], "high", "answered",
    )  # fmt: skip
    assert [(m.to, m.body) for m in outbox] == [(["ivan@vms-group.ru"], "Пришлите акт сверки.")]


def test_open_a_ticket_for_a_guest_with_an_attachment(desk, support_desk, agent):
    from django.core.files.uploadedfile import SimpleUploadedFile

    form = desk.get(url("open"))
    assert form.status_code == 200
    assert "For a guest: give the email address." in text(form)
    done = desk.post(
        url("open"),
        {
            "department": support_desk["technical"].pk,
            "email": "guest@example.org",
            "name": "Гость",
            "subject": "Ваше предложение",
            "priority": "medium",
            "body": "Отправляем предложение.",
            "cc": "partner@example.org",
            "assignee": agent.pk,
            "is_complaint": "",
            "attachments": [SimpleUploadedFile("offer.pdf", b"%PDF offer", "application/pdf")],
        },
    )
    assert done.status_code == 302
    ticket = Ticket.objects.get()
    assert (ticket.client, ticket.email, ticket.name, ticket.owner, ticket.cc) == (
        None, "guest@example.org", "Гость", agent, ["partner@example.org"],
    )  # fmt: skip
    assert list(Attachment.objects.values_list("name", "size")) == [("offer.pdf", 10)]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"subject": ""}, "subject", "This field is required."),
        ({"body": ""}, "body", "This field is required."),
        ({"email": ""}, "email", "Give the email address to answer to."),
        ({"email": "guest@"}, "email", "Enter a valid email address."),
        ({"cc": "a@b.ru, нет"}, "cc", "нет is not an email address."),
        ({"department": "999999"}, "department",
         "Select a valid choice. That choice is not one of the available choices."),
    ],
)  # fmt: skip
def test_bad_input_on_the_open_page_is_shown_at_its_field(desk, support_desk, data, field, message):
    page = desk.post(
        url("open"),
        {
            "department": support_desk["technical"].pk,
            "email": "guest@example.org",
            "subject": "Тема",
            "priority": "medium",
            "body": "Текст.",
            "cc": "",
        }
        | data,
    )
    assert page.status_code == 400
    html = text(page)
    block = re.search(rf'<div class="mb-3 field-{field}">(.*?)\n</div>', html, re.S).group(1)
    assert f'<div class="invalid-feedback d-block">{message}</div>' in block
    assert (Ticket.objects.count(), TicketMessage.objects.count()) == (0, 0)


# --- htmx helpers -----------------------------------------------------------------------------


def test_a_template_is_filled_for_the_reply_box(desk, support_desk, customer, agent):
    ticket = customer_ticket(support_desk["technical"])
    general = services.reply_template_save(
        by=agent, name="Приветствие", body="Здравствуйте, $client_name! Заявка #$ticket_number."
    )
    billing_only = services.reply_template_save(
        by=agent, name="Биллинг", body="Счёт для $client_email.", department=support_desk["billing"]
    )
    page = desk.get(url("template_fill", ticket) + f"?template={general.pk}")
    assert page.status_code == 200
    body = re.search(r"<textarea[^>]*>(.*?)</textarea>", page.content.decode(), re.S).group(1)
    assert unescape(body) == 'Здравствуйте, ООО "ВМС-ГРУПП"! Заявка #000001.'
    # another department's template, or none, fills nothing
    for query in (f"?template={billing_only.pk}", "?template=", "?template=x"):
        empty = desk.get(url("template_fill", ticket) + query)
        assert re.search(r"<textarea[^>]*></textarea>", empty.content.decode())
    detail = desk.get(url("ticket", ticket)).content.decode()
    offered = re.search(r'<select[^>]*id="reply-template".*?</select>', detail, re.S).group(0)
    assert re.findall(r'<option value="(\d*)">([^<]*)</option>', offered) == [
        ("", "Insert a template…"), (str(general.pk), "Приветствие"),
    ]  # fmt: skip
    assert ReplyTemplate.objects.count() == 2


def test_suggestions_list_matching_published_articles(desk, agent):
    mail = KbCategory.objects.create(name="Почта")
    billing = KbCategory.objects.create(name="Оплата", position=1)
    outlook = services.article_save(
        by=agent, category=mail, title="Настройка SMTP в Outlook", body="Укажите порт 587.",
        keywords="почта smtp",
    )  # fmt: skip
    services.article_save(
        by=agent, category=mail, title="Черновик про smtp", body="smtp", published=False
    )
    invoice = services.article_save(
        by=agent, category=billing, title="Где найти счёт", body="Счёт приходит на почту."
    )
    page = desk.get(reverse("support:suggest") + "?body=Не уходит почта через SMTP, и где счёт?")
    assert page.status_code == 200
    found = re.findall(r'<a href="/support/kb/(\d+)/"[^>]*>([^<]+)</a>', page.content.decode())
    assert found == [
        (str(outlook.pk), "Настройка SMTP в Outlook"), (str(invoice.pk), "Где найти счёт"),
    ]  # fmt: skip
    assert KbArticle.objects.count() == 3
    none = desk.get(reverse("support:suggest") + "?body=спасибо")
    assert "No matching articles." in text(none)


# --- the client profile (SUP-5) ---------------------------------------------------------------


def _support_block(page) -> list[tuple[str, str]]:
    block = re.search(r'id="block-support">(.*?)</dl>', text(page), re.S)
    if block is None:
        return []
    return re.findall(r"<dt[^>]*>(.*?)</dt><dd[^>]*>(.*?)</dd>", block.group(1))


def test_the_profile_flags_an_unresolved_complaint_and_lists_the_tickets(
    desk, support_desk, customer, agent
):
    profile = reverse("clients:detail", args=[customer.pk])
    # no tickets: no flag, no block
    page = desk.get(profile)
    assert "Unresolved complaint" not in text(page)
    assert _support_block(page) == []

    complaint = customer_ticket(support_desk["technical"], subject="Жалоба", is_complaint=True)
    plain = customer_ticket(support_desk["billing"], subject="Вопрос")
    page = desk.get(profile)
    assert 'id="complaint-flag"' in page.content.decode()
    assert "Unresolved complaint" in text(page)
    assert _support_block(page) == [
        ("Open tickets", "2"), ("All tickets", "2"), ("Unresolved complaints", "1"),
    ]  # fmt: skip
    assert (
        f'<a class="dropdown-item" href="/support/new/?client={customer.pk}" id="action-open-ticket">'
        in page.content.decode()
    )

    services.ticket_close(by=agent, ticket=complaint, notify=False)
    page = desk.get(profile)
    assert 'id="complaint-flag"' not in page.content.decode()
    assert "Unresolved complaint" not in text(page)
    assert _support_block(page) == [("Open tickets", "1"), ("All tickets", "2")]

    tab = desk.get(profile + "?tab=tickets")
    assert rows(tab) == [plain.number, complaint.number]
    assert "2 tickets" in text(tab)
    assert f'href="/support/new/?client={customer.pk}" id="tab-open-ticket"' in tab.content.decode()


# --- who sees what ----------------------------------------------------------------------------


@pytest.fixture
def scoped(support_desk, customer, agent, make_user, org):
    """The seller's client's ticket, another seller's client's ticket, and two guest tickets."""
    rival = make_user("rival", role="sales", unit="team_b")
    other = client_create(by=rival, name="Чужая фирма", email="info@other.ru", country="RU")
    team_desk = services.department_save(
        by=None, name="Team A desk", email="team-a@clientbase.test", org_unit=org["team_a"]
    )
    mine = customer_ticket(
        support_desk["technical"],
        attachments=[services.NewAttachment("мой.txt", "text/plain", b"mine")],
    )
    theirs = customer_ticket(
        support_desk["technical"], email="info@other.ru", subject="Чужой вопрос",
        attachments=[services.NewAttachment("чужой.txt", "text/plain", b"theirs")],
    )  # fmt: skip
    guest = customer_ticket(support_desk["technical"], email="guest@example.org", subject="Гость")
    team_guest = customer_ticket(team_desk, email="team@example.org", subject="Гость команды")
    assert (mine.client, theirs.client) == (customer, other)
    return {"mine": mine, "theirs": theirs, "guest": guest, "team_guest": team_guest}


def test_a_seller_sees_only_the_tickets_of_their_own_clients(
    scoped, customer, agent, signed_in, support_desk
):
    seller = customer.owner
    browser = signed_in(seller)
    listed = browser.get(url("tickets"))
    assert rows(listed) == [scoped["mine"].number]
    assert listed.context["counts"] == {"awaiting": 1, "overdue": 0, "mine": 0}
    assert browser.get(url("ticket", scoped["mine"])).status_code == 200

    theirs = scoped["theirs"]
    version = theirs.version
    assert browser.get(url("ticket", theirs)).status_code == 404
    assert browser.get(url("tickets") + "?q=info@other.ru").status_code == 200
    assert rows(browser.get(url("tickets") + "?q=info@other.ru")) == []
    assert browser.get(url("template_fill", theirs)).status_code == 404
    message = theirs.messages.get()
    for name, data in [
        ("reply", {"body": "Ответ.", "status": "answered", "version": version}),
        ("note", {"body": "Заметка."}),
        ("properties", {"priority": "urgent", "cc": "", "version": version}),
        ("assign", {"assignee": seller.pk}),
        ("transfer", {"department": support_desk["billing"].pk}),
        ("status", {"status": "closed"}),
        ("merge", {"target": scoped["mine"].number}),
    ]:
        assert browser.post(url(name, theirs), data).status_code == 404, name
    assert (
        browser.post(
            reverse("support:message_to_note", args=[theirs.number, message.pk])
        ).status_code
        == 404
    )
    attachment = Attachment.objects.get(message__ticket=theirs)
    assert browser.get(reverse("support:attachment", args=[attachment.pk])).status_code == 404
    own = Attachment.objects.get(message__ticket=scoped["mine"])
    assert browser.get(reverse("support:attachment", args=[own.pk])).status_code == 200
    # and nothing of the other client's ticket changed
    theirs.refresh_from_db()
    assert (theirs.status, theirs.owner, theirs.priority, theirs.version, theirs.department) == (
        "open", None, "medium", version, support_desk["technical"],
    )  # fmt: skip
    assert theirs.messages.count() == 1
    assert Note.objects.count() == 0
    # a seller may not open a ticket for a client they do not see
    assert browser.get(url("open") + f"?client={theirs.client_id}").status_code == 404


def test_guest_tickets_follow_the_assignee_and_the_departments_unit(
    scoped, customer, agent, make_user, signed_in
):
    seller = customer.owner
    browser = signed_in(seller)
    assert browser.get(url("ticket", scoped["guest"])).status_code == 404
    services.ticket_assign(by=agent, ticket=scoped["guest"], assignee=seller)
    assert browser.get(url("ticket", scoped["guest"])).status_code == 200
    assert rows(browser.get(url("tickets"))) == [scoped["guest"].number, scoped["mine"].number]
    assert browser.get(url("tickets")).context["counts"] == {"awaiting": 2, "overdue": 0, "mine": 1}

    # a manager of team A sees the unit's clients and the guests of the unit's department
    manager = make_user("boss", role="manager", unit="team_a")
    boss = signed_in(manager)
    assert rows(boss.get(url("tickets"))) == [scoped["team_guest"].number, scoped["mine"].number]
    assert boss.get(url("ticket", scoped["guest"])).status_code == 404
    assert boss.get(url("ticket", scoped["team_guest"])).status_code == 200


def test_the_guest_link_needs_the_exact_key(client, support_desk, agent):
    ticket = customer_ticket(support_desk["technical"])
    services.ticket_note(by=agent, ticket=ticket, body="Секрет для своих.")
    good = client.get(reverse("support:guest_ticket", args=[ticket.access_key]))
    assert good.status_code == 200
    assert "Секрет для своих." not in text(good)
    assert "Почта не отправляется с утра." in text(good)
    wrong = ticket.access_key[:-1] + ("A" if ticket.access_key[-1] != "A" else "B")
    for key in (wrong, ticket.number, "x" * 41, ticket.access_key[:19]):
        assert client.get(reverse("support:guest_ticket", args=[key])).status_code == 404


# --- subject fragments (the trigram index) and capped counters --------------------------------


@pytest.fixture
def subjects(support_desk, customer, agent, clock):
    """Tickets whose subjects a fragment search tells apart, numbered 000001 to 000006."""
    made = [
        customer_ticket(support_desk["technical"], subject=subject, email=f"g{n}@example.org")
        for n, subject in enumerate(
            [
                "Ошибка 502 на сервере vps-10234",
                "Erreur 502 sur vps-20234",
                'Le "site" ne répond plus',
                "Không truy cập được TRANG QUẢN TRỊ",
                "Invoice 10234 charged twice",
                "ОШИБКА оплаты",
            ]
        )
    ]
    clock(at(10))
    return made


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("vps-10234", ["000001"]),
        ("vps-", ["000002", "000001"]),
        ("ошибка", ["000006", "000001"]),
        ("ОшИбКа", ["000006", "000001"]),
        ("trang quản", ["000004"]),
        ("trang  quản", ["000004"]),  # spaces as typed are folded to one
        ('"site"', ["000003"]),
        ('e "s', ["000003"]),
        ("répond", ["000003"]),
        ("repond", []),  # accents count
        ("vps-9", []),
        ("ng", ["000004"]),  # shorter than a trigram: read the table, same answer
        ("%", []),
        ("_", []),
        ("twice ", ["000005"]),
    ],
)
def test_a_subject_fragment_finds_exactly_its_tickets(desk, subjects, fragment, expected):
    page = desk.get(url("tickets"), {"q": fragment})
    assert rows(page) == expected


def test_a_subject_fragment_follows_a_changed_subject(desk, subjects, agent):
    # When the agent renames ticket 1
    services.ticket_update(by=agent, ticket=subjects[0], subject="Сайт недоступен: vps-777")
    # Then the old words find it no more and the new ones do
    assert rows(desk.get(url("tickets"), {"q": "vps-10234"})) == []
    assert rows(desk.get(url("tickets"), {"q": "недоступен"})) == ["000001"]
    assert rows(desk.get(url("tickets"), {"q": "ошибка"})) == ["000006"]


def test_a_subject_search_pages_on_by_next_after_and_keeps_the_other_filters(
    desk, support_desk, customer, agent
):
    tickets = [
        services.ticket_open(
            by=agent, department=support_desk["technical"], client=customer,
            subject=f"Перенос сайта {n}", body="Текст.", assignee=agent if n % 2 else None,
        )
        for n in range(1, 56)
    ]  # fmt: skip
    customer_ticket(support_desk["technical"], subject="Другое")
    first = desk.get(url("tickets"), {"q": "перенос САЙТА"})
    assert rows(first) == [f"{n:06d}" for n in range(55, 5, -1)]
    assert first.context["page"].next_after == tickets[5].pk
    second = desk.get(url("tickets"), {"q": "перенос сайта", "after": tickets[5].pk})
    assert rows(second) == ["000005", "000004", "000003", "000002", "000001"]
    assert second.context["page"].next_after is None
    mine = desk.get(url("tickets"), {"q": "перенос сайта", "assignee": "me"})
    assert rows(mine) == [f"{n:06d}" for n in range(55, 0, -2)]


def test_a_subject_search_shows_only_the_tickets_the_user_may_see(
    support_desk, customer, agent, make_user, signed_in, clock
):
    # Given a seller who sees only their own clients' tickets and the guests' given to them
    own = make_user("own.seller", role="sales", unit="team_b")
    mine = client_create(by=own, name="Own client", email="own@example.org", country="FR")
    customer_ticket(support_desk["technical"], subject="Site en panne", email="own@example.org")
    customer_ticket(support_desk["technical"], subject="Site en panne aussi")  # the customer's
    guest = customer_ticket(
        support_desk["technical"], subject="Site en panne", email="guest@example.org"
    )
    services.ticket_assign(by=agent, ticket=guest, assignee=own)
    customer_ticket(support_desk["technical"], subject="Site en panne", email="x@example.org")
    assert mine.pk
    # Then the search finds only theirs, as the plain list does
    browser = signed_in(own)
    assert rows(browser.get(url("tickets"), {"q": "en panne"})) == ["000003", "000001"]
    assert rows(browser.get(url("tickets"))) == ["000003", "000001"]
    # and the global search too
    found = browser.get(reverse("core:search"), {"q": "en panne"})
    assert re.findall(r"#(\d{6}) Site en panne", text(found)) == ["000003", "000001"]


def _many_awaiting(department, count: int) -> None:
    """`count` guests' tickets waiting for our reply, all overdue, in one insert."""
    past = at(8)
    Ticket.objects.bulk_create(
        Ticket(
            org_unit_id=department.org_unit_id, number=f"9{n:05d}", email=f"g{n}@example.org",
            department=department, subject=f"Вопрос {n}", subject_search=f"вопрос {n}",
            status=Ticket.Status.OPEN, source=Ticket.Source.EMAIL, due_at=past,
            access_key=f"key{n}",
        )
        for n in range(count)
    )  # fmt: skip


@pytest.mark.parametrize(("count", "shown"), [(98, "98"), (99, "99"), (100, "99+"), (1500, "99+")])
def test_the_counters_stop_counting_past_ninety_nine(desk, support_desk, clock, count, shown):
    # Given that many overdue tickets waiting for our reply
    clock(at(10))
    _many_awaiting(support_desk["technical"], count)
    # Then the list's counters count up to 100 and show "99+" past 99
    page = desk.get(url("tickets"))
    capped = min(count, 100)
    assert page.context["counts"] == {"awaiting": capped, "overdue": capped, "mine": 0}
    html, shown = text(page), re.escape(shown)
    assert re.search(rf'id="count-awaiting">.*?<span class="badge[^"]*">{shown}</span>', html)
    assert re.search(rf'id="count-overdue">.*?<span class="badge[^"]*">{shown}</span>', html)
    assert re.search(r'id="count-mine">.*?<span class="badge[^"]*">0</span>', html)
    # and so does the dashboard
    board = text(desk.get(reverse("core:dashboard")))
    for key in ("support.awaiting", "support.overdue"):
        assert re.search(
            rf'data-counter="{key}">.*?<div class="counter-value mt-auto">{shown}</div>',
            board,
            re.S,
        ), key
