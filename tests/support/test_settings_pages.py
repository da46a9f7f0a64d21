"""Support settings pages: departments and their mailboxes, reply templates, and the log of
received mail with the raw message to download."""

import datetime as dt

import pytest
from django.urls import reverse

from clientbase.core.models import AuditEntry
from clientbase.support import services
from clientbase.support.intake import mail_ingest
from clientbase.support.models import Department, InboundMail, ReplyTemplate

from .conftest import raw_mail

pytestmark = pytest.mark.django_db

SECRET = "s3cret-imap-Pa55"


@pytest.fixture
def boss(make_user):
    """A director: sets up the support desk."""
    return make_user("boss", role="director", unit="company", first_name="Anna", last_name="Boss")


def _errors(response) -> dict:
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


def _department_post(org, **changes) -> dict:
    data = {
        "name": "Sales questions",
        "email": "Sales@Clientbase.test",
        "org_unit": org["company"].pk,
        "position": "3",
        "active": "on",
        "sla_low": "480",
        "sla_medium": "240",
        "sla_high": "60",
        "sla_urgent": "15",
        "escalation": "none",
        "escalate_to": "",
        "imap_host": "",
        "imap_port": "993",
        "imap_ssl": "on",
        "imap_user": "",
        "imap_password": "",
        "imap_folder": "INBOX",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _department_rows() -> list[tuple]:
    return list(Department.objects.order_by("pk").values_list("name", "email", "is_default"))


def test_the_department_list_shows_deadlines_escalation_and_mailbox(
    signed_in, boss, agent, support_desk, django_assert_num_queries
):
    # given a billing department that escalates to the agent and polls a mailbox
    services.department_save(
        by=boss,
        department=support_desk["billing"],
        escalation="reassign",
        escalate_to=agent,
        imap_enabled=True,
        imap_host="imap.clientbase.test",
        imap_user="billing",
        imap_password=SECRET,
    )
    http = signed_in(boss)
    # when the director opens the list
    with django_assert_num_queries(5):
        response = http.get(reverse("support:departments"))
    # then each department shows its address, default flag, deadlines and rules
    html = response.content.decode()
    assert response.status_code == 200
    assert [d.name for d in response.context["departments"]] == [
        "Billing questions",
        "Technical support",
    ]
    assert html.count('<span class="badge text-bg-primary">default</span>') == 1
    assert "<code>billing@clientbase.test</code>" in html
    assert '<td class="text-nowrap department-sla">120 · 120 · 120 · 30</td>' in html
    assert (
        '<td class="small department-escalation">Reassign to the escalation contact'
        '<div class="text-body-secondary">Sasha Ivanova</div></td>'
    ) in html
    assert (
        'imap.clientbase.test:993 · TLS<div class="text-body-secondary">billing · INBOX</div></td>'
    ) in html
    # and the stored IMAP password is nowhere in the page
    assert SECRET not in html


def test_settings_pages_need_support_settings(signed_in, agent, support_desk):
    # given an agent (support.work and support.kb, not support.settings)
    http = signed_in(agent)
    template = services.reply_template_save(by=agent, name="Hello", body="Hello $client_name")
    mail = mail_ingest(raw_mail()).inbound
    urls = [
        reverse("support:departments"),
        reverse("support:department_add"),
        reverse("support:department_edit", args=[support_desk["technical"].pk]),
        reverse("support:templates"),
        reverse("support:reply_template_add"),
        reverse("support:reply_template_edit", args=[template.pk]),
        reverse("support:reply_template_delete", args=[template.pk]),
        reverse("support:inbound"),
        reverse("support:inbound_raw", args=[mail.pk]),
    ]
    # when they open each settings page, then each is forbidden
    assert [http.get(url).status_code for url in urls] == [403] * len(urls)
    # and posting changes nothing
    assert (
        http.post(reverse("support:reply_template_delete", args=[template.pk])).status_code == 403
    )
    assert http.post(reverse("support:department_add"), {"name": "X"}).status_code == 403
    assert ReplyTemplate.objects.count() == 1 and Department.objects.count() == 2


def test_a_department_is_added_through_the_page(signed_in, boss, org, support_desk):
    # given the director on the new department page
    http = signed_in(boss)
    page = http.get(reverse("support:department_add"))
    assert page.status_code == 200
    assert 'name="imap_password"' in page.content.decode()
    assert page.context["form"]["org_unit"].value() == org["company"].pk
    # when the form is sent, as the new default, with a mailbox
    response = http.post(
        reverse("support:department_add"),
        _department_post(
            org,
            is_default="on",
            imap_enabled="on",
            imap_host="imap.example.com",
            imap_user="sales",
            imap_password=SECRET,
            imap_port="143",
            imap_ssl=None,
            imap_folder="",
        ),
    )
    # then it is saved exactly, and becomes the only default
    assert response.status_code == 302 and response["Location"] == reverse("support:departments")
    added = Department.objects.get(name="Sales questions")
    assert (added.email, added.org_unit, added.position, added.active) == (
        "sales@clientbase.test",
        org["company"],
        3,
        True,
    )
    assert (added.sla_low, added.sla_medium, added.sla_high, added.sla_urgent) == (480, 240, 60, 15)
    assert (added.imap_enabled, added.imap_host, added.imap_port, added.imap_ssl) == (
        True,
        "imap.example.com",
        143,
        False,
    )
    assert (added.imap_user, added.imap_password, added.imap_folder) == ("sales", SECRET, "INBOX")
    assert list(Department.objects.filter(is_default=True)) == [added]
    # and the audit log keeps no password
    entry = AuditEntry.objects.get(
        action="create", object_id=str(added.pk), object_repr="Sales questions"
    )
    assert SECRET not in str(entry.changes)


def test_editing_keeps_the_password_unless_a_new_one_is_typed(signed_in, boss, org, support_desk):
    # given a department with a stored IMAP password
    department = services.department_save(
        by=boss,
        department=support_desk["billing"],
        imap_enabled=True,
        imap_host="imap.clientbase.test",
        imap_user="billing",
        imap_password=SECRET,
    )
    http = signed_in(boss)
    url = reverse("support:department_edit", args=[department.pk])
    # when the edit page is opened, the password is not sent back
    page = http.get(url).content.decode()
    assert SECRET not in page
    assert '<input type="password" name="imap_password"' in page
    assert "A password is stored. Leave this empty to keep it." in page
    fields = _department_post(
        org,
        name="Billing questions",
        email="billing@clientbase.test",
        imap_enabled="on",
        imap_host="imap2.clientbase.test",
        imap_user="billing",
    )
    # when it is saved with the password field empty
    assert http.post(url, fields).status_code == 302
    department.refresh_from_db()
    # then the server changes and the password stays
    assert (department.imap_host, department.imap_password) == ("imap2.clientbase.test", SECRET)
    # when a refused save comes back with a typed password, the password is not echoed
    refused = http.post(url, {**fields, "email": "nope", "imap_password": "typed-new-one"})
    assert refused.status_code == 400
    assert "typed-new-one" not in refused.content.decode()
    assert SECRET not in refused.content.decode()
    # when a new password is typed
    assert http.post(url, {**fields, "imap_password": "brand-new"}).status_code == 302
    department.refresh_from_db()
    assert department.imap_password == "brand-new"


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"email": "not-an-address"},
            {"email": ["Enter the support address, e.g. support@example.com."]},
        ),
        (
            {"email": "SUPPORT@clientbase.test"},
            {"email": ["Another department has this name or address."]},
        ),
        (
            {"escalation": "notify"},
            {"escalate_to": ["Choose who is told or takes over overdue tickets."]},
        ),
        ({"name": "   "}, {"name": ["Give the department a name."]}),
        (
            {"imap_enabled": "on"},
            {"imap_host": ["Give the IMAP server and user to poll the mailbox."]},
        ),
        ({"sla_high": "0"}, {"sla_high": ["Ensure this value is greater than or equal to 1."]}),
    ],
    ids=[
        "bad-email",
        "duplicate-address",
        "escalation-without-contact",
        "no-name",
        "no-imap",
        "sla-zero",
    ],
)
def test_bad_department_input_is_shown_at_the_field(
    signed_in, boss, org, support_desk, changes, errors
):
    # given the two departments of the desk
    before = _department_rows()
    # when a new department is sent with one bad value
    response = signed_in(boss).post(
        reverse("support:department_add"), _department_post(org, **changes)
    )
    # then the field says why, and nothing is saved
    assert response.status_code == 400
    assert _errors(response) == errors
    html = response.content.decode()
    for message in next(iter(errors.values())):
        assert f'<div class="invalid-feedback d-block">{message}</div>' in html
    assert _department_rows() == before


