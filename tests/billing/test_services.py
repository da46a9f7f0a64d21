"""Every billing service, its good path and its refusals (which change nothing)."""

import datetime as dt
from decimal import Decimal

import pytest

from clientbase.billing import services
from clientbase.billing.ledger import credit_held, invoice_ledger_balance, ledger_verify
from clientbase.billing.models import (
    CreditNote,
    FrozenInvoiceError,
    Invoice,
    InvoiceLine,
    LedgerEntry,
    Order,
    Receipt,
    Refund,
    Service,
)
from clientbase.catalog.models import Cycle
from clientbase.clients.models import Address
from clientbase.clients.services import client_delete, client_set_status
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.money import Money

from .conftest import billing_counts, eur, invoice_state, line, rub


def _held(client, currency="RUB") -> Money:
    return credit_held([client.pk], currency)


def _message(error: ServiceError) -> dict:
    return {field: [str(m) for m in msgs] for field, msgs in error.message_dict.items()}


@pytest.fixture
def bill(issue, rub_client, seed_day):
    """An issued invoice of 1000.00 for the RUB client."""
    return issue(rub_client, ("Консультация", "1000.00"))


def _order(clerk, client, *items, promo=""):
    specs = [
        services.ItemSpec(product, cycle, options=opts or {}) for product, cycle, opts in items
    ]
    return services.order_create(by=clerk, client=client, items=specs, promo_code=promo)


# ----------------------------------------------------------------------------- payments


def test_payment_spreads_over_invoices_and_the_rest_goes_to_credit(bill, issue, pay, rub_client):
    second = issue(rub_client, ("Лицензия", "250.50"))
    payment = pay(rub_client, rub("1500.00"), (bill, rub("400.00")), second)
    assert invoice_state(bill) == ("partially_paid", 100000, 40000, 0, 0, 60000)
    assert invoice_state(second) == ("paid", 25050, 25050, 0, 0, 0)
    assert payment.to_credit_minor == 150000 - 40000 - 25050
    assert _held(rub_client) == rub("849.50")
    assert [(a.invoice_id, a.amount_minor) for a in payment.allocations.all()] == [
        (bill.pk, 40000), (second.pk, 25050)
    ]  # fmt: skip
    assert invoice_ledger_balance(bill) == 60000
    assert ledger_verify().ok


@pytest.mark.parametrize("amount", ["0.00", "-5.00"])
def test_zero_or_negative_payment_is_refused(bill, pay, rub_client, amount):
    before = billing_counts()
    with pytest.raises(ServiceError) as refused:
        pay(rub_client, rub(amount), bill)
    assert _message(refused.value) == {"amount": ["The amount must be above zero."]}
    assert billing_counts() == before
    assert invoice_state(bill) == ("unpaid", 100000, 0, 0, 0, 100000)


def test_unknown_currency_is_refused_when_parsed():
    with pytest.raises(ServiceError) as refused:
        services.parse_money("10.00", "XYZ")
    assert _message(refused.value) == {"currency": ["Unknown currency XYZ."]}
    with pytest.raises(ServiceError) as refused:
        services.parse_money("ten", "RUB")
    assert _message(refused.value) == {"amount": ["Write the amount as a number such as 120.50."]}
    assert services.parse_money(" 12.345 ", "rub") == Money(1235, "RUB")


def test_payment_in_another_currency_than_the_invoice_is_refused(bill, pay, rub_client):
    before = billing_counts()
    with pytest.raises(ServiceError) as refused:
        pay(rub_client, eur("10.00"), bill)
    assert _message(refused.value) == {
        "currency": ["The client is billed in RUB; the payment is in EUR."]
    }
    with pytest.raises(ServiceError) as refused:
        pay(rub_client, rub("10.00"), (bill, eur("5.00")))
    assert _message(refused.value) == {"invoices": ["The amount is in EUR; it must be in RUB."]}
    assert billing_counts() == before


def test_allocations_above_the_payment_are_refused(bill, issue, pay, rub_client):
    second = issue(rub_client, ("Лицензия", "300.00"))
    before = billing_counts()
    with pytest.raises(ServiceError) as refused:
        pay(rub_client, rub("500.00"), (bill, rub("400.00")), (second, rub("200.00")))
    assert _message(refused.value) == {
        "invoices": ["The allocations add up to more than the payment."]
    }
    assert billing_counts() == before


def test_an_invoice_named_twice_in_one_payment_is_refused(bill, pay, rub_client):
    before = billing_counts()
    with pytest.raises(ServiceError, match="An invoice appears twice in the payment"):
        pay(rub_client, rub("2000.00"), bill, bill)
    assert billing_counts() == before
    assert invoice_state(bill) == ("unpaid", 100000, 0, 0, 0, 100000)


def test_allocation_above_what_is_owed_takes_only_what_is_owed(bill, pay, rub_client):
    payment = pay(rub_client, rub("1200.00"), (bill, rub("1100.00")))
    assert invoice_state(bill) == ("paid", 100000, 100000, 0, 0, 0)
    assert payment.to_credit_minor == 20000


def test_payment_refusals_method_future_other_client_and_closed_invoice(
    bill, pay, rub_client, make_client, clerk, issue
):
    other = make_client("Other LLC")
    draft = services.invoice_create(by=clerk, client=rub_client, lines=[line("x", "1.00")])
    before = billing_counts()
    with pytest.raises(ServiceError, match="Choose how the money was paid"):
        pay(rub_client, rub("10.00"), bill, method="barter")
    with pytest.raises(ServiceError, match="cannot be received in the future"):
        pay(rub_client, rub("10.00"), bill, received_on=dt.date(2019, 2, 2))
    with pytest.raises(ServiceError, match="belongs to another client"):
        pay(other, rub("10.00"), bill)
    with pytest.raises(ConflictError, match="is Draft: there is nothing to pay"):
        pay(rub_client, rub("10.00"), draft)
    assert billing_counts() == before


def test_a_payment_without_invoices_is_all_credit(pay, rub_client, seed_day):
    payment = pay(rub_client, rub("99.99"), received_on=dt.date(2019, 1, 30))
    assert (payment.to_credit_minor, payment.received_on, payment.number) == (
        9999, dt.date(2019, 1, 30), "PAY-000001"
    )  # fmt: skip
    assert _held(rub_client) == rub("99.99")


