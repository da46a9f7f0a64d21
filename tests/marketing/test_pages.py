"""Marketing pages: template list, editor with live preview, compose and send, SMS outbox."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse

from clientbase.marketing import services, sms
from clientbase.marketing.models import MessageTemplate, SmsMessage
from clientbase.sales.models import Activity

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def june(time_machine):
    """Today is 2 June 2025."""
    time_machine.move_to(dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC), tick=False)
    sms.outbox.clear()


@pytest.fixture
def welcome(admin_user):
    """An active email template."""
    return services.template_save(
        by=admin_user,
        name="Welcome",
        channel="email",
        subject="Bienvenue {{ client.name }}",
        body="Bonjour {{ client.name }}, {{ user.first_name }}",
    )


@pytest.fixture
def reminder(admin_user):
    """An active SMS template."""
    return services.template_save(
        by=admin_user, name="Reminder", channel="sms", body="RDV demain, {{ client.name }}"
    )


def test_the_list_shows_templates_by_channel_in_constant_queries(
    signed_in, admin_user, welcome, reminder, django_assert_max_num_queries
):
    http = signed_in(admin_user)
    with django_assert_max_num_queries(12):
        page = http.get(reverse("marketing:templates"))
    assert page.status_code == 200
    assert b"Welcome" in page.content and b"Reminder" in page.content
    sms_only = http.get(reverse("marketing:templates") + "?channel=sms").content.decode()
    assert "Reminder" in sms_only and "Welcome" not in sms_only


def test_a_seller_cannot_open_the_template_pages(signed_in, seller, welcome):
    http = signed_in(seller)
    assert http.get(reverse("marketing:templates")).status_code == 403
    assert http.post(reverse("marketing:template_delete", args=[welcome.pk])).status_code == 403
    assert MessageTemplate.objects.count() == 1


def test_a_template_is_written_in_the_editor(signed_in, admin_user):
    http = signed_in(admin_user)
    assert http.get(reverse("marketing:template_add")).status_code == 200
    response = http.post(
        reverse("marketing:template_add"),
        {
            "name": "Relance",
            "channel": "email",
            "language": "fr",
            "subject": "Facture {{ invoice.number }}",
            "body": "Bonjour {{ client.name }}",
            "active": "on",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("marketing:templates") + "?channel=email"
    saved = MessageTemplate.objects.get()
    assert (saved.name, saved.language, saved.subject, saved.active) == (
        "Relance",
        "fr",
        "Facture {{ invoice.number }}",
        True,
    )


def test_an_unknown_tag_is_shown_at_the_text_and_nothing_is_saved(signed_in, admin_user):
    http = signed_in(admin_user)
    response = http.post(
        reverse("marketing:template_add"),
        {"name": "Bad", "channel": "email", "subject": "S", "body": "{{ client.fist_name }}"},
    )
    assert response.status_code == 400
    assert "Unknown tag: client.fist_name" in response.content.decode()
    assert MessageTemplate.objects.count() == 0


def test_the_live_preview_fills_the_tags_for_a_chosen_client(signed_in, admin_user, buyer):
    http = signed_in(admin_user)
    data = {"channel": "email", "subject": "Hi {{ client.name }}", "body": "{{ client.email }}"}
    with_examples = http.post(reverse("marketing:template_preview"), data).content.decode()
    assert "Hi Claire Martin" in with_examples
    assert "claire@atelier-martin.fr" in with_examples
    for_buyer = http.post(
        reverse("marketing:template_preview"), {**data, "example_client": buyer.pk}
    ).content.decode()
    assert 'id="preview-subject">Hi Atelier Lumière<' in for_buyer
    assert "contact@atelier-lumiere.fr" in for_buyer


def test_the_preview_counts_sms_segments_and_names_an_unknown_tag(signed_in, admin_user):
    http = signed_in(admin_user)
    counted = http.post(
        reverse("marketing:template_preview"), {"channel": "sms", "body": "x" * 161}
    ).content.decode()
    assert "161 characters (GSM-7), 2 SMS segments" in counted
    refused = http.post(
        reverse("marketing:template_preview"), {"channel": "sms", "body": "{{ nope }}"}
    ).content.decode()
    assert "Unknown tag: nope" in refused


def test_the_preview_for_a_client_out_of_sight_is_a_404(signed_in, make_user, buyer):
    # given someone allowed to write templates who sees only their own records
    writer = make_user("writer", role="sales", unit="team_b")
    writer.role.permissions = [*writer.role.permissions, "marketing.templates"]
    writer.role.save()
    http = signed_in(writer)
    response = http.post(
        reverse("marketing:template_preview"),
        {"channel": "email", "body": "x", "example_client": buyer.pk},
    )
    assert response.status_code == 404


def test_compose_fills_the_chosen_template_for_the_client(signed_in, seller, buyer, welcome):
    http = signed_in(seller)
    page = http.get(reverse("marketing:compose") + f"?client={buyer.pk}&template={welcome.pk}")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'value="Bienvenue Atelier Lumière"' in html
    assert "Bonjour Atelier Lumière, Marie</textarea>" in html
    assert 'value="contact@atelier-lumiere.fr"' in html


def test_compose_for_a_client_out_of_sight_is_a_404(signed_in, other_seller, buyer):
    http = signed_in(other_seller)
    assert http.get(reverse("marketing:compose") + f"?client={buyer.pk}").status_code == 404
    response = http.post(
        reverse("marketing:compose"),
        {"client": buyer.pk, "channel": "email", "to": "a@b.fr", "subject": "S", "body": "B"},
    )
    assert response.status_code == 404
    assert Activity.objects.count() == 0 and mail.outbox == []


def test_an_edited_message_is_sent_and_the_seller_goes_back_to_the_card(
    signed_in, seller, buyer, welcome, django_capture_on_commit_callbacks
):
    http = signed_in(seller)
    with django_capture_on_commit_callbacks(execute=True):
        response = http.post(
            reverse("marketing:compose"),
            {
                "client": buyer.pk,
                "template": welcome.pk,
                "channel": "email",
                "to": "contact@atelier-lumiere.fr",
                "subject": "Votre devis",
                "body": "Bonjour {{ client.name }}, voici le devis.",
            },
        )
    assert response.status_code == 302
    assert response["Location"] == reverse("clients:detail", args=[buyer.pk])
    assert mail.outbox[0].body == "Bonjour Atelier Lumière, voici le devis."
    assert Activity.objects.get().subject == "Votre devis"
    welcome.refresh_from_db()
    assert welcome.body == "Bonjour {{ client.name }}, {{ user.first_name }}"


def test_a_bad_phone_is_shown_at_the_field_and_nothing_is_sent(signed_in, seller, buyer):
    http = signed_in(seller)
    response = http.post(
        reverse("marketing:compose"),
        {"client": buyer.pk, "channel": "sms", "to": "12", "body": "Hi"},
    )
    assert response.status_code == 400
    assert "This phone number is too short" in response.content.decode()
    assert SmsMessage.objects.count() == 0 and Activity.objects.count() == 0


def test_the_compose_preview_renders_for_the_records(signed_in, seller, buyer):
    http = signed_in(seller)
    html = http.post(
        reverse("marketing:compose_preview"),
        {"client": buyer.pk, "channel": "email", "subject": "{{ client.name }}", "body": "B"},
    ).content.decode()
    assert 'id="preview-subject">Atelier Lumière<' in html


def test_the_sms_outbox_lists_what_was_sent_about_clients_in_sight(
    signed_in, seller, other_seller, buyer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.message_send(
            by=seller, channel="sms", to="+33612345678", subject="", body="Hello", client=buyer
        )
    mine = signed_in(seller).get(reverse("marketing:sms_outbox")).content.decode()
    assert "+33612345678" in mine and "Hello" in mine
    theirs = signed_in(other_seller).get(reverse("marketing:sms_outbox")).content.decode()
    assert "+33612345678" not in theirs


def test_a_template_needing_a_deal_is_offered_raw_with_the_reason(
    signed_in, seller, buyer, admin_user
):
    template = services.template_save(
        by=admin_user, name="Deal", channel="email", subject="{{ deal.name }}", body="Hi"
    )
    html = (
        signed_in(seller)
        .get(reverse("marketing:compose") + f"?client={buyer.pk}&template={template.pk}")
        .content.decode()
    )
    assert 'id="fill-error"' in html and "A tag has no value for this record" in html
    assert 'value="{{ deal.name }}"' in html
    assert 'value="contact@atelier-lumiere.fr"' in html


def test_the_sms_channel_offers_only_sms_templates_and_no_subject(
    signed_in, seller, buyer, welcome, reminder
):
    html = (
        signed_in(seller)
        .get(reverse("marketing:compose") + f"?client={buyer.pk}&channel=sms")
        .content.decode()
    )
    assert ">Reminder</option>" in html and ">Welcome</option>" not in html
    assert 'name="subject"' not in html