def test_reply_templates_are_listed_added_edited_and_deleted(signed_in, boss, support_desk):
    http = signed_in(boss)
    # given the empty list; the new template page shows every tag
    assert "No template yet." in http.get(reverse("support:templates")).content.decode()
    page = http.get(reverse("support:reply_template_add")).content.decode()
    assert page.count("<code>$") == len(services.TAGS)
    assert "<code>$client_name</code>" in page and "<code>$ticket_number</code>" in page
    # when a template is added for the billing department
    response = http.post(
        reverse("support:reply_template_add"),
        {
            "name": "Invoice resent",
            "department": support_desk["billing"].pk,
            "body": "Hello $client_name,\nthe invoice costs $$10.",
        },
    )
    assert response.status_code == 302
    template = ReplyTemplate.objects.get()
    assert (template.name, template.department, template.body) == (
        "Invoice resent",
        support_desk["billing"],
        "Hello $client_name,\nthe invoice costs $$10.",
    )
    # then it is listed with its department
    listed = http.get(reverse("support:templates")).content.decode()
    assert ">Invoice resent</a></td>\n<td>Billing questions</td>" in listed
    # when it is edited for every department
    response = http.post(
        reverse("support:reply_template_edit", args=[template.pk]),
        {"name": "Invoice sent again", "department": "", "body": "Done, $agent_name."},
    )
    template.refresh_from_db()
    assert response.status_code == 302
    assert (template.name, template.department, template.body) == (
        "Invoice sent again",
        None,
        "Done, $agent_name.",
    )
    # when it is deleted after the confirmation page
    url = reverse("support:reply_template_delete", args=[template.pk])
    assert "Delete the template “Invoice sent again”" in http.get(url).content.decode()
    assert http.post(url).status_code == 302
    assert ReplyTemplate.objects.count() == 0