# ----------------------------------------------------------------------------- credit


def test_credit_apply_pays_from_credit(bill, pay, rub_client, clerk):
    pay(rub_client, rub("300.00"))
    applied = services.credit_apply(by=clerk, invoice=bill)
    assert applied == rub("300.00")
    assert invoice_state(bill) == ("partially_paid", 100000, 30000, 0, 0, 70000)
    assert _held(rub_client) == rub("0.00")
    pay(rub_client, rub("800.00"))
    assert services.credit_apply(by=clerk, invoice=bill, amount=rub("700.00")) == rub("700.00")
    assert invoice_state(bill) == ("paid", 100000, 100000, 0, 0, 0)
    assert _held(rub_client) == rub("100.00")
    assert Receipt.objects.get().amount_minor == 100000
    assert ledger_verify().ok


def test_credit_apply_refusals(bill, issue, pay, rub_client, clerk):
    small = issue(rub_client, ("Мелочь", "50.00"))
    before = billing_counts()
    with pytest.raises(ServiceError, match="no credit to apply"):
        services.credit_apply(by=clerk, invoice=bill)
    pay(rub_client, rub("100.00"))
    before = billing_counts()
    with pytest.raises(ServiceError, match=r"only 100\.00 RUB of credit"):
        services.credit_apply(by=clerk, invoice=bill, amount=rub("100.01"))
    with pytest.raises(ServiceError, match=r"owes only 50\.00 RUB"):
        services.credit_apply(by=clerk, invoice=small, amount=rub("60.00"))
    with pytest.raises(ServiceError, match="must be above zero"):
        services.credit_apply(by=clerk, invoice=small, amount=rub("0.00"))
    assert billing_counts() == before
    assert _held(rub_client) == rub("100.00")


def test_credit_adjust_adds_and_takes_within_what_is_held(rub_client, clerk, seed_day):
    assert services.credit_adjust(
        by=clerk, client=rub_client, amount=rub("150.00"), reason="Goodwill"
    ) == rub("150.00")
    assert services.credit_adjust(
        by=clerk, client=rub_client, amount=rub("-50.00"), reason="Correction"
    ) == rub("100.00")
    before = billing_counts()
    with pytest.raises(ServiceError, match=r"only 100\.00 RUB of credit"):
        services.credit_adjust(by=clerk, client=rub_client, amount=rub("-100.01"), reason="x")
    with pytest.raises(ServiceError, match="cannot be zero"):
        services.credit_adjust(by=clerk, client=rub_client, amount=rub("0"), reason="x")
    with pytest.raises(ServiceError, match="Give a reason"):
        services.credit_adjust(by=clerk, client=rub_client, amount=rub("1"), reason=" ")
    assert billing_counts() == before
    assert _held(rub_client) == rub("100.00")
    assert list(LedgerEntry.objects.values_list("kind", "amount_minor")) == [
        ("adjustment", -15000), ("adjustment", 5000)
    ]  # fmt: skip


# ----------------------------------------------------------------------------- refunds


def test_refund_of_a_payment_out_and_to_credit(bill, pay, rub_client, clerk):
    pay(rub_client, rub("1000.00"), bill)
    out = services.refund_record(
        by=clerk, invoice=bill, amount=rub("300.00"), destination="out", method="bank_transfer",
        reason="Unused",
    )  # fmt: skip
    assert (out.number, out.method, out.client) == ("REF-00001", "bank_transfer", rub_client)
    assert invoice_state(bill) == ("paid", 100000, 100000, 0, 30000, 0)
    assert _held(rub_client) == rub("0.00")
    services.refund_record(
        by=clerk, invoice=bill, amount=rub("700.00"), destination="credit", reason="Rest"
    )
    assert invoice_state(bill) == ("refunded", 100000, 100000, 0, 100000, 0)
    assert _held(rub_client) == rub("700.00")
    assert invoice_ledger_balance(bill) == 0
    assert ledger_verify().ok


def test_refund_larger_than_paid_is_refused(bill, pay, rub_client, clerk):
    pay(rub_client, rub("400.00"), bill)
    before, state = billing_counts(), invoice_state(bill)
    with pytest.raises(ServiceError) as refused:
        services.refund_record(
            by=clerk, invoice=bill, amount=rub("400.01"), destination="credit", reason="x"
        )
    assert _message(refused.value) == {
        "amount": ["Only 400.00 RUB was paid on this invoice and not yet refunded."]
    }
    assert (billing_counts(), invoice_state(bill)) == (before, state)


def test_refund_after_a_credit_note_cannot_give_the_money_back_twice(bill, pay, rub_client, clerk):
    # given a paid invoice credited by 300.00 (which went to credit)
    pay(rub_client, rub("1000.00"), bill)
    services.credit_note_create(by=clerk, invoice=bill, amount=rub("300.00"), reason="Discount")
    assert _held(rub_client) == rub("300.00")
    before = billing_counts()
    # then only the 700.00 the invoice still keeps can be refunded
    with pytest.raises(ServiceError, match=r"Only 700\.00 RUB was paid"):
        services.refund_record(
            by=clerk, invoice=bill, amount=rub("1000.00"), destination="out", method="cash",
            reason="Everything",
        )  # fmt: skip
    assert billing_counts() == before
    services.refund_record(
        by=clerk, invoice=bill, amount=rub("700.00"), destination="out", method="cash",
        reason="Everything",
    )  # fmt: skip
    assert invoice_state(bill) == ("refunded", 100000, 100000, 30000, 70000, 0)
    assert _held(rub_client) == rub("300.00")


