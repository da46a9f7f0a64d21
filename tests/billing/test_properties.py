"""Properties of billing arithmetic, and a state machine of money movements that must keep
invoices, credit and the ledger in agreement whatever order clerks act in."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from clientbase.billing import services
from clientbase.billing.calc import line_amounts, prorate
from clientbase.billing.ledger import credit_held, invoice_ledger_balance, ledger_verify
from clientbase.billing.models import CreditNote, Invoice, LedgerEntry, Payment, Refund
from clientbase.clients.services import client_create
from clientbase.core.errors import ServiceError
from clientbase.core.money import Money, currency_exponent

from .conftest import billing_counts

CURRENCIES = ["RUB", "EUR", "JPY", "BHD"]


def _round_half_up(value: Fraction) -> int:
    """The exact reference: halves away from zero."""
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    whole = magnitude.numerator // magnitude.denominator
    if magnitude - whole >= Fraction(1, 2):
        whole += 1
    return sign * whole


# ----------------------------------------------------------------------------- prorate


@given(
    minor=st.integers(min_value=-(10**15), max_value=10**15),
    cycle_days=st.integers(min_value=1, max_value=800),
    data=st.data(),
)
def test_prorated_parts_of_a_cycle_add_up_within_one_minor_unit(minor, cycle_days, data):
    days = data.draw(st.integers(min_value=0, max_value=cycle_days), label="days")
    amount = Money(minor, "RUB")
    first, second = (
        prorate(amount, days, cycle_days),
        prorate(amount, cycle_days - days, cycle_days),
    )
    assert abs((first + second).minor - minor) <= 1
    assert first.minor == _round_half_up(Fraction(minor * days, cycle_days))
    assert prorate(amount, cycle_days, cycle_days) == amount
    assert prorate(amount, 0, cycle_days).minor == 0


@given(days=st.integers(min_value=-5, max_value=20), cycle_days=st.integers(-2, 10))
def test_prorate_refuses_days_outside_the_cycle(days, cycle_days):
    if cycle_days >= 1 and 0 <= days <= cycle_days:
        prorate(Money(100, "EUR"), days, cycle_days)
    else:
        with pytest.raises(ValueError):
            prorate(Money(100, "EUR"), days, cycle_days)


# ----------------------------------------------------------------------------- lines


def _fixed(places: int, low: int, high: int):
    return st.integers(min_value=low, max_value=high).map(lambda n: Decimal(n).scaleb(-places))


@given(
    quantity=_fixed(3, 1, 99_999_999),
    unit_price=_fixed(4, -(10**13), 10**13),
    discount=_fixed(2, 0, 10_000),
    rate=_fixed(3, 0, 100_000),
    taxable=st.booleans(),
    inclusive=st.booleans(),
    currency=st.sampled_from(CURRENCIES),
)
def test_line_amounts_match_an_exact_reference(
    quantity, unit_price, discount, rate, taxable, inclusive, currency
):
    got = line_amounts(
        quantity=quantity, unit_price=unit_price, discount_percent=discount, tax_rate=rate,
        taxable=taxable, tax_inclusive=inclusive, currency=currency,
    )  # fmt: skip
    scale = 10 ** currency_exponent(currency)
    gross = _round_half_up(
        Fraction(quantity) * Fraction(unit_price) * scale * (100 - Fraction(discount)) / 100
    )
    if not taxable or not rate:
        expected = (gross, 0)
    elif inclusive:
        tax = _round_half_up(gross * Fraction(rate) / (100 + Fraction(rate)))
        expected = (gross - tax, tax)
    else:
        expected = (gross, _round_half_up(gross * Fraction(rate) / 100))
    assert (got.net_minor, got.tax_minor) == expected
    # inclusive lines never change what the client pays: net and tax add up to the gross
    if inclusive:
        assert got.net_minor + got.tax_minor == gross


# ----------------------------------------------------------------------------- money flows


def _rub(minor: int) -> Money:
    return Money(minor, "RUB")


def _near(limit: int, anything: int):
    """Amounts at and around a limit (where mistakes hide), half of it, or anything."""
    choices = [n for n in (limit, limit + 1, limit - 1, limit // 2) if n > 0]
    return st.sampled_from([*choices, anything]) if choices else st.just(anything)


class MoneyFlows(RuleBasedStateMachine):
    """Clerks act on one or two clients in any order; refused actions change nothing."""

    clerk = None  # set by the test

    def __init__(self):
        super().__init__()
        # Each example runs in its own savepoint, rolled back at teardown.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        n = LedgerEntry.objects.count()
        self.clients = [
            client_create(by=self.clerk, name=f"Flow {n}-{i}", email=f"flow{n}-{i}@example.com",
                          currency="RUB", country="RU")
            for i in range(2)
        ]  # fmt: skip
        self.ids = [c.pk for c in self.clients]
        self.adjusted = 0  # credit added by adjustments (no model row records them)
        self.refusals = 0

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers ----------------------------------------------------------------------
    def _invoices(self, *statuses):
        found = Invoice.objects.filter(client_id__in=self.ids).exclude(status="draft")
        if statuses:
            found = found.filter(status__in=statuses)
        return list(found.order_by("pk"))

    def _refused(self, action) -> None:
        """Run an action; if it is refused, nothing it touches may have changed."""
        before = (billing_counts(), self._money_snapshot())
        try:
            action()
        except ServiceError:
            self.refusals += 1
            assert (billing_counts(), self._money_snapshot()) == before

    def _money_snapshot(self):
        return (
            list(
                Invoice.objects.filter(client_id__in=self.ids)
                .order_by("pk")
                .values_list("status", "paid_minor", "credited_minor", "refunded_minor",
                             "balance_minor")
            ),
            [credit_held([pk], "RUB").minor for pk in self.ids],
        )  # fmt: skip

    # --- rules ------------------------------------------------------------------------
    @rule(
        who=st.integers(0, 1),
        lines=st.lists(
            st.tuples(st.integers(1, 500_000), st.integers(1, 3), st.sampled_from([0, 5, 50])),
            min_size=1,
            max_size=3,
        ),
    )
    def issue(self, who, lines):
        specs = [
            services.LineSpec(f"Line {i}", Decimal(price).scaleb(-2), Decimal(qty),
                              discount_percent=Decimal(discount))
            for i, (price, qty, discount) in enumerate(lines)
        ]  # fmt: skip
        draft = services.invoice_create(by=self.clerk, client=self.clients[who], lines=specs)
        services.invoice_issue(by=self.clerk, invoice=draft)

    @rule(who=st.integers(0, 1), amount=st.integers(1, 500_000))
    def top_up(self, who, amount):
        services.credit_top_up_invoice(by=self.clerk, client=self.clients[who], amount=_rub(amount))

    @rule(who=st.integers(0, 1), amount=st.integers(1, 1_500_000), data=st.data())
    def pay(self, who, amount, data):
        open_ = self._invoices(*Invoice.OPEN)
        if open_ and data.draw(st.sampled_from([True, True, True, False]), label="on invoices"):
            # Mostly on the client's open invoices; otherwise all of it goes to credit.
            who = self.ids.index(data.draw(st.sampled_from(open_)).client_id)
        own = [inv for inv in open_ if inv.client_id == self.ids[who]]
        chosen = data.draw(
            st.lists(st.sampled_from(own), min_size=1, unique=True) if own else st.just([])
        )
        owed = sum(inv.balance_minor for inv in chosen)
        if owed:
            amount = data.draw(_near(owed, amount), label="amount")
        allocations = [
            (inv, data.draw(st.none() | st.integers(1, 1_000_000).map(_rub))) for inv in chosen
        ]
        # Now and then pay another client's invoice by mistake: refused.
        if open_ and data.draw(st.sampled_from([False] * 9 + [True]), label="mistake"):
            allocations.append((data.draw(st.sampled_from(open_)), None))
        self._refused(
            lambda: services.payment_record(
                by=self.clerk,
                client=self.clients[who],
                amount=_rub(amount),
                method="bank_transfer",
                invoices=allocations,
            )
        )

    @precondition(lambda self: self._invoices(*Invoice.OPEN))
    @rule(data=st.data(), extra=st.sampled_from([0, 1, 10_000]))
    def settle(self, data, extra):
        """Pay one invoice in full, perhaps with a little too much."""
        invoice = data.draw(st.sampled_from(self._invoices(*Invoice.OPEN)))
        client = self.clients[self.ids.index(invoice.client_id)]
        services.payment_record(
            by=self.clerk, client=client, amount=_rub(invoice.balance_minor + extra),
            method="card", invoices=[(invoice, None)],
        )  # fmt: skip

    @precondition(lambda self: self._invoices(*Invoice.OPEN))
    @rule(data=st.data(), whole=st.booleans(), amount=st.integers(1, 1_000_000))
    def apply_credit(self, data, whole, amount):
        invoice = data.draw(st.sampled_from(self._invoices(*Invoice.OPEN)))
        amount = data.draw(_near(invoice.balance_minor, amount), label="amount")
        self._refused(
            lambda: services.credit_apply(
                by=self.clerk, invoice=invoice, amount=None if whole else _rub(amount)
            )
        )

    @precondition(lambda self: self._invoices())
    @rule(
        data=st.data(),
        amount=st.integers(1, 1_000_000),
        destination=st.sampled_from(["credit", "out"]),
    )
    def refund_payment(self, data, amount, destination):
        invoice = data.draw(st.sampled_from(self._invoices()))
        amount = data.draw(_near(invoice.paid_minor - invoice.refunded_minor, amount))
        self._refused(
            lambda: services.refund_record(
                by=self.clerk,
                invoice=invoice,
                amount=_rub(amount),
                destination=destination,
                method="bank_transfer",
                reason="Test",
            )
        )

    @rule(who=st.integers(0, 1), amount=st.integers(1, 1_000_000))
    def refund_credit(self, who, amount):
        self._refused(
            lambda: services.refund_record(
                by=self.clerk,
                client=self.clients[who],
                amount=_rub(amount),
                destination="out",
                method="cash",
                reason="Paid out",
            )
        )

    @precondition(lambda self: self._invoices())
    @rule(data=st.data(), amount=st.integers(1, 1_000_000), write_off=st.booleans())
    def credit_note(self, data, amount, write_off):
        invoice = data.draw(st.sampled_from(self._invoices()))
        room = invoice.total_minor - invoice.credited_minor - invoice.refunded_minor
        amount = data.draw(_near(invoice.balance_minor if write_off else room, amount))
        kind = CreditNote.Kind.WRITE_OFF if write_off else CreditNote.Kind.CREDIT_NOTE
        self._refused(
            lambda: services.credit_note_create(
                by=self.clerk, invoice=invoice, amount=_rub(amount), reason="Test", kind=kind
            )
        )

    @precondition(lambda self: self._invoices())
    @rule(data=st.data())
    def cancel(self, data):
        invoice = data.draw(st.sampled_from(self._invoices()))
        self._refused(lambda: services.invoice_cancel(by=self.clerk, invoice=invoice, reason="x"))

    @rule(who=st.integers(0, 1), amount=st.integers(-500_000, 500_000).filter(bool))
    def adjust(self, who, amount):
        try:
            services.credit_adjust(
                by=self.clerk, client=self.clients[who], amount=_rub(amount), reason="Test"
            )
        except ServiceError:
            self.refusals += 1
            return
        self.adjusted += amount

    # --- invariants -------------------------------------------------------------------
    @invariant()
    def invoices_agree_with_the_ledger(self):
        for inv in Invoice.objects.filter(client_id__in=self.ids):
            assert inv.balance_minor == invoice_ledger_balance(inv), inv.number
            assert inv.balance_minor >= 0
            assert (inv.balance_minor > 0) == (inv.status in Invoice.OPEN), inv.status
            assert inv.paid_minor >= inv.refunded_minor >= 0
            assert inv.credited_minor + inv.refunded_minor <= inv.total_minor
            assert inv.balance_minor <= inv.total_minor - inv.credited_minor

    @invariant()
    def credit_is_never_negative(self):
        for pk in self.ids:
            held = credit_held([pk], "RUB").minor
            entries = LedgerEntry.objects.filter(client_id=pk, account="credit").aggregate(
                s=Sum("amount_minor")
            )["s"]
            assert held == -(entries or 0)
            assert held >= 0

    @invariant()
    def money_is_conserved(self):
        """The ledger's sum follows from the documents alone."""

        def total(qs, field="amount_minor"):
            return qs.aggregate(s=Sum(field))["s"] or 0

        ids = self.ids
        issued = total(Invoice.objects.filter(client_id__in=ids).exclude(status="draft"),
                       "total_minor")  # fmt: skip
        received = total(Payment.objects.filter(client_id__in=ids))
        refunds = Refund.objects.filter(client_id__in=ids)
        paid_out = total(refunds.filter(destination="out"))
        released = total(refunds.filter(invoice__isnull=False))
        credited = total(CreditNote.objects.filter(client_id__in=ids))
        cancelled = total(
            Invoice.objects.filter(client_id__in=ids, status="cancelled", credited_minor=0),
            "total_minor",
        )
        # What is paid on a top-up invoice is held as credit as well.
        topped_up = total(Invoice.objects.filter(client_id__in=ids, credit_top_up=True),
                          "paid_minor")  # fmt: skip
        expected = (
            issued - received + paid_out - released - credited - cancelled - self.adjusted
            - topped_up
        )  # fmt: skip
        assert total(LedgerEntry.objects.filter(client_id__in=ids)) == expected

    @invariant()
    def chain_verifies(self):
        assert ledger_verify().ok


@pytest.mark.django_db
def test_money_flows_keep_invoices_credit_and_ledger_in_agreement(clerk):
    MoneyFlows.clerk = clerk
    run_state_machine_as_test(
        MoneyFlows,
        settings=settings(
            max_examples=20,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