def test_an_unknown_tag_or_a_stray_dollar_is_refused_at_the_text(signed_in, boss):
    http = signed_in(boss)
    # when a template uses a tag that does not exist
    response = http.post(
        reverse("support:reply_template_add"), {"name": "Bad", "body": "Dear $customer"}
    )
    # then the text field names it and lists the tags; nothing is saved
    assert response.status_code == 400
    assert _errors(response) == {
        "body": [
            "Unknown tag $customer; the tags are: $ticket_number, $ticket_subject, $department, "
            "$client_name, $client_number, $client_email, $agent_name, $company"
        ]
    }
    # when a lone $ is written, or the name is empty
    response = http.post(reverse("support:reply_template_add"), {"name": "Bad", "body": "It is 5$"})
    assert _errors(response) == {
        "body": ["A $ must start a tag such as $client_name; write $$ for a dollar sign."]
    }
    response = http.post(reverse("support:reply_template_add"), {"name": " ", "body": "Hi"})
    assert _errors(response) == {"name": ["The name cannot be empty."]}
    assert ReplyTemplate.objects.count() == 0


@pytest.fixture
def received(support_desk, customer, agent):
    """A new ticket, a reply on it, and a mail loop that was ignored, a minute apart."""
    first = mail_ingest(raw_mail(), via="pipe")
    ticket = first.ticket
    InboundMail.objects.filter(pk=first.inbound.pk).update(
        received_at=dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
    )
    reply = mail_ingest(
        raw_mail(
            subject=f"Re: [#{ticket.number}] Не работает почта",
            body="Всё ещё не работает.",
            message_id="<second@vms-group.ru>",
        ),
        via="imap",
    )
    InboundMail.objects.filter(pk=reply.inbound.pk).update(
        received_at=dt.datetime(2026, 11, 2, 9, 1, tzinfo=dt.UTC)
    )
    loop = mail_ingest(
        raw_mail(sender="support@clientbase.test", subject="Loop", message_id="<loop@x>"),
        via="pipe",
    )
    InboundMail.objects.filter(pk=loop.inbound.pk).update(
        received_at=dt.datetime(2026, 11, 2, 9, 2, tzinfo=dt.UTC)
    )
    return {"ticket": ticket, "first": first.inbound, "reply": reply.inbound, "loop": loop.inbound}