def test_refund_of_credit_held_is_paid_out_only_up_to_what_is_held(pay, rub_client, clerk):
    pay(rub_client, rub("200.00"))
    before = billing_counts()
    with pytest.raises(ServiceError, match=r"only 200\.00 RUB of credit"):
        services.refund_record(
            by=clerk, client=rub_client, amount=rub("200.01"), destination="out",
            method="cash", reason="Leaving",
        )  # fmt: skip
    with pytest.raises(ServiceError, match="Credit held can only be paid out"):
        services.refund_record(
            by=clerk, client=rub_client, amount=rub("1.00"), destination="credit", reason="x"
        )
    with pytest.raises(ServiceError, match="Choose how the money is paid out"):
        services.refund_record(
            by=clerk, client=rub_client, amount=rub("1.00"), destination="out", reason="x"
        )
    with pytest.raises(ServiceError, match="Give a reason"):
        services.refund_record(
            by=clerk, client=rub_client, amount=rub("1.00"), destination="out", method="cash",
            reason="",
        )  # fmt: skip
    assert billing_counts() == before
    refund = services.refund_record(
        by=clerk, client=rub_client, amount=rub("200.00"), destination="out", method="cash",
        reason="Leaving",
    )  # fmt: skip
    assert (refund.invoice, refund.amount_minor) == (None, 20000)
    assert _held(rub_client) == rub("0.00")


# ----------------------------------------------------------------------------- credit notes


def test_credit_note_reduces_what_is_owed_and_beyond_becomes_credit(bill, pay, rub_client, clerk):
    pay(rub_client, rub("600.00"), bill)
    note = services.credit_note_create(
        by=clerk, invoice=bill, amount=rub("500.00"), reason="Service outage"
    )
    assert (note.number, note.kind) == ("CN-00001", "credit_note")
    # 400.00 was still owed: that part comes off the invoice, 100.00 becomes credit
    assert invoice_state(bill) == ("paid", 100000, 60000, 50000, 0, 0)
    assert _held(rub_client) == rub("100.00")
    assert Receipt.objects.get().amount_minor == 60000
    with pytest.raises(ServiceError, match=r"At most 500\.00 RUB can be credited"):
        services.credit_note_create(by=clerk, invoice=bill, amount=rub("500.01"), reason="x")
    assert ledger_verify().ok


def test_a_credit_note_of_an_unpaid_invoice_in_full_voids_it(bill, clerk, rub_client):
    services.credit_note_create(by=clerk, invoice=bill, amount=rub("1000.00"), reason="Wrong")
    assert invoice_state(bill) == ("cancelled", 100000, 0, 100000, 0, 0)
    assert Receipt.objects.count() == 0
    assert _held(rub_client) == rub("0.00")


def test_write_off_only_up_to_the_balance(bill, pay, rub_client, clerk):
    pay(rub_client, rub("900.00"), bill)
    before, state = billing_counts(), invoice_state(bill)
    with pytest.raises(ServiceError, match=r"At most 100\.00 RUB can be credited"):
        services.credit_note_create(
            by=clerk, invoice=bill, amount=rub("100.01"), reason="Small", kind="write_off"
        )
    assert (billing_counts(), invoice_state(bill)) == (before, state)
    note = services.credit_note_create(
        by=clerk, invoice=bill, amount=rub("100.00"), reason="Small", kind="write_off"
    )
    assert note.kind == "write_off"
    assert invoice_state(bill) == ("paid", 100000, 90000, 10000, 0, 0)
    assert _held(rub_client) == rub("0.00")
    assert LedgerEntry.objects.filter(kind="write_off").get().amount_minor == -10000


def test_credit_notes_refuse_drafts_and_bad_kinds(clerk, rub_client, bill):
    draft = services.invoice_create(by=clerk, client=rub_client, lines=[line("x", "1.00")])
    with pytest.raises(ConflictError, match="Only issued invoices"):
        services.credit_note_create(by=clerk, invoice=draft, amount=rub("1.00"), reason="x")
    with pytest.raises(ServiceError, match="Choose a credit note or a write-off"):
        services.credit_note_create(by=clerk, invoice=bill, amount=rub("1"), reason="x", kind="x")
    assert CreditNote.objects.count() == 0


# ----------------------------------------------------------------------------- invoices


def test_issued_invoice_is_frozen(bill, clerk):
    first_line = bill.lines.get()
    before = billing_counts()
    with pytest.raises(ConflictError, match=f"Invoice {bill.number} is issued"):
        services.invoice_line_add(by=clerk, invoice=bill, line=line("More", "1.00"))
    with pytest.raises(ConflictError):
        services.invoice_update(
            by=clerk, invoice=bill, issued_on=bill.issued_on, due_on=bill.due_on, notes="x"
        )
    with pytest.raises(ConflictError):
        services.invoice_line_update(by=clerk, line=first_line, spec=line("Less", "1.00"))
    with pytest.raises(ConflictError):
        services.invoice_line_delete(by=clerk, line=first_line)
    bill.total_minor = 1
    with pytest.raises(FrozenInvoiceError):
        bill.save()
    with pytest.raises(FrozenInvoiceError):
        bill.save(update_fields=["total_minor", "status"])
    with pytest.raises(FrozenInvoiceError):
        Invoice.objects.filter(pk=bill.pk).update(total_minor=1)
    with pytest.raises(FrozenInvoiceError):
        Invoice.objects.filter(pk=bill.pk).delete()
    with pytest.raises(FrozenInvoiceError):
        bill.delete()
    first_line.net_minor = 1
    with pytest.raises(FrozenInvoiceError):
        first_line.save()
    with pytest.raises(FrozenInvoiceError):
        first_line.delete()
    with pytest.raises(FrozenInvoiceError):
        InvoiceLine.objects.filter(invoice=bill).update(net_minor=1)
    with pytest.raises(FrozenInvoiceError):
        InvoiceLine.objects.filter(invoice=bill).delete()
    with pytest.raises(FrozenInvoiceError):
        InvoiceLine.objects.create(invoice=bill, description="x", unit_price=Decimal(1))
    assert billing_counts() == before
    assert invoice_state(bill) == ("unpaid", 100000, 0, 0, 0, 100000)
    assert list(bill.lines.values_list("net_minor", flat=True)) == [100000]
    # a status change through the allowed fields still works
    assert Invoice.objects.filter(pk=bill.pk).update(status="overdue") == 1


