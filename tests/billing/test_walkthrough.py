"""The seed's workflow end to end: order, first invoice, upgrade by days left, payments."""

import datetime as dt
from decimal import Decimal

import time_machine

from clientbase.billing import services
from clientbase.billing.ledger import credit_held, invoice_ledger_balance, ledger_verify
from clientbase.billing.models import Invoice, LedgerEntry, Order, Payment, Receipt, Service
from clientbase.catalog.models import Cycle

from .conftest import line, rub


def _lines(invoice: Invoice) -> list[tuple]:
    return [
        (ln.description, ln.quantity, ln.unit_price, ln.net_minor, ln.tax_minor,
         ln.period_start, ln.period_end)
        for ln in invoice.lines.order_by("position", "id")
    ]  # fmt: skip


def test_seed_workflow_from_order_to_credit_balance(clerk, rub_client, catalog, promos):
    client = rub_client
    # given an order on 1 February 2019 for the per-user access, 5 users, promo REF5
    with time_machine.travel(dt.datetime(2019, 2, 1, 9, tzinfo=dt.UTC), tick=False):
        order = services.order_create(
            by=clerk,
            client=client,
            items=[services.ItemSpec(catalog.standard, Cycle.SEMI_ANNUAL, options={"users": 5})],
            promo_code="ref5",
        )
        assert (order.status, order.currency, order.payment_method) == (
            "pending", "RUB", "bank_transfer"
        )  # fmt: skip
        assert promos["ref5"].uses == 0
        # when it is accepted
        order = services.order_accept(by=clerk, order=order)
        # then the service runs 1 Feb – 31 Jul and a draft of 3800.00 waits to be issued
        service = Service.objects.get(client=client)
        assert (service.status, service.cycle, service.options, service.recurring_minor) == (
            "active", "semi_annual", {"users": 5}, 400000
        )  # fmt: skip
        assert (service.registered_on, service.period_start, service.next_due_on) == (
            dt.date(2019, 2, 1), dt.date(2019, 2, 1), dt.date(2019, 8, 1)
        )  # fmt: skip
        assert service.promo == promos["ref5"]
        promos["ref5"].refresh_from_db()
        assert promos["ref5"].uses == 1
        draft = order.invoice
        assert (draft.status, draft.number, draft.total_minor) == ("draft", "", 380000)
        period = (dt.date(2019, 2, 1), dt.date(2019, 7, 31))
        assert _lines(draft) == [
            ('Доступ на пользователя "Стандарт" (01/02/2019 – 31/07/2019)',
             Decimal(1), Decimal("0.0000"), 0, 0, *period),
            ("Количество пользователей: 5 × 800.00 RUB",
             Decimal(5), Decimal("800.0000"), 400000, 0, *period),
            ("Promo code REF5: 5 %", Decimal(1), Decimal("-200.0000"), -20000, 0, *period),
        ]  # fmt: skip
        assert (draft.subtotal_minor, draft.tax_minor, draft.period_start) == (
            380000, 0, dt.date(2019, 2, 1)
        )  # fmt: skip
        assert LedgerEntry.objects.count() == 0

        # when the clerk adds a line to the draft and issues it
        services.invoice_line_add(
            by=clerk, invoice=draft, line=line("Настройка рабочего места", "1200.00")
        )
        first = services.invoice_issue(by=clerk, invoice=draft)
        # then it has the first number of the series and is owed in full
        assert (first.number, first.status, first.total_minor, first.balance_minor) == (
            "1", "unpaid", 500000, 500000
        )  # fmt: skip
        assert (first.issued_on, first.due_on) == (dt.date(2019, 2, 1), dt.date(2019, 2, 8))
        assert invoice_ledger_balance(first) == 500000

    # given 4 March 2019: 150 of the 181 days are left
    with time_machine.travel(dt.datetime(2019, 3, 4, 14, tzinfo=dt.UTC), tick=False):
        preview = services.service_change_preview(service=service, options={"users": 6})
        assert (preview.days_left, preview.cycle_days) == (150, 181)
        assert (preview.old_recurring, preview.new_recurring) == (rub("4000.00"), rub("4800.00"))
        # 662.98 less the 5 % promo: what the upgrade invoice will total
        assert (preview.charge, preview.total) == (rub("662.98"), rub("629.83"))
        assert (preview.new_period_start, preview.new_next_due) == (
            dt.date(2019, 2, 1), dt.date(2019, 8, 1)
        )  # fmt: skip
        assert LedgerEntry.objects.count() == 1  # a preview changes nothing
        # when the upgrade is confirmed
        service, upgrade, _preview = services.service_change(
            by=clerk, service=service, options={"users": 6}
        )
        # then the service costs 4800.00 from now, its dates unchanged, and a bill is issued
        service.refresh_from_db()
        assert (service.options, service.recurring_minor, service.next_due_on) == (
            {"users": 6}, 480000, dt.date(2019, 8, 1)
        )  # fmt: skip
        assert (upgrade.number, upgrade.status, upgrade.total_minor) == ("2", "unpaid", 62983)
        change = (
            'Change: Доступ на пользователя "Стандарт" Semi-annual users 5 → '
            'Доступ на пользователя "Стандарт" Semi-annual users 6, 150 of 181 days'
        )
        assert _lines(upgrade) == [
            (f"{change} (04/03/2019 – 31/07/2019)", Decimal(1), Decimal("662.9800"), 66298, 0,
             dt.date(2019, 3, 4), dt.date(2019, 7, 31)),
            ("Promo code REF5: 5 %", Decimal(1), Decimal("-33.1500"), -3315, 0,
             dt.date(2019, 3, 4), dt.date(2019, 7, 31)),
        ]  # fmt: skip

        # when the client pays 1000.00 on the first invoice by bank transfer
        partial = services.payment_record(
            by=clerk,
            client=client,
            amount=rub("1000.00"),
            method="bank_transfer",
            invoices=[(first, None)],
        )
        # then it is partly paid, without a receipt
        first.refresh_from_db()
        assert (first.status, first.paid_minor, first.balance_minor) == (
            "partially_paid", 100000, 400000
        )  # fmt: skip
        assert (partial.number, partial.to_credit_minor) == ("PAY-000001", 0)
        assert Receipt.objects.count() == 0

        # when the rest of both invoices arrives with 370.17 too much
        rest = services.payment_record(
            by=clerk,
            client=client,
            amount=rub("5000.00"),
            method="bank_transfer",
            invoices=[(first, None), (upgrade, None)],
            reference="п/п 412",
        )
    # then both are paid, each with one receipt, and the excess is credit
    first.refresh_from_db()
    upgrade.refresh_from_db()
    assert (first.status, first.paid_minor, first.balance_minor) == ("paid", 500000, 0)
    assert (upgrade.status, upgrade.paid_minor, upgrade.balance_minor) == ("paid", 62983, 0)
    assert rest.to_credit_minor == 37017
    assert credit_held([client.pk], "RUB") == rub("370.17")
    receipts = list(
        Receipt.objects.order_by("number").values_list("number", "invoice", "amount_minor")
    )
    assert receipts == [("RCP-000001", first.pk, 500000), ("RCP-000002", upgrade.pk, 62983)]
    assert Payment.objects.count() == 2
    assert list(LedgerEntry.objects.values_list("seq", "kind", "account", "amount_minor")) == [
        (1, "invoice", "receivable", 500000),
        (2, "invoice", "receivable", 62983),
        (3, "payment", "receivable", -100000),
        (4, "payment", "receivable", -400000),
        (5, "payment", "receivable", -62983),
        (6, "overpayment", "credit", -37017),
    ]
    assert invoice_ledger_balance(first) == invoice_ledger_balance(upgrade) == 0
    assert Order.objects.get().status == "accepted"
    result = ledger_verify()
    assert (result.ok, result.checked) == (True, 6)
