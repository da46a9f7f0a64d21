"""A billing clerk's day in a real browser: sell, accept, edit the draft, issue, download the
PDF, take two payments, upgrade with proration, refund to credit and find the bill by `72*`."""

import datetime as dt
from pathlib import Path

import pytest
from playwright.sync_api import expect

from clientbase.billing.models import Invoice, Service
from clientbase.catalog.models import ConfigOption, Cycle, OptionPrice, Price, Product
from clientbase.clients.services import client_create
from tests.conftest import PASSWORD

SHOTS = Path("/tmp/shots")
SEED = dt.datetime(2019, 2, 1, 9, tzinfo=dt.UTC)
# 150 of the 181 days of the half-year from 1 February 2019 are left on 4 March.
UPGRADE_DAY = dt.datetime(2019, 3, 4, 9, tzinfo=dt.UTC)

pytestmark = pytest.mark.e2e


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # Off any button, so no hover or transition colours the picture.
    page.mouse.move(0, 0)
    page.wait_for_timeout(200)
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx then copies
    # onto the elements it swaps in, against the content security policy.
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")


def _watch(page) -> list[str]:
    """Console errors (a CSP block among them) and failed requests."""
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda error: problems.append(f"script: {error}"))
    return problems


def _catalog():
    product = Product.objects.create(code="cloud", name="Cloud access Standard")
    Price.objects.create(product=product, currency="EUR", cycle=Cycle.SEMI_ANNUAL, amount_minor=0)
    users = ConfigOption.objects.create(
        product=product, code="users", name="Users", included_units=0, min_units=1, max_units=50
    )
    OptionPrice.objects.create(
        option=users, currency="EUR", cycle=Cycle.SEMI_ANNUAL, unit_minor=80000
    )
    return product, users