def test_draft_editing_recomputes_and_issuing_numbers(clerk, rub_client, seed_day):
    draft = services.invoice_create(
        by=clerk, client=rub_client, lines=[line("A", "10.005", "3"), line("B", "5.00")]
    )
    # 3 × 10.005 = 30.015 → 30.02, + 5.00
    assert (draft.subtotal_minor, draft.total_minor) == (3502, 3502)
    added = services.invoice_line_add(by=clerk, invoice=draft, line=line("C", "1.00", "2"))
    assert (added.position, added.net_minor) == (2, 200)
    services.invoice_line_update(by=clerk, line=added, spec=line("C", "2.00", "2"))
    services.invoice_line_delete(by=clerk, line=draft.lines.get(description="B"))
    draft.refresh_from_db()
    assert draft.total_minor == 3002 + 400
    services.invoice_update(
        by=clerk, invoice=draft, issued_on=dt.date(2019, 2, 1), due_on=dt.date(2019, 2, 15),
        notes=" Thanks ",
    )  # fmt: skip
    issued = services.invoice_issue(by=clerk, invoice=draft)
    assert (issued.number, issued.number_value, issued.status, issued.due_on, issued.notes) == (
        "1", 1, "unpaid", dt.date(2019, 2, 15), "Thanks"
    )  # fmt: skip
    assert issued.snapshot["name"] == rub_client.name
    with pytest.raises(ServiceError, match="due date cannot be before"):
        services.invoice_create(
            by=clerk, client=rub_client, issued_on=dt.date(2019, 2, 1), due_on=dt.date(2019, 1, 1)
        )


def test_issuing_an_empty_or_negative_draft_is_refused(clerk, rub_client):
    empty = services.invoice_create(by=clerk, client=rub_client)
    negative = services.invoice_create(by=clerk, client=rub_client, lines=[line("x", "-1.00")])
    before = billing_counts()
    with pytest.raises(ServiceError, match="Add at least one line"):
        services.invoice_issue(by=clerk, invoice=empty)
    with pytest.raises(ServiceError, match="issue a credit note instead"):
        services.invoice_issue(by=clerk, invoice=negative)
    assert billing_counts() == before
    assert Invoice.objects.exclude(number="").count() == 0


def test_bad_lines_are_refused_by_field(clerk, rub_client):
    with pytest.raises(ServiceError) as refused:
        services.invoice_create(
            by=clerk, client=rub_client,
            lines=[services.LineSpec("", Decimal(1), Decimal(0), Decimal(101))],
        )  # fmt: skip
    assert set(refused.value.message_dict) == {"description", "quantity", "discount_percent"}
    assert Invoice.objects.count() == 0


def test_invoice_cancel_unpaid_and_refused_once_money_moved(bill, issue, pay, rub_client, clerk):
    cancelled = services.invoice_cancel(by=clerk, invoice=bill, reason="Duplicate")
    assert invoice_state(cancelled) == ("cancelled", 100000, 0, 0, 0, 0)
    assert invoice_ledger_balance(bill) == 0
    assert LedgerEntry.objects.filter(kind="cancellation").get().amount_minor == -100000
    with pytest.raises(ConflictError, match="already closed"):
        services.invoice_cancel(by=clerk, invoice=bill, reason="Again")
    paid = issue(rub_client, ("Y", "10.00"))
    pay(rub_client, rub("1.00"), paid)
    before, state = billing_counts(), invoice_state(paid)
    with pytest.raises(ConflictError, match="Money was already paid"):
        services.invoice_cancel(by=clerk, invoice=paid, reason="Wrong")
    with pytest.raises(ServiceError, match="Give a reason"):
        services.invoice_cancel(by=clerk, invoice=paid, reason="")
    assert (billing_counts(), invoice_state(paid)) == (before, state)


def test_a_draft_can_be_cancelled(clerk, rub_client):
    draft = services.invoice_create(by=clerk, client=rub_client, lines=[line("x", "1.00")])
    services.invoice_cancel(by=clerk, invoice=draft, reason="Not needed")
    draft.refresh_from_db()
    # a void document keeps its own number from the gapless series
    assert (draft.status, draft.number, draft.balance_minor) == ("cancelled", "1", 0)
    assert LedgerEntry.objects.count() == 0
    assert ledger_verify().ok


def test_receipts_are_made_once_when_paid(bill, pay, rub_client, clerk, issue):
    pay(rub_client, rub("500.00"), bill)
    assert Receipt.objects.count() == 0
    pay(rub_client, rub("600.00"), bill)
    receipt = Receipt.objects.get()
    assert (receipt.number, receipt.amount_minor, receipt.invoice) == ("RCP-000001", 100000, bill)
    services.credit_note_create(by=clerk, invoice=bill, amount=rub("10.00"), reason="Late")
    # a payment naming the invoice once it is paid (another clerk was quicker) is credit
    late = pay(rub_client, rub("1.00"), bill)
    assert (late.to_credit_minor, late.allocations.count()) == (100, 0)
    assert invoice_state(bill) == ("paid", 100000, 100000, 1000, 0, 0)
    assert Receipt.objects.count() == 1
    services.invoice_cancel(by=clerk, invoice=issue(rub_client, ("Z", "5.00")), reason="x")
    with pytest.raises(ConflictError, match="is Cancelled: there is nothing to pay"):
        pay(rub_client, rub("1.00"), Invoice.objects.get(status="cancelled"))


def test_zero_total_invoice_is_paid_when_issued(issue, rub_client):
    free = issue(rub_client, ("Бесплатно", "0.00"))
    assert invoice_state(free) == ("paid", 0, 0, 0, 0, 0)
    assert LedgerEntry.objects.count() == 0


# ----------------------------------------------------------------------------- tax


def test_tax_exclusive_and_inclusive_lines(issue, rub_client, vat_ru):
    invoice = issue(
        rub_client,
        line("Exclusive", "100.00"),
        line("Inclusive", "120.00", tax_inclusive=True),
        line("Untaxed", "50.00", taxable=False),
        line("Discounted", "10.01", "3", discount_percent=Decimal("12.5")),
    )
    rows = list(invoice.lines.values_list("net_minor", "tax_minor", "tax_rate"))
    assert rows == [
        (10000, 2000, Decimal("20.000")),
        (10000, 2000, Decimal("20.000")),
        (5000, 0, Decimal("0.000")),
        (2628, 526, Decimal("20.000")),  # 30.03 × 0.875 = 26.27625 → 26.28; tax 5.256 → 5.26
    ]
    assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (
        27628, 4526, 32154
    )  # fmt: skip


