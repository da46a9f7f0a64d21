"""Two people converting one quote at the same moment on PostgreSQL: the row lock makes one
invoice (and one contract), and numbers stay unique."""

from decimal import Decimal

import pytest
from django.db import connection

from clientbase.billing.models import Invoice
from clientbase.sales.models import Contract, Quote
from clientbase.sales.quote_services import (
    QuoteLineSpec,
    quote_convert,
    quote_create,
    quote_send,
    quote_set_stage,
)
from tests.billing.test_concurrency import _at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are what these tests are about")


def test_converting_twice_at_once_makes_one_invoice(seller, sales_manager, buyer):
    quote = quote_create(
        by=seller,
        client=buyer,
        lines=[QuoteLineSpec(description="Audit", unit_price=Decimal("300"))],
    )
    quote_send(by=seller, quote=quote)
    quote_set_stage(by=seller, quote=quote, stage="accepted")

    results = _at_once(
        lambda by: quote_convert(by=by, quote=quote, to="invoice"),
        [(seller,), (sales_manager,)],
    )
    assert all(isinstance(r, Quote) for r in results), results
    assert Invoice.objects.count() == 1
    assert {r.invoice_id for r in results} == {Invoice.objects.get().pk}


def test_quotes_made_at_once_get_distinct_numbers(seller, buyer):
    results = _at_once(lambda: quote_create(by=seller, client=buyer), [(), (), ()])
    assert sorted(r.number for r in results) == ["Q-00001", "Q-00002", "Q-00003"]
    assert Contract.objects.count() == 0