def test_sell_invoice_pay_upgrade_refund_and_search(
    live_server, page, admin_user, sign_in, time_machine
):
    time_machine.move_to(SEED)
    product, users = _catalog()
    client = client_create(
        by=admin_user, name="Fabrika Biznesa", email="office@fabrika.example", currency="EUR",
        country="FR",
    )  # fmt: skip
    problems = _watch(page)
    sign_in(page, admin_user.username, PASSWORD)

    # sell: from the profile's quick actions, 6 users for half a year
    page.goto(f"/clients/{client.pk}/")
    page.click("#quick-actions")
    page.click("#action-new-order")
    expect(page.locator("#id_client")).to_have_value(client.number)
    page.select_option("#id_product", label=str(product))
    page.select_option("#id_cycle", value=Cycle.SEMI_ANNUAL)
    page.fill(f"#option_{users.pk}", "6")
    page.select_option("#id_payment_method", value="bank_transfer")
    _shot(page, "01_order_form")
    page.click("#place-order")
    expect(page.locator("main h1")).to_contain_text("Pending")
    _shot(page, "02_order_pending")

    # accept: a draft invoice for the first half-year
    page.click("#accept-order")
    expect(page.locator("#invoice-title")).to_contain_text("Draft invoice")
    expect(page.locator("#total")).to_have_text("€4,800.00")

    # edit the draft: add a setup line
    page.click("#add-line summary")
    page.fill("#add-line #id_description", "Setup and data migration")
    page.fill("#add-line #id_unit_price", "1000.00")
    page.click("#add-line-submit")
    expect(page.locator(".invoice-line")).to_have_count(3)
    expect(page.locator("#total")).to_have_text("€5,800.00")
    _shot(page, "03_invoice_draft")

    # issue
    page.click("#issue-invoice")
    expect(page.locator("#invoice-title")).to_contain_text("Invoice 1")
    first = Invoice.objects.get()
    assert (first.number, first.status) == ("1", "unpaid")

    # download the PDF
    with page.expect_download() as download:
        page.click("#download-pdf")
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")

    # a partial payment, then the rest (the amount is prefilled with the balance)
    expect(page.locator("#record-payment #id_amount")).to_have_value("5800.00")
    page.fill("#record-payment #id_amount", "2000.00")
    page.click("#record-payment-submit")
    expect(page.locator("h1 .billing-status")).to_have_text("Partially paid")
    expect(page.locator("#balance")).to_have_text("€3,800.00")
    expect(page.locator("#record-payment #id_amount")).to_have_value("3800.00")
    _shot(page, "04_invoice_partially_paid")
    page.click("#record-payment-submit")
    expect(page.locator("h1 .billing-status")).to_have_text("Paid")
    expect(page.locator("#balance")).to_have_text("€0.00")
    _shot(page, "05_invoice_paid")

    # 150 of 181 days later, upgrade to 10 users (the session has expired meanwhile)
    time_machine.move_to(UPGRADE_DAY)
    sign_in(page, admin_user.username, PASSWORD)
    service = Service.objects.get()
    page.goto("/billing/services/")
    _shot(page, "06_services")
    page.click(f"a[href='/billing/services/{service.pk}/']>> nth=0")
    _shot(page, "07_service")
    page.click("#change-service")
    expect(page.locator(f"#option_{users.pk}")).to_have_value("6")
    page.fill(f"#option_{users.pk}", "10")
    page.click("#preview-change")
    expect(page.locator("#days-left")).to_have_text("150 / 181")
    expect(page.locator("#old-price")).to_have_text("€4,800.00")
    expect(page.locator("#new-price")).to_have_text("€8,000.00")
    expect(page.locator("#change-charge")).to_have_text("€2,651.93")
    expect(page.locator("#change-total")).to_have_text("€2,651.93")
    _shot(page, "08_change_preview")
    page.click("#confirm-change")
    expect(page.locator("#invoice-title")).to_contain_text("Invoice 2")
    expect(page.locator("#total")).to_have_text("€2,651.93")
    _shot(page, "09_upgrade_invoice")

    # refund 500.00 of the first invoice to the client's credit
    page.goto(f"/billing/invoices/{first.pk}/")
    page.click("#refund summary")
    page.fill("#refund #id_amount", "500.00")
    page.select_option("#refund #id_destination", value="credit")
    page.fill("#refund #id_reason", "Goodwill for the migration delay")
    page.click("#refund-submit")
    expect(page.locator("#credit-held")).to_have_text("€500.00")
    expect(page.locator("#refunded")).to_have_text("€500.00")
    _shot(page, "10_invoice_refunded")

    # find the first invoice with the * search
    page.goto("/billing/invoices/")
    page.fill("#id_number", "1*")
    page.click("#bills-search-submit")
    expect(page.locator(".invoice-row")).to_have_count(1)
    expect(page.locator(".invoice-row")).to_have_attribute("data-number", "1")
    page.goto("/billing/invoices/?sort=-balance")
    expect(page.locator(".invoice-row")).to_have_count(2)
    _shot(page, "11_invoice_list")

    # the profile's transactions with the running balance
    page.goto(f"/clients/{client.pk}/?tab=transactions")
    expect(page.locator("#profile-credit")).to_have_text("€500.00")
    _shot(page, "12_profile_transactions")
    page.goto(f"/clients/{client.pk}/?tab=invoices")
    _shot(page, "13_profile_invoices")
    page.goto("/billing/payments/")
    _shot(page, "14_payments")
    page.goto(f"/billing/invoices/{first.pk}/print/")
    _shot(page, "15_print")

    # invoice a top-up of 200.00 and pay it: the credit grows by what was paid
    page.goto(f"/clients/{client.pk}/?tab=transactions")
    page.click("#credit-top-up summary")
    page.fill("#credit-top-up #id_amount", "200.00")
    _shot(page, "16_credit_top_up_form")
    page.click("#credit-top-up-submit")
    expect(page.locator("#top-up-badge")).to_be_visible()
    expect(page.locator("#invoice-title")).to_contain_text("Invoice 3")
    page.fill("#record-payment #id_amount", "200.00")
    page.click("#record-payment-submit")
    expect(page.locator("#credit-held")).to_have_text("€700.00")
    _shot(page, "17_credit_top_up_paid")
    assert problems == []
