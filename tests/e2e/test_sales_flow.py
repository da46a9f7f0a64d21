"""The sales CRM end to end, as a new seller works it in a real browser: capture a lead, log a
call, convert it, drag its deal across the board to won, turn a quote into a contract and an
invoice, send a templated email, and read the KPI report."""

import pytest
from django.core import mail
from playwright.sync_api import expect

from clientbase.accounts.models import Role
from clientbase.accounts.services import org_unit_create, user_create
from clientbase.billing.models import Invoice
from clientbase.marketing.services import template_save
from clientbase.sales.models import Activity, Contract, Deal, Lead, Quote
from clientbase.sales.pipelines import default_pipeline
from tests.conftest import PASSWORD
from tests.e2e.test_billing_flow import _shot, _watch
from tests.e2e.test_sales_board import _drag

pytestmark = pytest.mark.e2e


def test_a_lead_becomes_a_won_deal_a_contract_and_an_invoice(live_server, page, sign_in):
    company = org_unit_create(name="Acme", kind="company", parent=None, by=None)
    director = user_create(
        username="dina", password=PASSWORD, by=None, email="dina@example.com",
        role=Role.objects.get(slug="director"), org_unit=company,
    )  # fmt: skip
    user_create(
        username="marie", password=PASSWORD, by=None, email="marie@example.com",
        first_name="Marie", last_name="Dupont", role=Role.objects.get(slug="sales"),
        org_unit=company,
    )  # fmt: skip
    template_save(
        by=director,
        name="Welcome",
        channel="email",
        language="",
        subject="Welcome, {{ client.name }}",
        body="Hello {{ client.name }}, your contract is ready. {{ user.name }}",
    )
    won = default_pipeline("deal").stages.get(state="won")
    problems = _watch(page)
    sign_in(page, "marie", PASSWORD)

    # Capture a lead
    page.goto("/sales/leads/new/")
    page.fill("#id_name", "Jeanne Martin")
    page.fill("#id_company", "Boulangerie Martin")
    page.fill("#id_email", "jeanne@boulangerie-martin.fr")
    page.fill("#id_phone", "+33 1 99 00 11 88")
    page.fill("#id_country", "FR")
    page.fill("#id_potential", "1200")
    page.click("#lead-save")
    expect(page.locator("#lead-name")).to_contain_text("Jeanne Martin")

    # Log a call on its card
    page.click("#lead-log-call")
    page.select_option("#qa-kind", "call")
    page.fill("#qa-subject", "Wants bookkeeping for two shops")
    page.click("#qa-log")
    expect(page.locator("#count-call")).to_contain_text("1")

    # Convert it: a client and a deal
    page.click("#lead-convert")
    page.click("#convert-submit")
    lead = Lead.objects.get()
    page.wait_for_url(f"**/clients/{lead.client_id}/**")
    deal = Deal.objects.get(lead=lead)
    assert (deal.client_id, deal.value_minor, deal.currency) == (lead.client_id, 120000, "EUR")

    # Drag its deal across the board to won
    page.goto("/sales/deals/board/")
    expect(page.locator(f"#card-deal-{deal.pk}")).to_be_visible()
    _drag(page, f"#card-deal-{deal.pk}", won.pk)
    expect(page.locator(f"#column-{won.pk} #card-deal-{deal.pk}")).to_be_visible()
    expect(page.locator(f"#card-deal-{deal.pk}")).to_have_attribute("data-version", "2")
    _shot(page, "sales_flow_01_won")
    assert Deal.objects.get(pk=deal.pk).status == "won"

    # A quote for the new client becomes a contract and an invoice
    page.goto(f"/sales/quotes/new/?client={lead.client_id}&deal={deal.pk}")
    page.fill("#id_title", "Bookkeeping, first year")
    page.click("#quote-create")
    page.fill("#id_description", "Monthly bookkeeping, two shops")
    page.fill("#id_quantity", "12")
    page.fill("#id_unit_price", "100")
    page.click("#line-add")
    expect(page.locator(".quote-line")).to_have_count(1)
    page.click("#quote-send")
    expect(page.locator(".quote-stage")).to_contain_text("Sent")
    page.select_option("#stage-select", "accepted")
    page.click("#stage-submit")
    expect(page.locator(".quote-stage")).to_contain_text("Accepted")
    page.click("#convert-contract")
    expect(page.locator("#contract-number")).to_contain_text("C-00001")
    page.click("#from-quote")
    page.click("#convert-invoice")
    page.wait_for_url("**/billing/invoices/*/")
    quote = Quote.objects.get()
    invoice = Invoice.objects.get(pk=quote.invoice_id)
    contract = Contract.objects.get(pk=quote.contract_id)
    assert (quote.stage, quote.subtotal_minor) == ("converted", 120000)
    assert (invoice.client_id, invoice.subtotal_minor) == (lead.client_id, 120000)
    assert (contract.client_id, contract.value_minor) == (lead.client_id, quote.total_minor)
    _shot(page, "sales_flow_02_invoice")

    # Send a templated email from the client's card
    page.goto(f"/clients/{lead.client_id}/")
    page.click("#quick-actions")
    page.click("#action-send-message")
    page.select_option("#id_template", label="Welcome")
    expect(page.locator("#id_subject")).to_have_value("Welcome, Boulangerie Martin")
    page.click("#compose-send")
    page.wait_for_url(f"**/clients/{lead.client_id}/")
    sent = mail.outbox[-1]
    assert (sent.to, sent.subject) == (
        ["jeanne@boulangerie-martin.fr"],
        "Welcome, Boulangerie Martin",
    )
    assert sent.body == "Hello Boulangerie Martin, your contract is ready. Marie Dupont"

    # The KPI report counts the call, the lead and its conversion
    page.goto("/sales/kpi/")
    expect(page.locator('.kpi-row[data-metric="calls"] .kpi-actual')).to_have_text("1")
    expect(page.locator('.kpi-row[data-metric="new_leads"] .kpi-actual')).to_have_text("1")
    expect(page.locator('.kpi-row[data-metric="converted"] .kpi-actual')).to_have_text("1")
    _shot(page, "sales_flow_03_kpi")
    assert Activity.objects.filter(kind="email", client_id=lead.client_id).count() == 1
    assert problems == []
