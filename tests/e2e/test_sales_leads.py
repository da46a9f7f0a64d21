"""A seller's lead in a real browser: capture it (the duplicate check warns while typing), log
a call on the card, move it, convert it into a client; an administrator sets up distribution
and a web form whose post becomes a lead."""

import pytest
from django.test import Client as HttpClient
from playwright.sync_api import expect

from clientbase.accounts.models import Role
from clientbase.accounts.services import org_unit_create, user_create
from clientbase.clients.services import client_create
from clientbase.sales.models import Lead
from tests.conftest import PASSWORD
from tests.e2e.test_billing_flow import _shot, _watch

pytestmark = pytest.mark.e2e


def _user(username: str, role: str, unit, first: str):
    return user_create(
        username=username,
        password=PASSWORD,
        by=None,
        email=f"{username}@example.com",
        first_name=first,
        last_name="Test",
        role=Role.objects.get(slug=role),
        org_unit=unit,
    )


def test_capture_log_a_call_move_and_convert(live_server, page, sign_in):
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    seller = _user("marie", "sales", company, "Marie")
    client_create(by=seller, name="Atelier Lumière", email="contact@atelier-lumiere.fr")
    problems = _watch(page)
    sign_in(page, "marie", PASSWORD)

    # Capture: the duplicate check warns under the field while typing
    page.goto("/sales/leads/new/")
    page.fill("#id_name", "Jeanne Martin")
    page.fill("#id_company", "Boulangerie Martin")
    page.fill("#id_email", "contact@atelier-lumiere.fr")
    expect(page.locator("#duplicates-email")).to_contain_text("Atelier Lumière")
    _shot(page, "leads_01_duplicate_warning")
    page.fill("#id_email", "jeanne@boulangerie-martin.fr")
    expect(page.locator("#duplicates-email")).to_be_empty()
    page.fill("#id_phone", "+33 1 99 00 11 88")
    page.fill("#id_country", "FR")
    page.fill("#id_source", "fair")
    page.fill("#id_potential", "1200")
    page.fill("#id_needs", "Monthly bookkeeping for two shops")
    page.click("#lead-save")
    expect(page.locator("#lead-name")).to_contain_text("Jeanne Martin")
    lead = Lead.objects.get()

    # Log a call from the card
    page.click("#lead-log-call")
    page.select_option("#qa-kind", "call")
    page.fill("#qa-subject", "First call: wants a quote")
    page.click("#qa-log")
    expect(page.locator("#count-call")).to_contain_text("1")

    # Move it along, then convert it
    page.click("#lead-move-in_progress button")
    expect(page.locator("#lead-status")).to_contain_text("In progress")
    _shot(page, "leads_02_card")
    page.click("#lead-convert")
    _shot(page, "leads_03_convert")
    page.click("#convert-submit")
    page.wait_for_url(f"**/clients/{Lead.objects.get().client_id}/**")
    lead.refresh_from_db()
    assert (lead.status, lead.client.name) == ("customer", "Boulangerie Martin")
    assert lead.client.activities.filter(subject="First call: wants a quote").count() == 1
    page.goto(f"/sales/leads/{lead.pk}/")
    expect(page.locator("#lead-client")).to_contain_text("Boulangerie Martin")
    expect(page.locator("#lead-deals")).to_contain_text("Jeanne Martin (Boulangerie Martin)")
    _shot(page, "leads_03b_converted_card")
    page.goto("/sales/leads/")
    expect(page.locator(f"#lead-{lead.pk}")).to_contain_text("Customer")
    _shot(page, "leads_04_list")
    assert problems == []


def test_distribution_and_web_form(live_server, page, sign_in):
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    _user("root", "administrator", company, "Ada")
    seller = _user("minh", "sales", company, "Minh")
    problems = _watch(page)
    sign_in(page, "root", PASSWORD)

    page.goto("/sales/distribution/new/")
    page.fill("#id_name", "Website leads")
    page.fill("#id_source", "web form")
    page.check(f"input[name=members][value='{seller.pk}']")
    _shot(page, "leads_05_rule_form")
    page.click("#rule-save")
    expect(page.locator(".rule-row")).to_contain_text("Website leads")

    page.goto("/sales/webforms/new/")
    page.fill("#id_name", "Contact page")
    page.click("#webform-save")
    secret = page.input_value("#webform-secret")
    _shot(page, "leads_06_webform_secret")

    visitor = HttpClient(enforce_csrf_checks=True)
    answer = visitor.post(
        "/sales/webforms/submit/", {"key": secret, "name": "Lucie", "email": "lucie@example.org"}
    )
    assert answer.status_code == 200
    assert Lead.objects.get().owner == seller

    page.goto("/sales/distribution/log/")
    expect(page.locator(".distribution-row")).to_contain_text("Lucie")
    _shot(page, "leads_07_distribution_log")
    page.goto("/sales/webforms/")
    _shot(page, "leads_08_webforms")
    assert problems == []


def test_convert_offers_to_attach_to_the_client_with_the_email(live_server, page, sign_in):
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    seller = _user("marie", "sales", company, "Marie")
    client = client_create(by=seller, name="Atelier Lumière", email="contact@atelier-lumiere.fr")
    from clientbase.sales.lead_services import lead_create

    lead = lead_create(by=seller, name="Atelier", currency="EUR")
    Lead.objects.filter(pk=lead.pk).update(email="contact@atelier-lumiere.fr")
    problems = _watch(page)
    sign_in(page, "marie", PASSWORD)
    page.goto(f"/sales/leads/{lead.pk}/convert/")
    page.click("#convert-submit")
    expect(page.locator("#convert-problem")).to_contain_text("already has this email")
    _shot(page, "leads_09_convert_attach")
    page.click("#convert-attach")
    page.wait_for_url(f"**/clients/{client.pk}/**")
    lead.refresh_from_db()
    assert lead.client == client
    # The offer itself answers 409 (the conversion was refused), which the console reports.
    assert [p for p in problems if "409" not in p] == []