def test_tax_exempt_client_pays_none_and_regions_have_their_own_rate(
    issue, make_client, vat_ru, clerk
):
    exempt = make_client("Exempt LLC", tax_exempt=True)
    assert issue(exempt, ("X", "100.00")).tax_minor == 0
    crimea = make_client("Crimea LLC")
    Address.objects.create(client=crimea, type="billing", line1="ул. Ленина 1", city="Ялта",
                           region="Крым", country="RU")  # fmt: skip
    assert issue(crimea, ("X", "100.00")).tax_minor == 1000
    elsewhere = make_client("France SARL", country="FR")
    assert issue(elsewhere, ("X", "100.00")).tax_minor == 0


# ----------------------------------------------------------------------------- orders


def test_order_accept_creates_services_and_a_draft_and_uses_the_promo_once(
    clerk, rub_client, catalog, promos, seed_day
):
    order = _order(
        clerk, rub_client, (catalog.hotel, Cycle.SEMI_ANNUAL, None),
        (catalog.licences, Cycle.SEMI_ANNUAL, {"users": 5}), promo="LAST",
    )  # fmt: skip
    promos["last_use"].refresh_from_db()
    assert promos["last_use"].uses == 0
    services.order_accept(by=clerk, order=order)
    promos["last_use"].refresh_from_db()
    assert promos["last_use"].uses == 1
    order.refresh_from_db()
    assert order.status == "accepted"
    draft = order.invoice
    # hotel 13380.00 + setup 2000.00; licences 1000.00 + 3 × 450.00; 10 % off each product
    assert list(draft.lines.values_list("description", "net_minor")) == [
        ("БИТ:Отель 8. ПРОФ (01/02/2019 – 31/07/2019)", 1338000),
        ("БИТ:Отель 8. ПРОФ: setup fee", 200000),
        ("Promo code LAST: 10 %", -153800),
        ("Пакет лицензий 1С в аренду (01/02/2019 – 31/07/2019)", 100000),
        ("Лицензии в аренду: 5 × 450.00 RUB", 135000),
        ("Promo code LAST: 10 %", -23500),
    ]
    assert draft.total_minor == 1338000 + 200000 - 153800 + 100000 + 135000 - 23500
    assert sorted(Service.objects.values_list("product__code", "recurring_minor")) == [
        ("hotel", 1338000), ("licences", 235000)
    ]  # fmt: skip
    before = billing_counts()
    with pytest.raises(ConflictError, match="The order is Accepted"):
        services.order_accept(by=clerk, order=order)
    assert billing_counts() == before
    promos["last_use"].refresh_from_db()
    assert promos["last_use"].uses == 1


def test_a_client_who_wants_separate_invoices_gets_a_draft_per_service(
    clerk, make_client, catalog, promos, seed_day
):
    client = make_client(separate_invoices=True)
    order = _order(
        clerk, client, (catalog.hotel, Cycle.SEMI_ANNUAL, None),
        (catalog.licences, Cycle.SEMI_ANNUAL, {"users": 5}), promo="LAST",
    )  # fmt: skip
    services.order_accept(by=clerk, order=order)
    order.refresh_from_db()
    hotel, licences = order.invoices.order_by("id")
    assert order.invoice == hotel
    # each service's lines, its promo line with it, on a draft of its own
    assert list(hotel.lines.values_list("description", "net_minor")) == [
        ("БИТ:Отель 8. ПРОФ (01/02/2019 – 31/07/2019)", 1338000),
        ("БИТ:Отель 8. ПРОФ: setup fee", 200000),
        ("Promo code LAST: 10 %", -153800),
    ]
    assert list(licences.lines.values_list("description", "net_minor")) == [
        ("Пакет лицензий 1С в аренду (01/02/2019 – 31/07/2019)", 100000),
        ("Лицензии в аренду: 5 × 450.00 RUB", 135000),
        ("Promo code LAST: 10 %", -23500),
    ]
    assert (hotel.total_minor, licences.total_minor) == (1384200, 211500)
    assert {i.status for i in (hotel, licences)} == {"draft"}
    promos["last_use"].refresh_from_db()
    assert promos["last_use"].uses == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("expired", "Promo code OLD10 expired on 2019-01-31."),
        ("future", "Promo code SOON10 is valid from 2019-02-02."),
        ("used_up", "Promo code ONCE has been used up (1 of 1)."),
        ("hotel_only", "Promo code HOTEL does not apply to these products."),
    ],
)
def test_unusable_promo_codes_are_refused(
    clerk, rub_client, catalog, promos, seed_day, key, message
):
    before = billing_counts()
    with pytest.raises(ServiceError) as refused:
        _order(clerk, rub_client, (catalog.disk, Cycle.MONTHLY, None), promo=promos[key].code)
    assert _message(refused.value) == {"promo_code": [message]}
    assert billing_counts() == before


def test_promo_used_up_between_order_and_accept(clerk, rub_client, make_client, catalog, promos,
                                                 seed_day):  # fmt: skip
    first = _order(clerk, rub_client, (catalog.disk, Cycle.MONTHLY, None), promo="LAST")
    second = _order(clerk, make_client("B"), (catalog.disk, Cycle.MONTHLY, None), promo="LAST")
    services.order_accept(by=clerk, order=first)
    before = billing_counts()
    with pytest.raises(ConflictError, match="Promo code LAST has been used up"):
        services.order_accept(by=clerk, order=second)
    assert billing_counts() == before
    second.refresh_from_db()
    assert second.status == "pending"


def test_orders_of_a_closed_account_are_refused(clerk, rub_client, catalog, seed_day):
    pending = _order(clerk, rub_client, (catalog.disk, Cycle.MONTHLY, None))
    client_set_status(client=rub_client, status="closed", reason="Gone", by=clerk)
    rub_client.refresh_from_db()
    before = billing_counts()
    with pytest.raises(ServiceError, match="The account is closed"):
        services.order_accept(by=clerk, order=pending)
    with pytest.raises(ServiceError, match="The account is closed"):
        _order(clerk, rub_client, (catalog.hotel, Cycle.SEMI_ANNUAL, None))
    assert billing_counts() == before
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_an_inactive_account_s_order_waits_until_it_is_reactivated(
    clerk, rub_client, catalog, seed_day
):
    pending = _order(clerk, rub_client, (catalog.disk, Cycle.MONTHLY, None))
    client_set_status(client=rub_client, status="inactive", reason="Unpaid", by=clerk)
    before = billing_counts()
    with pytest.raises(ServiceError, match="inactive: reactivate it before accepting"):
        services.order_accept(by=clerk, order=pending)
    assert billing_counts() == before
    client_set_status(client=rub_client, status="active", reason="Paid", by=clerk)
    accepted = services.order_accept(by=clerk, order=pending)
    assert (accepted.status, Service.objects.get().status) == ("accepted", "active")


