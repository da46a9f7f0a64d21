"""Quotes: lines priced as invoice lines, stages, approval, sending and conversion (SAL-4)."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from clientbase.billing.calc import add_months, line_amounts
from clientbase.billing.models import Invoice
from clientbase.catalog.models import TaxRule
from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.models import Event
from clientbase.sales.models import Activity, Contract, Lead, Quote
from clientbase.sales.pipelines import default_pipeline, first_stage
from clientbase.sales.quote_services import (
    QuoteLineSpec,
    quote_convert,
    quote_create,
    quote_decide,
    quote_line_add,
    quote_line_delete,
    quote_line_update,
    quote_request_approval,
    quote_send,
    quote_set_stage,
)

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 3, 10)


def spec(price="100.00", qty="1", discount="0", **kw) -> QuoteLineSpec:
    return QuoteLineSpec(
        description=kw.pop("description", "Consulting day"),
        unit_price=Decimal(price),
        quantity=Decimal(qty),
        discount_percent=Decimal(discount),
        **kw,
    )


@pytest.fixture
def vat(db):
    return TaxRule.objects.create(name="TVA", country="FR", rate=Decimal("20"))


def make_lead(seller, *, client=None) -> Lead:
    stage = first_stage(default_pipeline("lead"))
    return Lead.objects.create(
        number=f"L-{Lead.objects.count() + 1}",
        name="Jeanne Roux",
        email="jeanne@roux.fr",
        currency="EUR",
        country="FR",
        stage=stage,
        owner=seller,
        org_unit=seller.org_unit,
        client=client,
    )


def accepted(seller, quote) -> Quote:
    quote_send(by=seller, quote=quote)
    return quote_set_stage(by=seller, quote=quote, stage="accepted")


@time_machine.travel(dt.datetime(2025, 3, 10, 9, tzinfo=dt.UTC), tick=False)
def test_quote_is_numbered_in_the_clients_currency_with_default_validity(seller, buyer, vat):
    # Given a French client with 20 % VAT
    # When the seller makes a quote with two lines
    quote = quote_create(
        by=seller,
        client=buyer,
        title="Website",
        lines=[spec("100.00", "2", "10"), spec("33.33", "3")],
    )
    # Then it is a draft numbered from the quote series, in EUR, valid 30 days
    assert quote.number == "Q-00001"
    assert (quote.stage, quote.currency) == ("draft", "EUR")
    assert quote.issued_on == TODAY
    assert quote.valid_until == dt.date(2025, 4, 9)
    lines = list(quote.lines.all())
    assert [(x.net_minor, x.tax_minor, x.tax_rate) for x in lines] == [
        (18000, 3600, Decimal("20")),
        (9999, 2000, Decimal("20")),
    ]
    assert (quote.subtotal_minor, quote.tax_minor, quote.total_minor) == (27999, 5600, 33599)
    assert Event.objects.filter(type="quote.created", client=buyer).count() == 1


def test_a_quote_needs_a_client_or_lead_and_sane_dates(seller, buyer):
    with pytest.raises(ServiceError) as refused:
        quote_create(by=seller)
    assert "client" in refused.value.message_dict
    with pytest.raises(ServiceError) as refused:
        quote_create(
            by=seller,
            client=buyer,
            issued_on=dt.date(2025, 3, 10),
            valid_until=dt.date(2025, 3, 1),
        )
    assert "valid_until" in refused.value.message_dict
    with pytest.raises(ServiceError) as refused:
        quote_create(by=seller, client=buyer, lines=[spec(discount="120")])
    assert "discount_percent" in refused.value.message_dict
    assert Quote.objects.count() == 0


def test_lines_change_only_while_editable(seller, buyer):
    quote = quote_create(by=seller, client=buyer, lines=[spec("50")])
    line = quote_line_add(by=seller, quote=quote, line=spec("25", "2"))
    quote.refresh_from_db()
    assert quote.total_minor == 10000
    quote_line_update(by=seller, line=line, spec=spec("10", "1"))
    quote.refresh_from_db()
    assert quote.total_minor == 6000
    quote_line_delete(by=seller, line=line)
    quote.refresh_from_db()
    assert quote.total_minor == 5000

    quote_send(by=seller, quote=quote)
    with pytest.raises(ConflictError):
        quote_line_add(by=seller, quote=quote, line=spec("1"))
    quote.refresh_from_db()
    assert (quote.lines.count(), quote.total_minor) == (1, 5000)


def test_stage_transitions_are_enforced(seller, buyer):
    quote = quote_create(by=seller, client=buyer, lines=[spec()])
    with pytest.raises(ConflictError) as refused:
        quote_set_stage(by=seller, quote=quote, stage="accepted")
    assert "cannot become accepted" in str(refused.value.messages[0])
    with pytest.raises(ServiceError) as refused:
        quote_set_stage(by=seller, quote=quote, stage="lost")
    assert "reason" in refused.value.message_dict
    quote.refresh_from_db()
    assert quote.stage == "draft"
    quote_set_stage(by=seller, quote=quote, stage="lost", reason="Too expensive")
    quote.refresh_from_db()
    assert (quote.stage, quote.lost_reason) == ("lost", "Too expensive")


def test_a_big_discount_needs_approval_before_sending(seller, buyer, sales_manager):
    # Given a quote with a 25 % discount (the threshold is 10 %)
    quote = quote_create(by=seller, client=buyer, lines=[spec("100", discount="25")])
    # When the seller sends it, it is refused and nothing is sent
    with pytest.raises(ConflictError) as refused:
        quote_send(by=seller, quote=quote)
    assert "approval" in refused.value.message_dict
    quote.refresh_from_db()
    assert quote.stage == "draft" and len(mail.outbox) == 0
    # A seller may not approve; a manager may, once asked
    quote_request_approval(by=seller, quote=quote, note="Loyal client")
    with pytest.raises(ServiceError):
        quote_decide(by=seller, quote=quote, approve=True)
    with pytest.raises(ServiceError) as refused:
        quote_decide(by=sales_manager, quote=quote, approve=False)
    assert "note" in refused.value.message_dict
    quote_decide(by=sales_manager, quote=quote, approve=True, note="ok")
    quote.refresh_from_db()
    assert (quote.approval, quote.approved_by) == ("approved", sales_manager)
    # Changing a line takes the approval back
    quote_line_add(by=seller, quote=quote, line=spec("5"))
    quote.refresh_from_db()
    assert quote.approval == "none"


def test_rejection_keeps_the_note(seller, buyer, sales_manager):
    quote = quote_create(by=seller, client=buyer, lines=[spec("100", discount="25")])
    quote_request_approval(by=seller, quote=quote)
    quote_decide(by=sales_manager, quote=quote, approve=False, note="Too generous")
    quote.refresh_from_db()
    assert (quote.approval, quote.approval_note) == ("rejected", "Too generous")
    with pytest.raises(ConflictError):
        quote_decide(by=sales_manager, quote=quote, approve=True)


def test_send_mails_the_pdf_and_logs_a_quote_email(
    seller, buyer, django_capture_on_commit_callbacks
):
    quote = quote_create(by=seller, client=buyer, lines=[spec("80")])
    with django_capture_on_commit_callbacks(execute=True):
        quote_send(by=seller, quote=quote)
    quote.refresh_from_db()
    assert quote.stage == "sent" and quote.sent_at is not None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["contact@atelier-lumiere.fr"]
    assert message.attachments[0][0] == "Q-00001.pdf"
    assert message.attachments[0][1][:4] == b"%PDF"
    activity = Activity.objects.get(kind="quote_email")
    assert (activity.client, activity.done_at is not None) == (buyer, True)
    assert Event.objects.filter(type="quote.sent", client=buyer).count() == 1


def test_an_empty_quote_is_not_sent(seller, buyer):
    quote = quote_create(by=seller, client=buyer)
    with pytest.raises(ServiceError):
        quote_send(by=seller, quote=quote)
    assert Activity.objects.count() == 0


def test_convert_to_invoice_copies_lines_and_runs_once(seller, buyer, vat):
    quote = accepted(seller, quote_create(by=seller, client=buyer, lines=[spec("100", "2", "5")]))
    quote_convert(by=seller, quote=quote, to="invoice")
    quote.refresh_from_db()
    invoice = quote.invoice
    assert quote.stage == "converted"
    assert invoice.is_draft and invoice.client == buyer
    assert [(x.description, x.net_minor, x.tax_minor) for x in invoice.lines.all()] == [
        ("Consulting day", 19000, 3800)
    ]
    assert invoice.total_minor == quote.total_minor == 22800
    assert invoice.from_quote == quote
    # Run twice: the same invoice
    again = quote_convert(by=seller, quote=quote, to="invoice")
    assert again.invoice_id == invoice.pk and Invoice.objects.count() == 1
    # The other kind still converts from a converted quote
    quote_convert(by=seller, quote=quote, to="contract")
    quote.refresh_from_db()
    contract = quote.contract
    assert (contract.value_minor, contract.lines.count(), contract.status) == (22800, 1, "draft")
    assert contract.ends_on == add_months(contract.starts_on, 12) - dt.timedelta(days=1)
    assert Contract.objects.count() == 1


def test_only_an_accepted_quote_converts(seller, buyer):
    quote = quote_create(by=seller, client=buyer, lines=[spec()])
    with pytest.raises(ConflictError):
        quote_convert(by=seller, quote=quote, to="invoice")
    with pytest.raises(ServiceError):
        quote_convert(by=seller, quote=quote, to="order")
    assert Invoice.objects.count() == 0


def test_a_lead_quote_converts_only_after_the_lead(seller, buyer):
    lead = make_lead(seller)
    quote = accepted(seller, quote_create(by=seller, lead=lead, lines=[spec()]))
    assert quote.currency == "EUR" and quote.client is None
    with pytest.raises(ServiceError) as refused:
        quote_convert(by=seller, quote=quote, to="invoice")
    assert "convert the lead" in refused.value.message_dict["client"][0]
    assert Invoice.objects.count() == 0
    # Once the lead has become the client, the quote converts for that client
    lead.client = buyer
    lead.save(update_fields=["client"])
    quote_convert(by=seller, quote=quote, to="invoice")
    quote.refresh_from_db()
    assert quote.client == buyer and quote.invoice.client == buyer


def test_lead_quote_taxed_at_the_leads_country(seller, vat):
    quote = quote_create(by=seller, lead=make_lead(seller), lines=[spec("10")])
    assert (quote.tax_minor, quote.total_minor) == (200, 1200)


class TestTotals(HypothesisTestCase):
    """Totals are sums of lines rounded once each, exactly as invoice lines are."""

    @classmethod
    def setUpTestData(cls):
        from clientbase.accounts.models import OrgUnit, Role, User
        from clientbase.accounts.roles import ensure_default_roles
        from clientbase.accounts.services import org_unit_create
        from clientbase.clients.services import client_create

        ensure_default_roles(Role)
        unit = org_unit_create(name="Acme", kind=OrgUnit.Kind.COMPANY, parent=None, by=None)
        cls.user = User.objects.create(username="h", org_unit=unit, is_superuser=True)
        cls.client_ = client_create(
            by=cls.user, name="H", email="h@example.com", currency="EUR", country="FR"
        )
        TaxRule.objects.create(name="TVA", country="FR", rate=Decimal(20))

    @given(
        st.lists(
            st.tuples(
                st.decimals(min_value=0, max_value=10000, places=4),
                st.decimals(min_value=Decimal("0.001"), max_value=500, places=3),
                st.decimals(min_value=0, max_value=100, places=2),
            ),
            min_size=1,
            max_size=5,
        )
    )
    def test_totals_are_sums_of_rounded_lines(self, rows):
        user, client = self.user, self.client_
        quote = quote_create(
            by=user,
            client=client,
            lines=[spec(str(p), str(q), str(d)) for p, q, d in rows],
        )
        expected = [
            line_amounts(
                quantity=q,
                unit_price=p,
                discount_percent=d,
                tax_rate=Decimal(20),
                taxable=True,
                tax_inclusive=False,
                currency="EUR",
            )
            for p, q, d in rows
        ]
        assert quote.subtotal_minor == sum(a.net_minor for a in expected)
        assert quote.tax_minor == sum(a.tax_minor for a in expected)
        assert quote.total_minor == quote.subtotal_minor + quote.tax_minor
