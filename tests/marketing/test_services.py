"""Message templates and sending from a card: saving, checking, sending, logging (MKT-1)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.http import Http404

from clientbase.billing.services import LineSpec, invoice_create
from clientbase.clients.services import contact_add
from clientbase.core.errors import ServiceError
from clientbase.core.models import AuditEntry
from clientbase.core.money import Money
from clientbase.marketing import services, sms
from clientbase.marketing.models import MessageTemplate, SmsMessage
from clientbase.marketing.queries import Records, records_for
from clientbase.sales.deal_services import deal_create
from clientbase.sales.lead_services import lead_create
from clientbase.sales.models import Activity

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def june(time_machine):
    """Today is 2 June 2025."""
    time_machine.move_to(dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC), tick=False)


@pytest.fixture(autouse=True)
def empty_outbox():
    """The SMS outbox starts empty."""
    sms.outbox.clear()


@pytest.fixture
def welcome(seller):
    """An email template with client tags."""
    return services.template_save(
        by=seller,
        name="Welcome",
        channel="email",
        language="fr",
        subject="Bienvenue {{ client.name }}",
        body="Bonjour {{ client.name }},\n{{ user.name }}",
    )


def audited(template_id: int, action: str) -> int:
    """How many audit entries of an action a template has."""
    return AuditEntry.objects.filter(
        object_type=ContentType.objects.get_for_model(MessageTemplate),
        object_id=str(template_id),
        action=action,
    ).count()


def field_error(call, **kwargs) -> tuple[str, str]:
    """The (field, message) a service refuses the call with."""
    with pytest.raises(ServiceError) as refused:
        call(**kwargs)
    ((field, messages),) = refused.value.message_dict.items()
    return field, messages[0]


# --- templates -------------------------------------------------------------------------


def test_a_template_is_saved_with_its_author_and_audited(welcome, seller):
    assert (welcome.name, welcome.channel, welcome.language, welcome.active) == (
        "Welcome",
        "email",
        "fr",
        True,
    )
    assert welcome.updated_by == seller
    assert welcome.updated_at == dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC)
    assert audited(welcome.pk, "create") == 1


def test_a_template_with_an_unknown_tag_is_refused_and_nothing_changes(welcome, seller):
    # when the body is changed to use a misspelt tag
    assert field_error(
        services.template_save,
        by=seller,
        template=welcome,
        name="Welcome",
        channel="email",
        subject="Hi",
        body="{{ client.fist_name }}",
    ) == ("body", "Unknown tag: client.fist_name")
    # then the stored template is as it was
    welcome.refresh_from_db()
    assert welcome.body == "Bonjour {{ client.name }},\n{{ user.name }}"
    assert field_error(
        services.template_save,
        by=seller,
        name="Other",
        channel="email",
        subject="{{ secret }}",
        body="x",
    ) == ("subject", "Unknown tag: secret")
    assert MessageTemplate.objects.count() == 1


def test_names_are_unique_per_channel_and_language(welcome, seller):
    assert field_error(
        services.template_save,
        by=seller,
        name="Welcome",
        channel="email",
        language="fr",
        subject="x",
        body="y",
    ) == ("name", "A template with this name, channel and language exists.")
    # the same name in another language or channel is fine
    services.template_save(
        by=seller, name="Welcome", channel="email", language="en", subject="x", body="y"
    )
    sms_template = services.template_save(
        by=seller, name="Welcome", channel="sms", language="fr", subject="ignored", body="Hi"
    )
    assert sms_template.subject == ""
    assert MessageTemplate.objects.count() == 3


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"name": "  "}, ("name", "The name cannot be empty.")),
        ({"channel": "fax"}, ("channel", "Choose email or SMS.")),
        ({"language": "de"}, ("language", "Choose a language from the list.")),
        ({"subject": ""}, ("subject", "The subject cannot be empty.")),
        ({"body": ""}, ("body", "The text cannot be empty.")),
        (
            {"body": "{% if %}"},
            (
                "body",
                "Syntax error on line 1: Expected an expression, got 'end of statement block'",
            ),
        ),
    ],
)
def test_bad_template_input_is_refused_at_its_field(seller, changes, expected):
    fields = {"name": "N", "channel": "email", "subject": "S", "body": "B", **changes}
    assert field_error(services.template_save, by=seller, **fields) == expected
    assert MessageTemplate.objects.count() == 0


def test_deleting_a_template_is_audited(welcome, seller):
    template_id = welcome.pk
    services.template_delete(by=seller, template=welcome)
    assert MessageTemplate.objects.count() == 0
    assert audited(template_id, "delete") == 1


# --- sending ---------------------------------------------------------------------------


def test_a_template_is_applied_to_a_client_with_its_address(welcome, seller, buyer):
    draft = services.template_apply(by=seller, template=welcome, records=Records(client=buyer))
    assert draft == services.Draft(
        subject="Bienvenue Atelier Lumière",
        body="Bonjour Atelier Lumière,\nMarie Dupont",
        to="contact@atelier-lumiere.fr",
    )


def test_applying_for_a_client_out_of_sight_is_a_404(welcome, other_seller, buyer):
    with pytest.raises(Http404):
        services.template_apply(by=other_seller, template=welcome, records=Records(client=buyer))
    with pytest.raises(Http404):
        records_for(other_seller, client=buyer.pk)


def test_an_edited_email_is_sent_on_commit_and_logged_as_a_done_activity(
    welcome, seller, buyer, django_capture_on_commit_callbacks
):
    # when the seller sends the message edited by hand, with a tag typed in
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.message_send(
            by=seller,
            channel="email",
            to="contact@atelier-lumiere.fr",
            subject="Votre devis, {{ client.name }}",
            body="Bonjour,\nvoici le devis. {{ user.first_name }}",
            client=buyer,
            template=welcome,
        )
    # then one mail left from the company address with the rendered text
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["contact@atelier-lumiere.fr"]
    assert message.subject == "Votre devis, Atelier Lumière"
    assert message.body == "Bonjour,\nvoici le devis. Marie"
    assert message.reply_to == [seller.email]
    # and a done email activity is on the client's card
    activity = Activity.objects.get()
    assert activity == sent.activity
    assert (activity.kind, activity.subject, activity.client, activity.owner) == (
        "email",
        "Votre devis, Atelier Lumière",
        buyer,
        seller,
    )
    assert activity.done_at == dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC)
    assert activity.body == "To: contact@atelier-lumiere.fr\n\nBonjour,\nvoici le devis. Marie"
    # the template itself did not change
    welcome.refresh_from_db()
    assert welcome.subject == "Bienvenue {{ client.name }}"


def test_an_sms_goes_through_the_outbox_backend_and_is_logged(
    seller, buyer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.message_send(
            by=seller,
            channel="sms",
            to="06 12 34 56 78",
            subject="",
            body="Rappel: RDV demain. {{ user.name }}",
            client=buyer,
        )
    # the French number was read in the client's country
    assert sent.to == "+33612345678"
    assert sms.outbox == [("+33612345678", "Rappel: RDV demain. Marie Dupont")]
    stored = SmsMessage.objects.get()
    assert (stored.status, stored.client, stored.sent_by) == ("sent", buyer, seller)
    assert stored.sent_at == dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC)
    activity = Activity.objects.get()
    assert (activity.kind, activity.subject) == ("sms", "SMS to +33612345678")


def test_a_failing_gateway_marks_the_sms_failed(
    seller, buyer, settings, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND = "tests.marketing.test_services.RefusingGateway"
    with django_capture_on_commit_callbacks(execute=True):
        services.message_send(
            by=seller, channel="sms", to="+33612345678", subject="", body="Hi", client=buyer
        )
    stored = SmsMessage.objects.get()
    assert (stored.status, stored.error, stored.sent_at) == ("failed", "no credit", None)


class RefusingGateway(sms.BaseBackend):
    """A gateway that turns every message away."""

    def send(self, to: str, body: str) -> None:
        raise sms.SmsError("no credit")


@pytest.mark.parametrize(
    ("channel", "to", "subject", "body", "expected"),
    [
        (
            "email",
            "not-an-address",
            "S",
            "B",
            ("to", "This is not an email address: not-an-address"),
        ),
        ("email", "", "S", "B", ("to", "Say where the message goes.")),
        ("email", "a@b.fr", "", "B", ("subject", "The subject cannot be empty.")),
        (
            "email",
            "a@b.fr",
            "S",
            "{{ client.fist_name }}",
            ("body", "Unknown tag: client.fist_name"),
        ),
        (
            "email",
            "a@b.fr",
            "{{ deal.name }}",
            "B",
            (
                "subject",
                "A tag has no value for this record: 'dict object' has no attribute 'name'",
            ),
        ),
        (
            "sms",
            "12",
            "",
            "B",
            ("to", "This phone number is too short: check for a missing digit."),
        ),
        (
            "sms",
            "+33612345678",
            "",
            "x" * 1531,
            ("body", "The text needs 11 SMS segments; at most 10 are allowed."),
        ),
        ("fax", "a@b.fr", "S", "B", ("channel", "Choose email or SMS.")),
    ],
)
def test_bad_input_sends_nothing_and_logs_nothing(
    seller, buyer, django_capture_on_commit_callbacks, channel, to, subject, body, expected
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert (
            field_error(
                services.message_send,
                by=seller,
                channel=channel,
                to=to,
                subject=subject,
                body=body,
                client=buyer,
            )
            == expected
        )
    assert callbacks == []
    assert mail.outbox == [] and sms.outbox == []
    assert Activity.objects.count() == 0 and SmsMessage.objects.count() == 0


def test_sending_about_a_client_out_of_sight_is_a_404_and_nothing_goes(
    other_seller, buyer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Http404):
        services.message_send(
            by=other_seller, channel="email", to="x@y.fr", subject="S", body="B", client=buyer
        )
    assert mail.outbox == [] and Activity.objects.count() == 0


def test_a_message_to_a_contact_goes_to_the_contact_and_logs_on_the_client(
    welcome, seller, buyer, django_capture_on_commit_callbacks
):
    contact = contact_add(
        client=buyer, by=seller, last_name="Durand", first_name="Paul", email="paul@lumiere.fr"
    )
    draft = services.template_apply(
        by=seller, template=welcome, records=records_for(seller, contact=contact.pk)
    )
    assert draft.to == "paul@lumiere.fr"
    with django_capture_on_commit_callbacks(execute=True):
        services.message_send(
            by=seller,
            channel="email",
            to=draft.to,
            subject="Hi {{ contact.first_name }}",
            body="B",
            contact=contact,
        )
    assert mail.outbox[0].subject == "Hi Paul"
    assert Activity.objects.get().client == buyer


def test_a_message_to_a_lead_uses_the_lead_tags_and_logs_on_the_lead(
    seller, django_capture_on_commit_callbacks
):
    lead = lead_create(
        by=seller,
        name="Jean Dupont",
        civility="M.",
        company="Dupont & Fils",
        email="jean@dupont.fr",
        phone="+33478000000",
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.message_send(
            by=seller,
            channel="email",
            to=lead.email,
            subject="{{ lead.company }}",
            body="Bonjour {{ lead.civility }} {{ lead.name }}",
            lead=lead,
        )
    assert (mail.outbox[0].subject, mail.outbox[0].body) == (
        "Dupont & Fils",
        "Bonjour M. Jean Dupont",
    )
    assert Activity.objects.get().lead == lead


def test_a_message_about_a_deal_fills_deal_tags_and_logs_on_deal_and_client(
    seller, buyer, django_capture_on_commit_callbacks
):
    deal = deal_create(
        by=seller,
        name="Refonte du site",
        value=Money(1234500, "EUR"),
        expected_close=dt.date(2025, 6, 30),
        client=buyer,
    )
    records = records_for(seller, deal=deal.pk)
    assert services.recipient_address("email", records) == "contact@atelier-lumiere.fr"
    with django_capture_on_commit_callbacks(execute=True):
        services.message_send(
            by=seller,
            channel="email",
            to="contact@atelier-lumiere.fr",
            subject="{{ deal.name }}",
            body="{{ deal.value }} avant le {{ deal.expected_close }} ({{ client.name }})",
            deal=deal,
        )
    assert mail.outbox[0].body == "12\u202f345,00\xa0€ avant le 30 juin 2025 (Atelier Lumière)"
    activity = Activity.objects.get()
    assert (activity.deal, activity.client) == (deal, buyer)


def test_a_deal_or_an_invoice_out_of_sight_is_a_404(seller, other_seller, buyer):
    deal = deal_create(by=seller, name="Secret", client=buyer)
    invoice = invoice_create(
        by=seller, client=buyer, lines=[LineSpec(description="Site", unit_price=Decimal("100"))]
    )
    for lookup in ({"deal": deal.pk}, {"invoice": invoice.pk}):
        with pytest.raises(Http404):
            records_for(other_seller, **lookup)
    assert records_for(seller, invoice=invoice.pk).invoice == invoice


def test_an_invoice_reminder_is_filled_from_a_real_invoice(welcome, seller, buyer):
    invoice = invoice_create(
        by=seller,
        client=buyer,
        lines=[LineSpec(description="Site", unit_price=Decimal("100"), tax_rate=Decimal(20))],
        due_on=dt.date(2025, 6, 16),
    )
    template = services.template_save(
        by=seller,
        name="Reminder",
        channel="email",
        subject="{{ invoice.total }}",
        body="{{ invoice.balance_due }} / {{ invoice.due_on }} / {{ client.name }}",
    )
    draft = services.template_apply(
        by=seller, template=template, records=records_for(seller, invoice=invoice.pk)
    )
    assert draft.subject == "120,00\xa0€"
    assert draft.body.endswith("/ 16 juin 2025 / Atelier Lumière")
    assert draft.to == "contact@atelier-lumiere.fr"