def test_ordering_a_product_the_client_has_is_refused_naming_the_service(
    clerk, rub_client, catalog, seed_day
):
    services.order_accept(
        by=clerk, order=_order(clerk, rub_client, (catalog.disk, Cycle.MONTHLY, None))
    )
    service = Service.objects.get()
    before = billing_counts()
    with pytest.raises(ConflictError) as refused:
        _order(clerk, rub_client, (catalog.disk, Cycle.MONTHLY, None))
    assert f"(service #{service.pk})" in _message(refused.value)["items"][0]
    with pytest.raises(ServiceError, match="appears twice"):
        _order(clerk, rub_client, (catalog.hotel, Cycle.SEMI_ANNUAL, None),
               (catalog.hotel, Cycle.SEMI_ANNUAL, None))  # fmt: skip
    assert billing_counts() == before


def test_order_refusals_and_cancel(clerk, rub_client, catalog, seed_day):
    before = billing_counts()
    with pytest.raises(ServiceError, match="Add at least one product"):
        services.order_create(by=clerk, client=rub_client, items=[])
    with pytest.raises(ServiceError, match="has no Monthly price in RUB"):
        _order(clerk, rub_client, (catalog.hotel, Cycle.MONTHLY, None))
    with pytest.raises(ServiceError, match="must be between 1 and 50"):
        _order(clerk, rub_client, (catalog.standard, Cycle.SEMI_ANNUAL, {"users": 51}))
    with pytest.raises(ServiceError, match="has no option"):
        _order(clerk, rub_client, (catalog.disk, Cycle.MONTHLY, {"cpu": 2}))
    assert billing_counts() == before
    order = _order(clerk, rub_client, (catalog.disk, Cycle.MONTHLY, None))
    services.order_cancel(by=clerk, order=order, reason="Changed mind", fraud=True)
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("fraud", "Changed mind")
    with pytest.raises(ConflictError, match="The order is Fraud"):
        services.order_accept(by=clerk, order=order)
    assert Service.objects.count() == 0


# ----------------------------------------------------------------------------- services


@pytest.fixture
def disk(clerk, rub_client, catalog, seed_day) -> Service:
    order = _order(clerk, rub_client, (catalog.disk, Cycle.MONTHLY, None))
    services.order_accept(by=clerk, order=order)
    return Service.objects.get(product=catalog.disk)


@pytest.fixture
def access(clerk, rub_client, catalog, seed_day) -> Service:
    order = _order(clerk, rub_client, (catalog.standard, Cycle.SEMI_ANNUAL, {"users": 5}))
    services.order_accept(by=clerk, order=order)
    return Service.objects.get(product=catalog.standard)


def test_service_transitions(disk, clerk):
    services.service_action(by=clerk, service=disk, action="suspend", reason="Unpaid")
    disk.refresh_from_db()
    assert (disk.status, disk.status_reason, disk.suspended_with_account) == (
        "suspended", "Unpaid", False
    )  # fmt: skip
    with pytest.raises(ConflictError, match="The service is Suspended: suspending is not possible"):
        services.service_action(by=clerk, service=disk, action="suspend", reason="Again")
    with pytest.raises(ServiceError, match="Unknown action"):
        services.service_action(by=clerk, service=disk, action="explode", reason="x")
    with pytest.raises(ServiceError, match="Give a reason"):
        services.service_action(by=clerk, service=disk, action="unsuspend", reason="")
    disk.refresh_from_db()
    assert disk.status == "suspended"
    services.service_action(by=clerk, service=disk, action="unsuspend", reason="Paid")
    services.service_action(by=clerk, service=disk, action="terminate", reason="End")
    disk.refresh_from_db()
    assert disk.status == "terminated"
    with pytest.raises(ConflictError, match="The service is Terminated"):
        services.service_action(by=clerk, service=disk, action="activate", reason="x")


def test_cancel_at_period_end_and_withdraw(disk, clerk):
    services.service_cancel_at_period_end(by=clerk, service=disk, reason="Too expensive")
    disk.refresh_from_db()
    assert (disk.cancel_at_period_end, disk.status_reason, disk.status) == (
        True, "Too expensive", "active"
    )  # fmt: skip
    services.service_cancel_at_period_end(by=clerk, service=disk, reason="", cancel=False)
    disk.refresh_from_db()
    assert (disk.cancel_at_period_end, disk.status_reason) == (False, "")
    with pytest.raises(ServiceError, match="Give a reason"):
        services.service_cancel_at_period_end(by=clerk, service=disk, reason="")


def test_transfer_moves_the_service_but_not_its_invoices(disk, clerk, make_client, rub_client,
                                                          catalog):  # fmt: skip
    euro = make_client("Euro GmbH", currency="EUR")
    taker = make_client("Taker LLC")
    before = billing_counts()
    with pytest.raises(ServiceError, match="is billed in EUR, the service in RUB"):
        services.service_transfer(by=clerk, service=disk, to_client=euro, reason="Sold")
    with pytest.raises(ServiceError, match="already belongs"):
        services.service_transfer(by=clerk, service=disk, to_client=rub_client, reason="x")
    services.order_accept(by=clerk, order=_order(clerk, taker, (catalog.disk, Cycle.MONTHLY, None)))
    with pytest.raises(ConflictError, match="already has"):
        services.service_transfer(by=clerk, service=disk, to_client=taker, reason="Sold")
    disk.refresh_from_db()
    assert disk.client == rub_client
    assert billing_counts()["services"] == before["services"] + 1
    third = make_client("Third LLC")
    services.service_transfer(by=clerk, service=disk, to_client=third, reason="Sold")
    disk.refresh_from_db()
    assert disk.client == third
    assert Invoice.objects.filter(client=rub_client).count() == 1


