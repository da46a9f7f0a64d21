"""A clerk builds client files in a real browser: both kinds, both form modes, bad input."""

from playwright.sync_api import expect

from clientbase.clients.models import Address, Client, Contact, DeferredAction, Note
from tests.conftest import PASSWORD


def _new_client(page, mode: str):
    page.goto(f"/clients/new/?mode={mode}")
    expect(page.locator("h1")).to_have_text("Add a client")


def test_individual_and_company_in_both_modes_with_errors_at_their_fields(
    page, sign_in, make_user, org, screenshot
):
    make_user("clara", role="billing", unit="team_a")
    sign_in(page, "clara", PASSWORD)

    # an individual, simplified mode: the company fields hide when the kind is a person
    _new_client(page, "simple")
    page.select_option("#id_kind", "individual")
    expect(page.locator(".field-company_name")).to_be_hidden()
    expect(page.locator(".field-first_name")).to_be_visible()
    expect(page.locator(".field-source")).to_have_count(0)
    page.fill("#id_first_name", "Ivan")
    page.fill("#id_last_name", "Petrov")
    page.fill("#id_email", "ivan@example.ru")
    page.fill("#id_country", "RU")
    page.fill("#id_tax_id", "7707083893")
    page.click("button[type=submit]:has-text('Save')")
    # a company's INN on a person is refused at the field, with what to do
    expect(page.locator(".field-tax_id .invalid-feedback")).to_contain_text(
        "A person's INN has 12 digits; this one has 10"
    )
    page.fill("#id_tax_id", "500100732259")
    page.click("button[type=submit]:has-text('Save')")
    expect(page.locator("h1")).to_contain_text("Ivan Petrov")

    # a company, advanced mode, with a duplicate email first
    _new_client(page, "advanced")
    page.select_option("#id_kind", "company")
    expect(page.locator(".field-first_name")).to_be_hidden()
    page.fill("#id_company_name", "ООО Ромашка")
    page.fill("#id_email", "IVAN@example.ru")
    page.fill("#id_country", "RU")
    page.fill("#id_kpp", "773601001")
    page.fill("#id_tax_id", "7707083893")
    page.fill("#id_source", "Trade fair")
    page.click("button[type=submit]:has-text('Save')")
    expect(page.locator(".field-email .invalid-feedback")).to_contain_text(
        "already uses this email"
    )
    page.fill("#id_email", "info@romashka.example")
    page.click("button[type=submit]:has-text('Save')")
    expect(page.locator("h1")).to_contain_text("ООО Ромашка")
    screenshot(page, "client_company")
    company = Client.objects.get(kind="company")
    assert (company.kpp, company.source, company.tax_id) == (
        "773601001",
        "Trade fair",
        "7707083893",
    )
    assert Client.objects.count() == 2


def test_contacts_addresses_notes_and_a_deferred_status(page, sign_in, make_user, org, screenshot):
    from clientbase.clients.services import client_create

    clara = make_user("clara", role="billing", unit="team_a")
    alpha = client_create(
        by=clara, company_name="Alpha SARL", email="a@alpha.example", country="FR"
    )
    sign_in(page, "clara", PASSWORD)
    page.goto(f"/clients/{alpha.pk}/")

    page.click("#contacts a:has-text('Add')")
    page.fill("#id_first_name", "Marie")
    page.fill("#id_last_name", "Curie")
    page.fill("#id_phone_mobile", "06 12 34 56 78")
    page.click("button[type=submit]:has-text('Save')")
    expect(page.locator("#contacts")).to_contain_text("+33 6 12 34 56 78")

    page.click("#addresses a:has-text('Add')")
    page.select_option("#id_type", "billing")
    page.fill("#id_line1", "12 rue de la Paix")
    page.fill("#id_postcode", "75002")
    page.fill("#id_city", "Paris")
    page.click("button[type=submit]:has-text('Save')")
    expect(page.locator("#addresses")).to_contain_text("12 rue de la Paix")

    page.fill("#notes textarea[name=body]", "Pays only by bank transfer")
    page.check("#notes input[name=important]")
    page.click("#notes button:has-text('Add note')")
    expect(page.locator("#notes .note-important")).to_contain_text("Pays only by bank transfer")

    page.click("#status summary")
    page.select_option("#id_status", "inactive")
    page.fill("#id_reason", "Pause for the summer")
    page.fill("#id_effective", "2099-07-01")
    page.click("#status button:has-text('Change status')")
    expect(page.locator("#deferred-actions")).to_contain_text("Pause for the summer")
    screenshot(page, "client_profile")

    assert Contact.objects.get().last_name == "Curie"
    assert Address.objects.get().type == "billing"
    assert Note.objects.get().important is True
    assert DeferredAction.objects.get().state == "pending"
    assert Client.objects.get(pk=alpha.pk).status == "active"