def test_the_received_mail_log_lists_newest_first_and_filters_by_outcome(
    signed_in, boss, received, django_assert_num_queries
):
    http = signed_in(boss)
    # when the log is opened
    with django_assert_num_queries(6):
        response = http.get(reverse("support:inbound"))
    # then the mail is newest first, each with its outcome, reason and ticket
    rows = [(m.subject, m.outcome, m.via) for m in response.context["page"]]
    number = received["ticket"].number
    assert rows == [
        ("Loop", "ignored", "pipe"),
        (f"Re: [#{number}] Не работает почта", "reply", "imap"),
        ("Не работает почта", "ticket", "pipe"),
    ]
    html = response.content.decode()
    assert (
        '<div class="small text-body-secondary inbound-reason">'
        "sent from one of our own addresses (a mail loop)</div>"
    ) in html
    assert html.count(f'<a href="/support/t/{number}/">#{number}</a>') == 2
    assert "2026-11-02 09:02" in html
    # when it is narrowed to new tickets
    response = http.get(reverse("support:inbound"), {"outcome": "ticket"})
    assert [m.pk for m in response.context["page"]] == [received["first"].pk]
    # and an unknown outcome is ignored rather than failing
    response = http.get(reverse("support:inbound"), {"outcome": "bogus"})
    assert response.status_code == 200 and len(response.context["page"]) == 3


def test_the_log_is_paged_by_fifty_and_shows_problems(signed_in, boss):
    # given 51 received messages, the newest with reading problems
    start = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    InboundMail.objects.bulk_create(
        InboundMail(
            key=f"<m{n}@example.com>",
            received_at=start + dt.timedelta(minutes=n),
            via="pipe",
            sender="guest@example.com",
            subject=f"Message {n}",
            raw=b"Subject: x\r\n\r\nbody",
            size=20,
            outcome="ignored",
            reason="test",
            problems=["unknown charset x-weird: read as UTF-8"] if n == 50 else [],
        )
        for n in range(51)
    )
    http = signed_in(boss)
    # when the first page is opened
    first = http.get(reverse("support:inbound"))
    # then it holds the 50 newest, with the problem listed under the subject
    subjects = [m.subject for m in first.context["page"]]
    assert (len(subjects), subjects[0], subjects[-1]) == (50, "Message 50", "Message 1")
    assert "<li>unknown charset x-weird: read as UTF-8</li>" in first.content.decode()
    assert "Page 1 of 2" in first.content.decode()
    # and the second page the oldest one
    second = http.get(reverse("support:inbound"), {"page": "2"})
    assert [m.subject for m in second.context["page"]] == ["Message 0"]


def test_a_raw_message_downloads_exactly_as_received(signed_in, boss, received):
    # given a received mail
    mail = received["first"]
    # when its raw message is downloaded
    response = signed_in(boss).get(reverse("support:inbound_raw", args=[mail.pk]))
    # then it is the bytes as received, as an attachment the browser does not sniff
    assert response.status_code == 200
    assert response.content == raw_mail()
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"] == f'attachment; filename="mail-{mail.pk}.eml"'
    assert response["X-Content-Type-Options"] == "nosniff"
    # and a message that does not exist is 404
    assert signed_in(boss).get(reverse("support:inbound_raw", args=[99999])).status_code == 404