def test_downgrade_gives_credit_for_the_days_left(access, clerk, rub_client, time_machine):
    time_machine.move_to(dt.datetime(2019, 3, 4, 9, tzinfo=dt.UTC), tick=False)
    service, invoice, preview = services.service_change(
        by=clerk, service=access, options={"users": 3}
    )
    # 1600.00 less per cycle, for 150 of 181 days: 1325.966… → 1325.97
    assert invoice is None
    assert preview.charge == rub("-1325.97")
    assert service.recurring_minor == 240000
    assert list(LedgerEntry.objects.values_list("kind", "account", "amount_minor")) == [
        ("proration_credit", "credit", -132597)
    ]
    assert _held(rub_client) == rub("1325.97")
    assert ledger_verify().ok


def test_downgrade_credit_is_what_was_paid_with_promo_and_tax(
    clerk, rub_client, catalog, promos, vat_ru, seed_day, time_machine
):
    order = _order(clerk, rub_client, (catalog.standard, Cycle.SEMI_ANNUAL, {"users": 5}),
                   promo="REF5")  # fmt: skip
    draft = services.order_accept(by=clerk, order=order).invoice
    # 4000.00 − 5 % = 3800.00, + 20 % VAT per line (800.00 − 40.00)
    assert (draft.subtotal_minor, draft.tax_minor, draft.total_minor) == (380000, 76000, 456000)
    time_machine.move_to(dt.datetime(2019, 3, 4, 9, tzinfo=dt.UTC), tick=False)
    service = Service.objects.get()
    shown = services.service_change_preview(service=service, options={"users": 3})
    assert (shown.charge, shown.total) == (rub("-1325.97"), rub("-1511.60"))
    _service, invoice, preview = services.service_change(
        by=clerk, service=service, options={"users": 3}
    )
    assert (invoice, preview.charge, preview.total) == (None, rub("-1325.97"), rub("-1511.60"))
    # 1325.97 + 265.19 VAT − promo 66.30 − its VAT 13.26
    assert _held(rub_client) == rub("1511.60")
    assert LedgerEntry.objects.get(kind="proration_credit").amount_minor == -151160


def test_cycle_change_starts_a_new_cycle_less_what_is_unused(access, clerk, time_machine):
    time_machine.move_to(dt.datetime(2019, 3, 4, 9, tzinfo=dt.UTC), tick=False)
    preview = services.service_change_preview(service=access, cycle=Cycle.ANNUAL)
    # 5 × 1500.00 a year, less 4000.00 × 150/181 = 3314.917… → 3314.92 unused
    assert (preview.new_recurring, preview.charge) == (rub("7500.00"), rub("4185.08"))
    assert (preview.new_period_start, preview.new_next_due) == (
        dt.date(2019, 3, 4), dt.date(2020, 3, 4)
    )  # fmt: skip
    service, invoice, _ = services.service_change(by=clerk, service=access, cycle=Cycle.ANNUAL)
    assert (service.cycle, service.period_start, service.next_due_on) == (
        "annual", dt.date(2019, 3, 4), dt.date(2020, 3, 4)
    )  # fmt: skip
    assert (invoice.status, invoice.total_minor) == ("unpaid", 418508)
    with pytest.raises(ServiceError, match="Nothing would change"):
        services.service_change_preview(service=service, cycle=Cycle.ANNUAL)


# ----------------------------------------------------------------------------- account hooks


def test_account_status_cascades_to_services(clerk, rub_client, catalog, seed_day):
    order = _order(clerk, rub_client, (catalog.disk, Cycle.MONTHLY, None),
                   (catalog.hotel, Cycle.SEMI_ANNUAL, None),
                   (catalog.licences, Cycle.SEMI_ANNUAL, None))  # fmt: skip
    services.order_accept(by=clerk, order=order)
    disk, hotel, licences = (Service.objects.get(product=p)
                             for p in (catalog.disk, catalog.hotel, catalog.licences))  # fmt: skip
    services.service_action(by=clerk, service=hotel, action="suspend", reason="Own reasons")

    def statuses():
        return {
            s.product.code: (s.status, s.suspended_with_account)
            for s in Service.objects.select_related("product")
        }

    client_set_status(client=rub_client, status="inactive", reason="Pause", by=clerk)
    assert statuses() == {
        "disk": ("suspended", True), "hotel": ("suspended", False),
        "licences": ("suspended", True),
    }  # fmt: skip
    client_set_status(client=rub_client, status="active", reason="Back", by=clerk)
    assert statuses() == {
        "disk": ("active", False), "hotel": ("suspended", False), "licences": ("active", False)
    }  # fmt: skip
    services.service_action(by=clerk, service=licences, action="terminate", reason="End")
    client_set_status(client=rub_client, status="closed", reason="Gone", by=clerk)
    assert statuses() == {
        "disk": ("cancelled", False), "hotel": ("cancelled", False),
        "licences": ("terminated", False),
    }  # fmt: skip
    assert disk.pk and hotel.pk


def test_client_with_billing_history_is_not_deleted(bill, clerk, rub_client, pay):
    with pytest.raises(ServiceError, match="unpaid invoices"):
        client_delete(client=rub_client, reason="Test", by=clerk)
    pay(rub_client, rub("1000.00"), bill)
    with pytest.raises(ServiceError, match="billing history; close the account instead"):
        client_delete(client=rub_client, reason="Test", by=clerk)
    rub_client.refresh_from_db()
    assert rub_client.deleted_at is None


def test_every_refused_money_action_kept_the_ledger_whole(bill, pay, rub_client, clerk):
    pay(rub_client, rub("1000.00"), bill)
    with pytest.raises(ServiceError):
        services.refund_record(
            by=clerk, invoice=bill, amount=rub("2000.00"), destination="credit", reason="x"
        )
    assert Refund.objects.count() == 0
    assert Order.objects.count() == 0
    result = ledger_verify()
    assert (result.ok, result.checked) == (True, 2)


