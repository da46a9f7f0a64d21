"""Support over the API: tickets and their actions, departments, the knowledge base and the
inbound mail webhook; refusals change nothing, scope hides, roles forbid."""

import base64
import datetime as dt
import json
from http import HTTPStatus

import pytest
import time_machine

from clientbase.accounts.models import Role
from clientbase.support import services
from clientbase.support.intake import mail_ingest
from clientbase.support.models import (
    Department,
    InboundMail,
    KbArticle,
    KbCategory,
    Ticket,
    TicketMessage,
)

from .conftest import raw_mail

API = "/api/v1"
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
FORBIDDEN = {
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
    "detail": "Your role does not allow this action.",
    "errors": [],
}
NOT_FOUND = {
    "type": "about:blank",
    "title": "Not found",
    "status": 404,
    "detail": "No such record, or not one you may see.",
    "errors": [],
}


def _post(http, path: str, data=None, headers=None):
    return http.post(
        API + path, json.dumps(data or {}), content_type="application/json", headers=headers
    )


def _patch(http, path: str, data):
    return http.patch(API + path, json.dumps(data), content_type="application/json")


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json()


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def _refused(response, *errors: tuple[str, str], status: int = 422) -> dict:
    """A refusal with exactly these field errors."""
    body = _problem(response, status)
    assert [(e["field"], e["message"]) for e in body["errors"]] == list(errors)
    return body


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _state(ticket: Ticket) -> tuple:
    """What a refused request must leave as it was."""
    ticket.refresh_from_db()
    return (
        ticket.status,
        ticket.priority,
        ticket.owner_id,
        ticket.department_id,
        ticket.version,
        ticket.messages.count(),
    )


@pytest.fixture
def now():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def http(api_client, agent):
    return api_client(agent)


@pytest.fixture
def outsider(api_client, make_user):
    """A sales person of another team: works tickets, but not the customer's."""
    return api_client(make_user("olga", role="sales", unit="team_b"))


@pytest.fixture
def reader(api_client, make_user):
    """A read-only user who sees everything and may change nothing."""
    return api_client(make_user("rita", role="read-only", unit="company"))


@pytest.fixture
def relay(api_client, make_user, default_roles):
    """The mail relay's account: it may only deliver mail."""
    Role.objects.create(
        name="Mail relay", slug="relay", scope="all", permissions=["support.ingest"]
    )
    return api_client(make_user("relay", role="relay", unit="company"))


@pytest.fixture
def waiting(now, support_desk, customer):
    """Ticket 000001: the customer wrote at 09:00 and waits for an answer until 11:00."""
    return services.ticket_open(
        by=None,
        department=support_desk["technical"],
        subject="Не работает почта",
        body="Почта не отправляется с утра.",
        client=customer,
        source=Ticket.Source.EMAIL,
        from_customer=True,
    )


# ----------------------------------------------------------------------------- opening


def test_staff_open_a_client_ticket_and_the_customer_is_mailed(
    now, http, agent, support_desk, customer, outbox, django_capture_on_commit_callbacks
):
    # given a client and the billing department
    # when an agent opens a complaint for the client over the API
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(
            http,
            "/tickets",
            {
                "client_id": customer.pk,
                "department_id": support_desk["billing"].pk,
                "subject": "Двойное списание",
                "body": "Мы вернём деньги в течение трёх дней.",
                "priority": "high",
                "cc": ["Buh@VMS-group.ru"],
                "assignee_id": agent.pk,
                "is_complaint": True,
            },
        )

    # then the ticket is the client's, answered, and its message was mailed
    ticket = _ok(response, 201)
    message = ticket.pop("messages")[0]
    assert ticket == {
        "id": ticket["id"],
        "number": "000001",
        "subject": "Двойное списание",
        "status": "answered",
        "priority": "high",
        "department_id": support_desk["billing"].pk,
        "department": "Billing questions",
        "client_id": customer.pk,
        "client_name": 'ООО "ВМС-ГРУПП"',
        "email": "ivan@vms-group.ru",
        "name": 'ООО "ВМС-ГРУПП"',
        "assignee_id": agent.pk,
        "assignee_name": "Sasha Ivanova",
        "cc": ["buh@vms-group.ru"],
        "is_complaint": True,
        "source": "api",
        "created_at": _iso(NOW),
        "last_activity_at": _iso(NOW),
        "due_at": None,
        "overdue": False,
        "escalated_at": None,
        "closed_at": None,
        "merged_into_id": None,
        "merged_into_number": None,
        "version": 1,
    }
    assert message == {
        "id": message["id"],
        "kind": "reply",
        "author_id": agent.pk,
        "author": "Sasha Ivanova",
        "from_email": "billing@clientbase.test",
        "from_name": "",
        "to": ["ivan@vms-group.ru"],
        "cc": ["buh@vms-group.ru"],
        "body": "Мы вернём деньги в течение трёх дней.",
        "created_at": _iso(NOW),
        "sent_at": None,
        "auto_generated": False,
        "problems": [],
        "attachments": [],
    }
    assert [(m.subject, m.to, m.cc) for m in outbox] == [
        ("[#000001] Двойное списание", ["ivan@vms-group.ru"], ["buh@vms-group.ru"])
    ]


