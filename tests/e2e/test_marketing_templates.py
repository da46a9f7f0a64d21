"""Message templates in a real browser: a director writes a template with a live preview and a
tag inserted from the help panel; a seller applies it from the client's card, edits the text
for this message only, sends it and finds it logged; an SMS goes to the outbox."""

import pytest
from django.core import mail
from playwright.sync_api import expect

from clientbase.accounts.models import Role
from clientbase.accounts.services import org_unit_create, user_create
from clientbase.clients.services import client_create
from clientbase.marketing.models import MessageTemplate, SmsMessage
from clientbase.sales.models import Activity
from tests.conftest import PASSWORD
from tests.e2e.test_billing_flow import _shot, _watch

pytestmark = pytest.mark.e2e


def _people():
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    team = org_unit_create(name="Team A", kind="team", parent=company, by=None)

    def person(username, role, unit, first, last):
        return user_create(
            username=username,
            password=PASSWORD,
            by=None,
            email=f"{username}@example.com",
            role=Role.objects.get(slug=role),
            org_unit=unit,
            first_name=first,
            last_name=last,
        )

    director = person("dina", "director", company, "Dina", "Laurent")
    seller = person("marie", "sales", team, "Marie", "Dupont")
    return director, seller


def test_write_a_template_then_send_it_from_a_client_card(live_server, page, new_page, sign_in):
    _director, seller = _people()
    buyer = client_create(
        by=seller,
        name="Atelier Lumière",
        email="contact@atelier-lumiere.fr",
        phone="+33612345678",
        country="FR",
        city="Lyon",
        currency="EUR",
        language="fr",
    )
    problems = _watch(page)

    # The director writes an email template; the preview follows the text as it is typed
    sign_in(page, "dina", PASSWORD)
    page.goto("/marketing/templates/")
    page.click("#template-add")
    page.fill("#id_name", "Bienvenue")
    page.select_option("#id_channel", "sms")
    expect(page.locator("#id_subject")).to_be_hidden()
    page.select_option("#id_channel", "email")
    expect(page.locator("#id_subject")).to_be_visible()
    page.select_option("#id_language", "fr")
    page.fill("#id_subject", "Bienvenue chez nous")
    page.fill("#id_body", "Bonjour ")
    page.click("button[data-bs-target='#tags-client']")
    page.click("#tags-client button[data-tag='client.name']")
    page.type("#id_body", ", à bientôt à ")
    page.click("#tags-client button[data-tag='client.city']")
    expect(page.locator("#id_body")).to_have_value(
        "Bonjour {{ client.name }}, à bientôt à {{ client.city }}"
    )
    expect(page.locator("#preview-text")).to_have_text("Bonjour Claire Martin, à bientôt à Paris")
    # then against the real client chosen as the example
    page.select_option("#example-client", str(buyer.pk))
    expect(page.locator("#preview-text")).to_have_text("Bonjour Atelier Lumière, à bientôt à Lyon")
    # a misspelt tag is named in the preview before saving
    page.fill("#id_subject", "Bienvenue {{ client.nmae }}")
    page.keyboard.press("End")
    expect(page.locator("#preview-error")).to_contain_text("Unknown tag: client.nmae")
    _shot(page, "marketing-template-editor")
    page.fill("#id_subject", "Bienvenue {{ client.name }}")
    page.click("#template-save")
    expect(page.locator("#template-" + str(MessageTemplate.objects.get().pk))).to_contain_text(
        "Bienvenue"
    )
    _shot(page, "marketing-template-list")

    # The seller applies it to the client, edits this message only, previews and sends it
    seller_page = new_page()
    problems += _watch(seller_page)
    sign_in(seller_page, "marie", PASSWORD)
    seller_page.goto(f"/clients/{buyer.pk}/")
    seller_page.click("#quick-actions")
    seller_page.click("#action-send-message")
    seller_page.wait_for_url(f"**/marketing/compose/?client={buyer.pk}")
    expect(seller_page.locator("#compose-about")).to_contain_text("Atelier Lumière")
    seller_page.select_option("#id_template", label="Bienvenue")
    expect(seller_page.locator("#id_subject")).to_have_value("Bienvenue Atelier Lumière")
    expect(seller_page.locator("#id_to")).to_have_value("contact@atelier-lumiere.fr")
    seller_page.fill("#id_body", "Bonjour {{ client.name }}, voici notre offre. {{ user.name }}")
    seller_page.click("#compose-preview")
    expect(seller_page.locator("#preview-text")).to_have_text(
        "Bonjour Atelier Lumière, voici notre offre. Marie Dupont"
    )
    _shot(seller_page, "marketing-compose")
    seller_page.click("#compose-send")
    seller_page.wait_for_url(f"**/clients/{buyer.pk}/")
    expect(seller_page.locator("body")).to_contain_text(
        "Message sent to contact@atelier-lumiere.fr"
    )
    assert mail.outbox[-1].body == "Bonjour Atelier Lumière, voici notre offre. Marie Dupont"
    activity = Activity.objects.get(kind="email")
    assert (activity.client, activity.subject) == (buyer, "Bienvenue Atelier Lumière")
    assert MessageTemplate.objects.get().body == (
        "Bonjour {{ client.name }}, à bientôt à {{ client.city }}"
    )

    # An SMS written without a template goes to the outbox
    seller_page.goto(f"/marketing/compose/?client={buyer.pk}")
    seller_page.click("#compose-sms")
    seller_page.wait_for_url("**channel=sms")
    expect(seller_page.locator("#id_to")).to_have_value("+33612345678")
    seller_page.fill("#id_body", "RDV demain 10h, {{ client.name }}")
    seller_page.click("#compose-preview")
    expect(seller_page.locator("#sms-length")).to_contain_text("1 SMS segment")
    _shot(seller_page, "marketing-compose-sms")
    seller_page.click("#compose-send")
    seller_page.wait_for_url(f"**/clients/{buyer.pk}/")
    seller_page.goto("/marketing/sms/")
    expect(seller_page.locator(".sms-row")).to_contain_text("RDV demain 10h, Atelier Lumière")
    assert SmsMessage.objects.get().status == "sent"
    _shot(seller_page, "marketing-sms-outbox")
    assert problems == []
