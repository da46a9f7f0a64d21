"""Clerks acting at the same moment on PostgreSQL: row locks keep money and numbers right."""

import threading

import pytest
from django.db import connection, connections

from clientbase.billing import services
from clientbase.billing.ledger import credit_held, invoice_ledger_balance, ledger_verify
from clientbase.billing.models import Invoice, LedgerEntry, Payment, PaymentAllocation, Receipt

from .conftest import invoice_state, line, rub

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are what these tests are about")


def _at_once(work, args_list):
    """Run work(*args) in one thread each, released together; results and errors in order."""
    barrier = threading.Barrier(len(args_list), timeout=30)
    results: list = [None] * len(args_list)

    def run(index, args):
        try:
            barrier.wait()
            results[index] = work(*args)
        except Exception as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_two_clerks_paying_one_invoice_at_once_pay_it_once(clerk, rub_client, issue):
    bill = issue(rub_client, ("Доступ", "1000.00"))

    def pay():
        return services.payment_record(
            by=clerk, client=rub_client, amount=rub("1000.00"), method="bank_transfer",
            invoices=[(bill, None)],
        )  # fmt: skip

    results = _at_once(pay, [(), ()])
    assert all(isinstance(r, Payment) for r in results), results
    # both payments are recorded; the invoice is paid once, the later money is credit
    assert Payment.objects.count() == 2
    assert sorted(p.to_credit_minor for p in results) == [0, 100000]
    assert list(PaymentAllocation.objects.values_list("invoice", "amount_minor")) == [
        (bill.pk, 100000)
    ]
    assert invoice_state(bill) == ("paid", 100000, 100000, 0, 0, 0)
    assert invoice_ledger_balance(bill) == 0
    assert Receipt.objects.count() == 1
    assert credit_held([rub_client.pk], "RUB") == rub("1000.00")
    assert (ledger_verify().ok, ledger_verify().checked) == (True, 3)


def test_twenty_drafts_issued_at_once_get_gapless_unique_numbers(clerk, rub_client):
    drafts = [
        services.invoice_create(by=clerk, client=rub_client, lines=[line(f"Line {n}", f"{n}.00")])
        for n in range(1, 21)
    ]
    results = _at_once(
        lambda d: services.invoice_issue(by=clerk, invoice=d), [(d,) for d in drafts]
    )
    assert all(isinstance(r, Invoice) for r in results), results
    numbers = sorted(Invoice.objects.values_list("number_value", flat=True))
    assert numbers == list(range(1, 21))
    assert sorted(Invoice.objects.values_list("number", flat=True), key=int) == [
        str(n) for n in range(1, 21)
    ]
    assert LedgerEntry.objects.count() == 20
    assert sorted(LedgerEntry.objects.values_list("seq", flat=True)) == list(range(1, 21))
    assert (ledger_verify().ok, ledger_verify().checked) == (True, 20)


def test_payments_of_different_clients_at_once_keep_one_chain(clerk, make_client, issue):
    clients = [make_client(f"Client {n}") for n in range(8)]
    bills = [issue(c, ("Доступ", "500.00")) for c in clients]

    def pay(client, bill):
        return services.payment_record(
            by=clerk, client=client, amount=rub("600.00"), method="card", invoices=[(bill, None)]
        )

    results = _at_once(pay, list(zip(clients, bills, strict=True)))
    assert all(isinstance(r, Payment) for r in results), results
    for client, bill in zip(clients, bills, strict=True):
        assert invoice_state(bill) == ("paid", 50000, 50000, 0, 0, 0)
        assert credit_held([client.pk], "RUB") == rub("100.00")
    assert LedgerEntry.objects.count() == 8 + 16
    assert sorted(LedgerEntry.objects.values_list("seq", flat=True)) == list(range(1, 25))
    assert (ledger_verify().ok, ledger_verify().checked) == (True, 24)