def test_a_guest_request_from_a_web_form_waits_for_an_answer(now, http, support_desk, outbox):
    # when a web form sends a guest's request as from the customer
    response = _post(
        http,
        "/tickets",
        {
            "email": "Guest@Example.com",
            "name": "  Jean   Dupont ",
            "department_id": support_desk["technical"].pk,
            "subject": "Mot de passe oublié",
            "body": "Je ne peux plus me connecter.",
            "from_customer": True,
        },
    )

    # then it is open, due within the department's two hours, and nothing was mailed
    ticket = _ok(response, 201)
    assert (ticket["status"], ticket["client_id"], ticket["email"], ticket["name"]) == (
        "open",
        None,
        "guest@example.com",
        "Jean Dupont",
    )
    assert (ticket["due_at"], ticket["priority"], ticket["source"]) == (
        _iso(NOW + dt.timedelta(hours=2)),
        "medium",
        "api",
    )
    assert [(m["kind"], m["from_email"], m["author_id"]) for m in ticket["messages"]] == [
        ("customer", "guest@example.com", None)
    ]
    assert outbox == []


def test_a_guest_ticket_needs_an_email(http, support_desk):
    response = _post(
        http,
        "/tickets",
        {"department_id": support_desk["technical"].pk, "subject": "Hello", "body": "Hi"},
    )
    _refused(response, ("email", "Give the email address to answer to."))
    assert Ticket.objects.count() == 0


def test_an_unknown_department_or_assignee_is_refused_at_its_field(http, support_desk, customer):
    body = {"client_id": customer.pk, "subject": "Hello", "body": "Hi"}
    _refused(
        _post(http, "/tickets", {**body, "department_id": 999_999}),
        ("department_id", "No such department."),
    )
    _refused(
        _post(
            http,
            "/tickets",
            {**body, "department_id": support_desk["technical"].pk, "assignee_id": 999_999},
        ),
        ("assignee_id", "No such active user."),
    )
    assert Ticket.objects.count() == 0


def test_a_closed_department_and_a_bad_cc_are_refused(http, support_desk, customer):
    services.department_save(by=None, department=support_desk["billing"], active=False)
    body = {"client_id": customer.pk, "subject": "Hello", "body": "Hi"}
    _refused(
        _post(http, "/tickets", {**body, "department_id": support_desk["billing"].pk}),
        ("department_id", "This department is closed."),
    )
    _refused(
        _post(
            http,
            "/tickets",
            {**body, "department_id": support_desk["technical"].pk, "cc": ["not-an-address"]},
        ),
        ("cc", "not-an-address is not an email address."),
    )
    assert Ticket.objects.count() == 0


def test_a_client_out_of_scope_cannot_get_a_ticket(outsider, support_desk, customer):
    response = _post(
        outsider,
        "/tickets",
        {
            "client_id": customer.pk,
            "department_id": support_desk["technical"].pk,
            "subject": "Hello",
            "body": "Hi",
        },
    )
    _refused(response, ("client_id", "No client you may see has this id."))
    assert Ticket.objects.count() == 0


def test_opening_needs_support_work(reader, support_desk, customer):
    response = _post(
        reader,
        "/tickets",
        {
            "client_id": customer.pk,
            "department_id": support_desk["technical"].pk,
            "subject": "Hello",
            "body": "Hi",
        },
    )
    assert _problem(response, 403) == FORBIDDEN
    assert Ticket.objects.count() == 0


