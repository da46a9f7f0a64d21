"""Billing automation in a real browser: run billing and watch its progress, import the
seed's bank statement and clear the suspense list, set up a dunning scenario."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from clientbase.billing import services
from clientbase.billing.models import BankPayment, BillingRun, DunningStep, Invoice
from clientbase.billing.run import billing_run_start, billing_run_work
from clientbase.clients.services import client_create
from clientbase.core.models import NumberSeries
from tests.billing.billing_scenario import seed
from tests.billing.test_statement_parsing import as_1c_bytes, seed_1c
from tests.conftest import PASSWORD
from tests.e2e.test_billing_flow import _shot, _watch

pytestmark = pytest.mark.e2e


def test_a_clerk_runs_billing_and_watches_its_progress(page, admin_user, sign_in, settings):
    settings.BILLING_RUN_CHUNK = 10
    seed(35, dt.date.today())
    problems = _watch(page)
    sign_in(page, admin_user.username, PASSWORD)

    # a run started elsewhere: its page polls and fills up as workers bill it
    waiting = billing_run_start(trigger="cron")
    page.goto(f"/billing/runs/{waiting.pk}/")
    expect(page.locator("#run-done")).to_have_text("0 of 35 clients")
    _shot(page, "20_run_running")
    billing_run_work(waiting.pk)
    expect(page.locator("#run-done")).to_have_text("35 of 35 clients", timeout=10_000)
    expect(page.locator("#run-invoices")).to_have_text("35")
    expect(page.locator("#run-progress .badge")).to_have_text("Done")
    _shot(page, "21_run_done")

    # the button starts another run; nothing is due any more, so nothing is billed twice
    page.goto("/billing/runs/")
    page.click("#start-run")
    expect(page.locator("#run-progress .badge")).to_have_text("Done")
    expect(page.locator("#run-invoices")).to_have_text("0")
    page.goto("/billing/runs/")
    expect(page.locator(".run-row")).to_have_count(2)
    _shot(page, "22_run_list")
    assert Invoice.objects.filter(billing_run=waiting).count() == 35
    assert BillingRun.objects.count() == 2
    assert problems == []


def test_a_clerk_imports_the_seed_statement_and_clears_the_suspense_list(
    page, admin_user, sign_in, tmp_path
):
    payer = client_create(by=admin_user, name='ООО "Тех.промышлен"', email="buh@tp.example",
                          currency="RUB", country="RU", tax_id="7814695160")  # fmt: skip
    NumberSeries.objects.update_or_create(key="invoice", defaults={"next_value": 72815})
    bills = []
    for amount in ("15000.00", "860.00"):
        draft = services.invoice_create(
            by=admin_user, client=payer, lines=[services.LineSpec("Доступ", amount)]
        )
        bills.append(services.invoice_issue(by=admin_user, invoice=draft))
    # the seed's order pays 72815 exactly; a second one names 72816 with the wrong amount
    second = (
        seed_1c()
        .split("СекцияДокумент=")[1]
        .replace("Номер=27", "Номер=28")
        .replace("Сумма=15000.00", "Сумма=900.00")
        .replace("88#72815", "88#72816")
    )
    statement = tmp_path / "kl_to_1c.txt"
    statement.write_bytes(as_1c_bytes(seed_1c(add="СекцияДокумент=" + second)))
    problems = _watch(page)
    sign_in(page, admin_user.username, PASSWORD)

    page.goto("/billing/bank/")
    page.set_input_files("#id_file", str(statement))
    page.click("#import-statement")
    expect(page.locator("#statement-counts")).to_contain_text("2 lines: 1 posted, 1 in suspense")
    _shot(page, "23_statement")
    assert Invoice.objects.get(number="72815").status == "paid"

    page.goto("/billing/bank/suspense/")
    item = page.locator(".suspense-item")
    expect(item).to_have_count(1)
    expect(item.locator(".suspense-reason")).to_have_text(
        "Invoice 72816 owes 860.00 RUB; the payment is 900.00 RUB."
    )
    _shot(page, "24_suspense")
    item.locator(".assign-suggested").first.click()
    expect(page.locator("#suspense-empty")).to_be_visible()
    bills[1].refresh_from_db()
    assert bills[1].status == "paid"
    assert list(BankPayment.objects.order_by("line_no").values_list("state", flat=True)) == [
        "posted", "assigned"
    ]  # fmt: skip
    assert problems == []


def test_an_administrator_sets_up_a_dunning_scenario(page, admin_user, sign_in):
    problems = _watch(page)
    sign_in(page, admin_user.username, PASSWORD)
    page.goto("/billing/dunning/")
    page.fill("#scenario-form #id_name", "Standard")
    page.fill("#scenario-form #id_minimum_percent", "50")
    page.check("#scenario-form #id_is_default")
    page.click("#scenario-form button")
    scenario = page.locator(".scenario")
    expect(scenario).to_have_count(1)
    form = scenario.locator(".step-form")
    form.locator("input[name$='day']").fill("7")
    form.locator("select[name$='action']").select_option("fee")
    form.locator("input[name$='fee_amount']").fill("500")
    form.locator("button").click()
    expect(page.locator(".dunning-step")).to_have_count(1)
    expect(page.locator(".dunning-step")).to_contain_text("7 days after")
    # a fee with no amount is refused where it is typed
    form = page.locator(".scenario .step-form")
    form.locator("input[name$='day']").fill("14")
    form.locator("select[name$='action']").select_option("fee")
    form.locator("button").click()
    expect(page.locator(".scenario .invalid-feedback")).to_have_text(
        "Give a fixed fee, a percentage or both."
    )
    _shot(page, "25_dunning")
    assert list(DunningStep.objects.values_list("day", "action")) == [(7, "fee")]
    # the refused step answered 422, which the browser reports; nothing else went wrong
    assert [p for p in problems if "422" not in p] == []