def test_service_update_moves_the_due_date_after_the_period_start(disk, clerk):
    services.service_update(
        by=clerk, service=disk, next_due_on=dt.date(2019, 3, 15),
        suspend_exempt_until=dt.date(2019, 3, 31),
    )  # fmt: skip
    disk.refresh_from_db()
    assert (disk.next_due_on, disk.suspend_exempt_until) == (
        dt.date(2019, 3, 15), dt.date(2019, 3, 31)
    )  # fmt: skip
    with pytest.raises(ServiceError, match="must come after the period start"):
        services.service_update(
            by=clerk, service=disk, next_due_on=dt.date(2019, 2, 1), suspend_exempt_until=None
        )
    disk.refresh_from_db()
    assert disk.next_due_on == dt.date(2019, 3, 15)


# ----------------------------------------------------------------------------- credit top-ups


def test_credit_top_up_turns_each_payment_into_credit(pay, rub_client, clerk, seed_day, vat_ru):
    top_up = services.credit_top_up_invoice(by=clerk, client=rub_client, amount=rub("500.00"))
    assert (top_up.number, top_up.credit_top_up, top_up.due_on) == (
        "1", True, seed_day + dt.timedelta(days=7)
    )  # fmt: skip
    # Credit paid in advance carries no tax, even for a client whose country has VAT.
    assert list(top_up.lines.values_list("description", "net_minor", "tax_minor")) == [
        ("Credit top-up", 50000, 0)
    ]
    assert invoice_state(top_up) == ("unpaid", 50000, 0, 0, 0, 50000)
    assert _held(rub_client) == rub("0.00")
    pay(rub_client, rub("200.00"), top_up)
    assert invoice_state(top_up) == ("partially_paid", 50000, 20000, 0, 0, 30000)
    assert _held(rub_client) == rub("200.00")
    payment = pay(rub_client, rub("350.00"), top_up)
    assert invoice_state(top_up) == ("paid", 50000, 50000, 0, 0, 0)
    # 300.00 settled the top-up and became credit; the 50.00 beyond it is an overpayment.
    assert payment.to_credit_minor == 5000
    assert _held(rub_client) == rub("550.00")
    assert Receipt.objects.get().amount_minor == 50000
    assert list(
        LedgerEntry.objects.filter(account="credit").values_list("kind", "amount_minor")
    ) == [("top_up", -20000), ("top_up", -30000), ("overpayment", -5000)]
    assert ledger_verify().ok


def test_credit_top_up_refusals_leave_nothing_behind(pay, rub_client, clerk, seed_day):
    before = billing_counts()
    with pytest.raises(ServiceError, match="must be above zero"):
        services.credit_top_up_invoice(by=clerk, client=rub_client, amount=rub("0.00"))
    with pytest.raises(ServiceError, match="billed in RUB; the top-up is in EUR"):
        services.credit_top_up_invoice(by=clerk, client=rub_client, amount=eur("10.00"))
    assert billing_counts() == before
    top_up = services.credit_top_up_invoice(by=clerk, client=rub_client, amount=rub("100.00"))
    pay(rub_client, rub("150.00"))
    before = billing_counts()
    with pytest.raises(ConflictError, match="paid with money, not with credit"):
        services.credit_apply(by=clerk, invoice=top_up)
    pay(rub_client, rub("60.00"), top_up)
    before = billing_counts()
    with pytest.raises(ConflictError, match="refund it from the credit balance"):
        services.refund_record(
            by=clerk, invoice=top_up, amount=rub("10.00"), destination="out",
            method="cash", reason="x",
        )  # fmt: skip
    # Only the 40.00 still owed can be credited: the 60.00 paid is credit already.
    with pytest.raises(ServiceError, match=r"At most 40\.00 RUB"):
        services.credit_note_create(
            by=clerk, invoice=top_up, amount=rub("40.01"), reason="Less needed"
        )
    assert billing_counts() == before
    services.credit_note_create(by=clerk, invoice=top_up, amount=rub("40.00"), reason="Less")
    assert invoice_state(top_up) == ("paid", 10000, 6000, 4000, 0, 0)
    assert _held(rub_client) == rub("210.00")
    assert ledger_verify().ok


# ----------------------------------------------------------------------------- overdue


def test_the_daily_job_marks_invoices_still_owed_after_their_due_date_overdue(
    issue, pay, rub_client, clerk, seed_day, time_machine
):
    from clientbase.core.cron import run_jobs
    from clientbase.core.models import Event

    late = issue(rub_client, ("Консультация", "100.00"))  # due 8 February
    part = issue(rub_client, ("Лицензия", "300.00"))
    pay(rub_client, rub("100.00"), part)
    settled = issue(rub_client, ("Диск", "50.00"))
    pay(rub_client, rub("50.00"), settled)
    later = issue(rub_client, ("Хостинг", "70.00"), due_on=dt.date(2019, 2, 9))
    # on the due date itself nothing is late yet
    time_machine.move_to(dt.datetime(2019, 2, 8, 23, tzinfo=dt.UTC), tick=False)
    assert services.invoices_mark_overdue() == 0
    time_machine.move_to(dt.datetime(2019, 2, 9, 6, tzinfo=dt.UTC), tick=False)
    [run] = run_jobs(only=["invoices_overdue"])
    assert (run.status, run.result) == ("ok", "2 invoices marked overdue")
    assert [invoice_state(i)[0] for i in (late, part, settled, later)] == [
        "overdue", "overdue", "paid", "unpaid"
    ]  # fmt: skip
    assert sorted(
        Event.objects.filter(type="invoice.overdue").values_list("reference", "amount_minor")
    ) == [(late.number, 10000), (part.number, 20000)]
    # a second run finds nothing more; paying keeps it overdue until it is paid in full
    assert services.invoices_mark_overdue(batch=1) == 0
    pay(rub_client, rub("50.00"), part)
    assert invoice_state(part) == ("overdue", 30000, 15000, 0, 0, 15000)
    pay(rub_client, rub("150.00"), part)
    assert invoice_state(part)[0] == "paid"
    assert ledger_verify().ok


def test_marking_overdue_walks_every_batch(issue, rub_client, seed_day, time_machine):
    bills = [issue(rub_client, (f"Line {n}", "10.00")) for n in range(5)]
    time_machine.move_to(dt.datetime(2019, 3, 1, 6, tzinfo=dt.UTC), tick=False)
    assert services.invoices_mark_overdue(batch=2) == 5
    assert {invoice_state(b)[0] for b in bills} == {"overdue"}