def test_a_retry_with_the_same_idempotency_key_opens_one_ticket(http, support_desk, customer):
    body = {
        "client_id": customer.pk,
        "department_id": support_desk["technical"].pk,
        "subject": "Hello",
        "body": "Hi",
        "from_customer": True,
    }
    first = _post(http, "/tickets", body, headers={"Idempotency-Key": "form-42"})
    again = _post(http, "/tickets", body, headers={"Idempotency-Key": "form-42"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert list(Ticket.objects.values_list("number", flat=True)) == ["000001"]


# ----------------------------------------------------------------------------- reading


def test_a_ticket_shows_its_thread_notes_attachments_and_problems(
    now, http, agent, support_desk, customer
):
    # given a mail with an attachment, and an internal note on its ticket
    received = mail_ingest(
        raw_mail(attachments=[("счёт.pdf", "application/pdf", b"%PDF-1.4 test")]), via="pipe"
    )
    ticket = received.ticket
    services.ticket_note(by=agent, ticket=ticket, body="Проверить SMTP.")
    attachment = received.message.attachments.get()

    # when the agent reads the ticket
    body = _ok(http.get(f"{API}/tickets/{ticket.pk}"))

    # then every message is there, in order, with its attachment's download address
    assert [(m["kind"], m["author"], m["from_email"], m["body"]) for m in body["messages"]] == [
        ("customer", None, "ivan@vms-group.ru", "Здравствуйте! Почта не отправляется с утра."),
        ("reply", None, "support@clientbase.test", body["messages"][1]["body"]),
        ("note", "Sasha Ivanova", "", "Проверить SMTP."),
    ]
    assert body["messages"][1]["auto_generated"] is True
    assert body["messages"][0]["attachments"] == [
        {
            "id": attachment.pk,
            "name": "счёт.pdf",
            "content_type": "application/pdf",
            "size": 13,
            "download_url": f"/support/attachment/{attachment.pk}/",
            "dropped_reason": "",
        }
    ]
    assert body["messages"][0]["problems"] == []
    assert (body["number"], body["status"], body["client_id"]) == ("000001", "open", customer.pk)


def test_a_ticket_of_a_client_out_of_sight_is_404(outsider, waiting):
    assert _problem(outsider.get(f"{API}/tickets/{waiting.pk}"), 404) == NOT_FOUND
    assert _problem(outsider.get(f"{API}/tickets/999999"), 404) == NOT_FOUND


WRITES = [
    ("patch", "", {"priority": "urgent"}),
    ("post", "/reply", {"body": "Hello"}),
    ("post", "/note", {"body": "Hello"}),
    ("post", "/assign", {"assignee_id": None}),
    ("post", "/transfer", {"department_id": 1}),
    ("post", "/close", {}),
    ("post", "/reopen", {}),
    ("post", "/merge", {"into_id": 1}),
]


@pytest.mark.parametrize(("method", "action", "data"), WRITES)
def test_every_write_to_a_ticket_out_of_sight_is_404(outsider, waiting, method, action, data):
    before = _state(waiting)
    send = _patch if method == "patch" else _post
    response = send(outsider, f"/tickets/{waiting.pk}{action}", data)
    assert _problem(response, 404) == NOT_FOUND
    assert _state(waiting) == before


@pytest.mark.parametrize(("method", "action", "data"), WRITES)
def test_every_write_needs_support_work(reader, waiting, method, action, data):
    before = _state(waiting)
    send = _patch if method == "patch" else _post
    assert _problem(send(reader, f"/tickets/{waiting.pk}{action}", data), 403) == FORBIDDEN
    assert _state(waiting) == before


# ----------------------------------------------------------------------------- changing


def test_patch_changes_priority_cc_complaint_and_subject(now, http, waiting):
    response = _patch(
        http,
        f"/tickets/{waiting.pk}",
        {
            "priority": "urgent",
            "cc": ["a@example.com", "A@example.com"],
            "is_complaint": True,
            "subject": "  Почта   не уходит ",
            "version": 1,
        },
    )
    body = _ok(response)
    assert (body["priority"], body["cc"], body["is_complaint"], body["subject"]) == (
        "urgent",
        ["a@example.com"],
        True,
        "Почта не уходит",
    )
    # the deadline of the urgent priority is the department's too: two hours
    assert (body["due_at"], body["version"]) == (_iso(NOW + dt.timedelta(hours=2)), 2)


def test_patch_with_an_old_version_is_a_409_and_changes_nothing(http, waiting):
    services.ticket_note(by=None, ticket=waiting, body="A colleague was faster.")
    before = _state(waiting)
    body = _problem(_patch(http, f"/tickets/{waiting.pk}", {"priority": "low", "version": 1}), 409)
    assert body["detail"] == (
        "Somebody else changed ticket #000001 meanwhile; reload it and try again."
    )
    assert _state(waiting) == before == ("open", "medium", None, waiting.department_id, 2, 2)


def test_a_reply_is_mailed_with_the_ticket_number_and_sets_the_status(
    now, http, agent, waiting, outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(
            http,
            f"/tickets/{waiting.pk}/reply",
            {"body": "Проверили настройки.", "cc": ["it@vms-group.ru"], "status": "on_hold"},
        )

    body = _ok(response)
    assert (body["status"], body["assignee_id"], body["due_at"], body["cc"]) == (
        "on_hold",
        agent.pk,
        None,
        ["it@vms-group.ru"],
    )
    reply = body["messages"][-1]
    assert (reply["kind"], reply["author"], reply["body"], reply["sent_at"]) == (
        "reply",
        "Sasha Ivanova",
        "Проверили настройки.",
        None,
    )
    # the mail goes out once the reply is committed
    assert TicketMessage.objects.get(pk=reply["id"]).sent_at == NOW
    assert [(m.subject, m.to, m.cc, m.body) for m in outbox] == [
        (
            "Re: [#000001] Не работает почта",
            ["ivan@vms-group.ru"],
            ["it@vms-group.ru"],
            "Проверили настройки.",
        )
    ]


def test_a_reply_with_an_old_version_is_a_409_and_sends_nothing(
    http, waiting, outbox, django_capture_on_commit_callbacks
):
    services.ticket_note(by=None, ticket=waiting, body="Taken.")
    before = _state(waiting)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(http, f"/tickets/{waiting.pk}/reply", {"body": "Hi", "version": 1})
    _problem(response, 409)
    assert _state(waiting) == before
    assert outbox == []


def test_a_reply_to_a_merged_ticket_is_refused(http, agent, support_desk, customer, waiting):
    other = services.ticket_open(
        by=None,
        department=support_desk["technical"],
        subject="И ещё",
        body="Вторая проблема.",
        client=customer,
        from_customer=True,
    )
    services.ticket_merge(by=agent, source=other, target=waiting)
    before = _state(other)

    response = _post(http, f"/tickets/{other.pk}/reply", {"body": "Hello"})

    _refused(response, ("", "This ticket was merged into #000001; work there."))
    assert _state(other) == before


def test_a_note_stays_internal(http, agent, waiting, outbox):
    body = _ok(_post(http, f"/tickets/{waiting.pk}/note", {"body": "Позвонить клиенту."}))
    assert [(m["kind"], m["author_id"], m["body"]) for m in body["messages"]][-1] == (
        "note",
        agent.pk,
        "Позвонить клиенту.",
    )
    assert (body["status"], body["version"]) == ("open", 2)
    assert outbox == []


def test_assign_to_a_colleague_and_back_to_nobody(http, make_user, waiting):
    colleague = make_user("pavel", role="support", unit="company")
    body = _ok(
        _post(
            http,
            f"/tickets/{waiting.pk}/assign",
            {"assignee_id": colleague.pk, "note": "Твой клиент."},
        )
    )
    assert (body["assignee_id"], body["assignee_name"]) == (colleague.pk, "pavel")
    assert body["messages"][-1]["kind"] == "note"
    assert body["messages"][-1]["body"] == "Твой клиент."

    body = _ok(_post(http, f"/tickets/{waiting.pk}/assign", {"assignee_id": None}))
    assert (body["assignee_id"], body["assignee_name"]) == (None, None)


def test_assign_to_an_unknown_user_is_refused(http, waiting):
    before = _state(waiting)
    response = _post(http, f"/tickets/{waiting.pk}/assign", {"assignee_id": 999_999})
    _refused(response, ("assignee_id", "No such active user."))
    assert _state(waiting) == before


def test_transfer_moves_the_ticket_and_its_deadline(now, http, support_desk, waiting):
    _patch(http, f"/tickets/{waiting.pk}", {"priority": "urgent"})
    body = _ok(
        _post(
            http,
            f"/tickets/{waiting.pk}/transfer",
            {"department_id": support_desk["billing"].pk, "note": "Это про деньги."},
        )
    )
    # billing answers urgent tickets within 30 minutes of the customer's message
    assert (body["department_id"], body["department"], body["due_at"]) == (
        support_desk["billing"].pk,
        "Billing questions",
        _iso(NOW + dt.timedelta(minutes=30)),
    )
    assert body["messages"][-1]["body"] == "Это про деньги."


def test_transfer_to_an_unknown_department_is_refused(http, waiting):
    before = _state(waiting)
    response = _post(http, f"/tickets/{waiting.pk}/transfer", {"department_id": 999_999})
    _refused(response, ("department_id", "No such department."))
    assert _state(waiting) == before


def test_close_and_reopen(now, http, agent, waiting, outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        closed = _ok(_post(http, f"/tickets/{waiting.pk}/close"))
    assert (closed["status"], closed["closed_at"], closed["due_at"]) == ("closed", _iso(NOW), None)
    assert [m.subject for m in outbox] == ["[#000001] Не работает почта"]
    assert "/support/rate/" in outbox[0].body

    # closing twice is refused at the status
    _refused(
        _post(http, f"/tickets/{waiting.pk}/close"), ("status", "The ticket is already closed.")
    )

    reopened = _ok(_post(http, f"/tickets/{waiting.pk}/reopen"))
    assert (reopened["status"], reopened["closed_at"], reopened["due_at"]) == (
        "open",
        None,
        _iso(NOW + dt.timedelta(hours=2)),
    )


def test_merge_needs_its_own_permission_and_returns_the_target(
    api_client, make_user, http, support_desk, customer, waiting
):
    other = services.ticket_open(
        by=None,
        department=support_desk["technical"],
        subject="И ещё",
        body="Вторая проблема.",
        client=customer,
        from_customer=True,
    )
    # the customer's sales person works tickets, but may not merge them
    seller = api_client(customer.owner)
    assert _problem(_post(seller, f"/tickets/{other.pk}/merge", {"into_id": waiting.pk}), 403)
    assert other.merged_into_id is None

    # an unknown target is refused at its field
    _refused(
        _post(http, f"/tickets/{other.pk}/merge", {"into_id": 999_999}),
        ("into_id", "No ticket you may see has this id."),
    )
    _refused(
        _post(http, f"/tickets/{other.pk}/merge", {"into_id": other.pk}),
        ("into_id", "A ticket cannot be merged into itself."),
    )

    body = _ok(_post(http, f"/tickets/{other.pk}/merge", {"into_id": waiting.pk}))
    assert (body["id"], body["number"]) == (waiting.pk, "000001")
    assert [m["body"] for m in body["messages"]] == [
        "Почта не отправляется с утра.",
        "Вторая проблема.",
    ]
    other.refresh_from_db()
    assert (other.merged_into_id, other.status) == (waiting.pk, "closed")


# ----------------------------------------------------------------------------- the list


def _ticket(desk, subject: str, *, client=None, email: str = "", **fields) -> Ticket:
    return services.ticket_open(
        by=None,
        department=desk,
        subject=subject,
        body="…",
        client=client,
        email=email,
        from_customer=True,
        **fields,
    )


def _numbers(http, query: str = "") -> list[str]:
    body = _ok(http.get(f"{API}/tickets{query}"))
    return [t["number"] for t in body["items"]]


def test_each_list_filter(now, http, agent, support_desk, customer):
    # given: 1 open guest ticket in billing, 2 the client's urgent complaint assigned to the
    # agent, 3 answered, 4 closed, 5 merged into 1
    tech, billing = support_desk["technical"], support_desk["billing"]
    first = _ticket(billing, "Invoice question", email="guest@example.com")
    _ticket(
        tech,
        "Mail is down",
        client=customer,
        priority="urgent",
        is_complaint=True,
        assignee=agent,
    )
    third = _ticket(tech, "Password reset", client=customer)
    services.ticket_reply(by=agent, ticket=third, body="Done.")
    fourth = _ticket(tech, "Old question", client=customer)
    services.ticket_close(by=agent, ticket=fourth, notify=False)
    fifth = _ticket(billing, "Invoice again", email="guest@example.com")
    services.ticket_merge(by=agent, source=fifth, target=first)

    # then each filter keeps the right tickets, newest first, merged ones never
    assert _numbers(http) == ["000004", "000003", "000002", "000001"]
    assert _numbers(http, "?status=answered") == ["000003"]
    assert _numbers(http, "?status=closed") == ["000004"]
    assert _numbers(http, "?status=awaiting") == ["000002", "000001"]
    assert _numbers(http, "?status=unresolved") == ["000003", "000002", "000001"]
    assert _numbers(http, f"?department={billing.pk}") == ["000001"]
    assert _numbers(http, "?priority=urgent") == ["000002"]
    assert _numbers(http, "?assignee=me") == ["000003", "000002"]
    assert _numbers(http, f"?assignee={agent.pk}") == ["000003", "000002"]
    assert _numbers(http, "?assignee=none") == ["000004", "000001"]
    assert _numbers(http, f"?client={customer.pk}") == ["000004", "000003", "000002"]
    assert _numbers(http, "?complaint=true") == ["000002"]
    assert _numbers(http, "?q=%2300002") == ["000002"]
    assert _numbers(http, "?q=guest@example.com") == ["000001"]
    assert _numbers(http, "?q=mail") == ["000002"]
    assert _numbers(http, "?overdue=true") == []
    now.shift(dt.timedelta(hours=2, minutes=1))
    assert _numbers(http, "?overdue=true") == ["000002", "000001"]
    body = _ok(http.get(f"{API}/tickets?limit=1&offset=1"))
    assert (body["count"], [t["number"] for t in body["items"]]) == (4, ["000003"])


def test_a_bad_filter_is_refused_at_its_name(http):
    _refused(
        http.get(f"{API}/tickets?assignee=somebody"),
        ("assignee", "String should match pattern '^(me|none|[1-9][0-9]{0,17})$'"),
    )
    body = _problem(http.get(f"{API}/tickets?status=lost"), 422)
    assert [e["field"] for e in body["errors"]] == ["status"]


def test_the_list_costs_the_same_queries_for_any_number_of_tickets(
    now, http, agent, support_desk, customer, django_assert_num_queries
):
    _ticket(support_desk["technical"], "One", client=customer, assignee=agent)
    http.get(f"{API}/me")  # the token's first use notes the time; later ones do not
    # token, count, page
    with django_assert_num_queries(3):
        assert len(_ok(http.get(f"{API}/tickets"))["items"]) == 1
    for n in range(5):
        _ticket(support_desk["billing"], f"More {n}", email=f"g{n}@example.com", assignee=agent)
    with django_assert_num_queries(3):
        assert len(_ok(http.get(f"{API}/tickets"))["items"]) == 6


def test_a_list_shows_only_tickets_in_sight(outsider, waiting):
    assert _ok(outsider.get(f"{API}/tickets")) == {"items": [], "count": 0}


# ----------------------------------------------------------------------------- departments


def test_anyone_signed_in_lists_departments_without_passwords(reader, support_desk):
    services.department_save(
        by=None,
        department=support_desk["technical"],
        imap_enabled=True,
        imap_host="imap.clientbase.test",
        imap_user="support",
        imap_password="s3cret",
    )
    body = _ok(reader.get(f"{API}/departments"))
    assert [(d["name"], d["imap_password_set"]) for d in body] == [
        ("Billing questions", False),
        ("Technical support", True),
    ]
    assert "s3cret" not in json.dumps(body)
    assert all("imap_password" not in d for d in body)


def test_create_and_change_a_department(api_client, admin_user, org, agent):
    http = api_client(admin_user)
    created = _ok(
        _post(
            http,
            "/departments",
            {
                "name": "Sales questions",
                "email": "Sales@Clientbase.test",
                "org_unit_id": org["branch"].pk,
                "sla_high": 45,
                "escalation": "reassign",
                "escalate_to_id": agent.pk,
                "imap_password": "pw",
            },
        ),
        201,
    )
    assert created == {
        "id": created["id"],
        "name": "Sales questions",
        "email": "sales@clientbase.test",
        "org_unit_id": org["branch"].pk,
        "is_default": False,
        "position": 0,
        "sla_low": 120,
        "sla_medium": 120,
        "sla_high": 45,
        "sla_urgent": 120,
        "escalation": "reassign",
        "escalate_to_id": agent.pk,
        "imap_enabled": False,
        "imap_host": "",
        "imap_port": 993,
        "imap_ssl": True,
        "imap_user": "",
        "imap_password_set": True,
        "imap_folder": "INBOX",
        "active": True,
    }

    changed = _ok(
        _patch(
            http,
            f"/departments/{created['id']}",
            {"escalation": "none", "escalate_to_id": None, "imap_password": "", "sla_low": 60},
        )
    )
    assert (changed["escalation"], changed["escalate_to_id"], changed["sla_low"]) == (
        "none",
        None,
        60,
    )
    # an empty password keeps the stored one
    assert changed["imap_password_set"] is True
    assert Department.objects.get(pk=created["id"]).imap_password == "pw"


def test_department_refusals(api_client, admin_user, http, org, support_desk):
    admin = api_client(admin_user)
    body = {"name": "X", "email": "x@clientbase.test", "org_unit_id": org["company"].pk}
    assert _problem(_post(http, "/departments", body), 403) == FORBIDDEN
    _refused(
        _post(admin, "/departments", {**body, "org_unit_id": 999_999}),
        ("org_unit_id", "No such org unit."),
    )
    _refused(
        _post(admin, "/departments", {**body, "escalation": "notify"}),
        ("escalate_to_id", "Choose who is told or takes over overdue tickets."),
    )
    _refused(
        _post(admin, "/departments", {**body, "email": "support@clientbase.test"}),
        ("email", "Another department has this name or address."),
    )
    assert Department.objects.count() == 2
    assert _problem(_patch(admin, "/departments/999999", {"name": "Y"}), 404) == NOT_FOUND


# ----------------------------------------------------------------------------- knowledge base


@pytest.fixture
def kb(agent):
    """Two chapters, a published article and a draft."""
    mail = KbCategory.objects.create(name="Mail", position=1)
    billing = KbCategory.objects.create(name="Billing", position=2)
    services.article_save(
        by=agent, category=mail, title="SMTP settings", body="Port 587, STARTTLS.", keywords="smtp"
    )
    services.article_save(
        by=agent, category=billing, title="Refunds", body="Within 3 days.", published=False
    )
    return {"mail": mail, "billing": billing}


def test_articles_drafts_only_for_writers(now, http, reader, kb, django_assert_num_queries):
    http.get(f"{API}/me")  # the token's first use notes the time; later ones do not
    # token, count, page: the category comes with each article
    with django_assert_num_queries(3):
        listed = _ok(http.get(f"{API}/kb/articles"))["items"]
    assert [(a["title"], a["category"], a["published"]) for a in listed] == [
        ("SMTP settings", "Mail", True),
        ("Refunds", "Billing", False),
    ]
    assert [a["title"] for a in _ok(reader.get(f"{API}/kb/articles"))["items"]] == ["SMTP settings"]
    draft = KbArticle.objects.get(title="Refunds")
    assert _problem(reader.get(f"{API}/kb/articles/{draft.pk}"), 404) == NOT_FOUND
    assert _ok(http.get(f"{API}/kb/articles/{draft.pk}"))["body"] == "Within 3 days."
    assert [a["title"] for a in _ok(http.get(f"{API}/kb/articles?q=starttls"))["items"]] == [
        "SMTP settings"
    ]
    found = _ok(http.get(f"{API}/kb/articles?category={kb['billing'].pk}"))["items"]
    assert [a["title"] for a in found] == ["Refunds"]
    assert _ok(reader.get(f"{API}/kb/categories")) == [
        {"id": kb["mail"].pk, "name": "Mail", "position": 1},
        {"id": kb["billing"].pk, "name": "Billing", "position": 2},
    ]


def test_write_an_article_from_a_ticket_and_change_it(now, http, agent, kb, waiting):
    created = _ok(
        _post(
            http,
            "/kb/articles",
            {
                "category_id": kb["mail"].pk,
                "title": "Mail does not go out",
                "body": "Check the SMTP password.",
                "keywords": "smtp  password",
                "source_ticket_id": waiting.pk,
            },
        ),
        201,
    )
    assert created == {
        "id": created["id"],
        "category_id": kb["mail"].pk,
        "category": "Mail",
        "title": "Mail does not go out",
        "body": "Check the SMTP password.",
        "keywords": "smtp password",
        "published": True,
        "source_ticket_id": waiting.pk,
        "created_by_id": agent.pk,
        "created_at": _iso(NOW),
        "updated_at": _iso(NOW),
    }
    changed = _ok(
        _patch(
            http,
            f"/kb/articles/{created['id']}",
            {"category_id": kb["billing"].pk, "published": False},
        )
    )
    assert (changed["category"], changed["published"], changed["title"]) == (
        "Billing",
        False,
        "Mail does not go out",
    )


def test_article_refusals(http, reader, outsider, kb, waiting):
    body = {"category_id": kb["mail"].pk, "title": "T", "body": "B"}
    assert _problem(_post(reader, "/kb/articles", body), 403) == FORBIDDEN
    _refused(
        _post(http, "/kb/articles", {**body, "category_id": 999_999}),
        ("category_id", "No such category."),
    )
    _refused(
        _post(http, "/kb/articles", {**body, "source_ticket_id": 999_999}),
        ("source_ticket_id", "No ticket you may see has this id."),
    )
    article = KbArticle.objects.get(title="SMTP settings")
    assert _problem(_patch(reader, f"/kb/articles/{article.pk}", {"title": "X"}), 403)
    assert KbArticle.objects.count() == 2
    assert KbArticle.objects.get(pk=article.pk).title == "SMTP settings"


# ----------------------------------------------------------------------------- inbound mail


def _deliver(http, raw: bytes, query: str = ""):
    return http.post(f"{API}/inbound-mail{query}", raw, content_type="message/rfc822")


def test_the_webhook_files_a_mail_once_however_often_it_is_delivered(
    now, relay, support_desk, customer
):
    first = _ok(_deliver(relay, raw_mail()))
    ticket = Ticket.objects.get()
    assert first == {
        "outcome": "ticket",
        "ticket_id": ticket.pk,
        "ticket_number": "000001",
        "reason": "",
    }
    assert (ticket.client, ticket.source, ticket.department) == (
        customer,
        "email",
        support_desk["technical"],
    )
    assert InboundMail.objects.get().via == "webhook"

    # the relay retries: 200, nothing done again
    again = _ok(_deliver(relay, raw_mail()))
    assert again == {
        "outcome": "duplicate",
        "ticket_id": ticket.pk,
        "ticket_number": "000001",
        "reason": "seen before",
    }
    assert (Ticket.objects.count(), InboundMail.objects.count()) == (1, 1)
    assert TicketMessage.objects.filter(kind="customer").count() == 1


def test_the_webhook_takes_json_and_a_department(relay, support_desk, customer):
    raw = raw_mail(message_id="<json@vms-group.ru>")
    response = _post(
        relay,
        f"/inbound-mail?department={support_desk['billing'].pk}",
        {"raw_base64": base64.b64encode(raw).decode()},
    )
    assert _ok(response)["outcome"] == "ticket"
    assert Ticket.objects.get().department == support_desk["billing"]


def test_the_webhook_takes_a_5_mb_message(relay, support_desk, customer):
    big = bytes(range(256)) * (5 * 2**20 // 256)
    raw = raw_mail(attachments=[("dump.bin", "application/octet-stream", big)])
    assert len(raw) > 5 * 2**20

    assert _ok(_deliver(relay, raw))["outcome"] == "ticket"
    attachment = TicketMessage.objects.get(kind="customer").attachments.get()
    assert (attachment.name, attachment.size) == ("dump.bin", len(big))


def test_the_webhook_refuses_an_oversized_message(relay, support_desk, settings):
    settings.SUPPORT_MAIL_MAX_BYTES = 2000
    raw = raw_mail(body="x" * 3000)

    body = _problem(_deliver(relay, raw), 413)
    assert (body["title"], body["detail"]) == (
        HTTPStatus(413).phrase,
        "The message is larger than 2000 bytes.",
    )
    encoded = {"raw_base64": base64.b64encode(raw).decode()}
    assert _problem(_post(relay, "/inbound-mail", encoded), 413)["status"] == 413
    assert (InboundMail.objects.count(), Ticket.objects.count()) == (0, 0)


def test_the_webhook_needs_support_ingest(http, support_desk):
    assert _problem(_deliver(http, raw_mail()), 403) == FORBIDDEN
    assert (InboundMail.objects.count(), Ticket.objects.count()) == (0, 0)


def test_the_webhook_refuses_empty_and_malformed_bodies(relay, support_desk):
    _refused(_deliver(relay, b""), ("body", "The message is empty."))
    _refused(
        _post(relay, "/inbound-mail", {"raw_base64": "not base64!"}),
        ("raw_base64", "This is not base64."),
    )
    _refused(
        _post(relay, "/inbound-mail", {"raw_base64": ""}),
        ("raw_base64", "The message is empty."),
    )
    _refused(
        _deliver(relay, raw_mail(), "?department=999999"),
        ("department", "No such department."),
    )
    response = relay.post(f"{API}/inbound-mail", b"hello", content_type="text/plain")
    assert _problem(response, 415)["detail"] == "Send the message as message/rfc822 or as JSON."
    assert (InboundMail.objects.count(), Ticket.objects.count()) == (0, 0)
