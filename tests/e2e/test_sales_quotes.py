"""A seller's quote in a real browser: make it for a client, add a catalogue line and a free
line with htmx, send it, accept it, turn it into a contract and an invoice; a manager
approves a big discount; the contract template refuses an unknown tag."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from clientbase.accounts.models import Role
from clientbase.accounts.services import org_unit_create, user_create
from clientbase.catalog.models import Cycle, Price, Product
from clientbase.clients.services import client_create
from clientbase.sales.models import Contract, Quote
from tests.conftest import PASSWORD
from tests.e2e.test_billing_flow import _shot, _watch

pytestmark = pytest.mark.e2e


def _people():
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    seller = user_create(
        username="marie",
        password=PASSWORD,
        by=None,
        email="marie@example.com",
        first_name="Marie",
        last_name="Dupont",
        role=Role.objects.get(slug="sales"),
        org_unit=company,
    )
    manager = user_create(
        username="olga",
        password=PASSWORD,
        by=None,
        email="olga@example.com",
        role=Role.objects.get(slug="manager"),
        org_unit=company,
    )
    admin = user_create(
        username="root",
        password=PASSWORD,
        by=None,
        email="root@example.com",
        role=Role.objects.get(slug="administrator"),
        org_unit=company,
    )
    return seller, manager, admin


def test_quote_to_contract_and_invoice(live_server, new_page, sign_in):
    seller, _manager, _admin = _people()
    buyer = client_create(
        by=seller, name="Atelier Lumière", email="contact@atelier.fr", country="FR",
        currency="EUR", language="fr",
    )  # fmt: skip
    product = Product.objects.create(code="seo", name="SEO audit")
    Price.objects.create(product=product, currency="EUR", cycle=Cycle.ONE_TIME, amount_minor=90000)

    page = new_page()
    problems = _watch(page)
    sign_in(page, "marie", PASSWORD)
    page.goto(f"/sales/quotes/new/?client={buyer.pk}")
    page.fill("#id_title", "Website launch")
    page.click("#quote-create")
    expect(page.locator("#quote-number")).to_contain_text("Q-00001")
    quote = Quote.objects.get()

    # A catalogue line: choosing the product fills its name and price (htmx)
    page.select_option("select[name=product]", str(product.pk))
    expect(page.locator("#id_unit_price")).to_have_value("900")
    page.click("#line-add")
    expect(page.locator(".quote-line")).to_have_count(1)
    # A free line with a 20 % discount: the quote now needs approval
    page.fill("#id_description", "Extra landing page")
    page.fill("#id_quantity", "2")
    page.fill("#id_unit_price", "250")
    page.fill("#id_discount_percent", "20")
    page.click("#line-add")
    expect(page.locator(".quote-line")).to_have_count(2)
    expect(page.locator("#quote-total")).to_contain_text("1,300.00")
    # Changing a line in place: two SEO audits instead of one
    page.locator(".line-edit").first.click()
    expect(page.locator("#editing-line")).to_contain_text("SEO audit")
    page.fill("#id_quantity", "2")
    page.click("#line-add")
    expect(page.locator("#quote-total")).to_contain_text("2,200.00")
    page.reload()
    expect(page.locator("#approval-needed")).to_be_visible()
    page.mouse.wheel(0, -5000)
    _shot(page, "sales-quote-card")

    # Sending is refused with the reason, then approval is asked for
    page.click("#quote-send")
    expect(page.locator(".alert-danger, .alert-error").first).to_contain_text("approval")
    page.click("#approval-request")
    expect(page.locator(".quote-approval")).to_contain_text("Approval requested")

    # The manager approves in their own browser
    manager_page = new_page()
    sign_in(manager_page, "olga", PASSWORD)
    manager_page.goto(f"/sales/quotes/{quote.pk}/")
    manager_page.fill("#approve-form input[name=note]", "Fine for a first order")
    manager_page.click("#approve")
    expect(manager_page.locator(".quote-approval")).to_contain_text("Approved")

    # The seller sends, the client accepts, and the quote becomes a contract and an invoice
    page.reload()
    page.click("#quote-send")
    expect(page.locator(".quote-stage")).to_contain_text("Sent")
    assert len(mail.outbox) == 1 and mail.outbox[0].attachments[0][0] == "Q-00001.pdf"
    page.select_option("#stage-select", "accepted")
    page.click("#stage-submit")
    expect(page.locator(".quote-stage")).to_contain_text("Accepted")
    page.click("#convert-contract")
    expect(page.locator("#contract-number")).to_contain_text("C-00001")
    expect(page.locator("#from-quote")).to_have_text("Q-00001")
    page.click("#contract-activate")
    expect(page.locator(".contract-status")).to_contain_text("Active")
    _shot(page, "sales-contract-card")
    page.click("#from-quote")
    page.click("#convert-invoice")
    page.wait_for_load_state()
    quote.refresh_from_db()
    assert quote.stage == "converted" and quote.invoice_id and quote.contract_id
    assert page.url.endswith(f"/billing/invoices/{quote.invoice_id}/")
    assert Contract.objects.get().status == "active"
    page.goto("/sales/quotes/")
    expect(page.locator("#quote-table")).to_contain_text("Q-00001")
    _shot(page, "sales-quote-list")
    page.goto("/sales/contracts/")
    _shot(page, "sales-contract-list")
    page.goto("/sales/quotes/new/")
    expect(page.locator("#id_client")).to_contain_text("Atelier Lumière")
    _shot(page, "sales-quote-new")
    page.goto(f"/sales/contracts/new/?client={buyer.pk}")
    page.click("#contract-create")
    expect(page.locator("#id_title")).to_have_class(re.compile("is-invalid"))
    _shot(page, "sales-contract-new")

    # An administrator's contract template names an unknown tag
    admin_page = new_page()
    sign_in(admin_page, "root", PASSWORD)
    admin_page.goto("/sales/contract-templates/new/")
    admin_page.fill("#id_name", "Standard")
    admin_page.fill("#id_body", "Between us and {{ client.password }}.")
    admin_page.click("#template-save")
    expect(admin_page.locator("#body-error")).to_contain_text("client.password")
    admin_page.fill("#id_body", "Contract {{ contract.number }} with {{ client.name }}.")
    admin_page.click("#template-preview")
    expect(admin_page.locator("#preview")).to_contain_text("Contract")
    _shot(admin_page, "sales-contract-template")
    # A refused form answers 400, which the console reports; anything else is a fault.
    assert [p for p in problems if "status of 400" not in p] == []
