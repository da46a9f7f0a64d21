"""Quotes with per-unit options, promo code checks and tax rates (CAT-2 to CAT-4)."""

import datetime as dt
from decimal import Decimal

import pytest

from clientbase.catalog import services
from clientbase.catalog.models import PromoCode
from clientbase.catalog.pricing import money_in, product_quote, promo_check, tax_rate_for
from clientbase.core.errors import ServiceError
from clientbase.core.money import Money

TODAY = dt.date(2025, 6, 15)


def test_quote_charges_units_above_those_included(licence):
    quote = product_quote(licence, cycle="monthly", currency="RUB", options={"users": 7})
    (users,) = quote.options
    # 7 users, 1 included: 6 × 800 on top of the 2 000 base.
    assert (users.units, users.charged_units, users.unit_price) == (7, 6, Money(80000, "RUB"))
    assert users.amount == Money(480000, "RUB")
    assert quote.base == Money(200000, "RUB")
    assert quote.setup_fee == Money(50000, "RUB")
    assert quote.recurring == Money(680000, "RUB")


def test_quote_quantity_and_default_units(licence):
    quote = product_quote(licence, cycle="monthly", currency="RUB", quantity=2)
    assert [(c.units, c.charged_units) for c in quote.options] == [(1, 0)]
    assert quote.recurring == Money(400000, "RUB")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cycle": "annual", "currency": "RUB"}, "cycle"),
        ({"cycle": "monthly", "currency": "EUR"}, "cycle"),
        ({"cycle": "weekly", "currency": "RUB"}, "cycle"),
        ({"cycle": "monthly", "currency": "RUB", "quantity": 0}, "quantity"),
        ({"cycle": "monthly", "currency": "RUB", "options": {"seats": 2}}, "options"),
        ({"cycle": "monthly", "currency": "RUB", "options": {"users": 0}}, "options"),
    ],
)
def test_quote_refuses_what_is_not_sold(licence, kwargs, field):
    with pytest.raises(ServiceError) as refused:
        product_quote(licence, **kwargs)
    assert list(refused.value.message_dict) == [field]


@pytest.fixture
def promos(biller, licence):
    other = services.product_save(by=biller, code="web", name="Web hosting")
    return {
        "ref": services.promo_save(
            by=biller, code="REF5", kind="percent", percent=Decimal(5), recurring=True
        ),
        "later": services.promo_save(
            by=biller,
            code="LATER",
            kind="percent",
            percent=Decimal(5),
            starts_on=TODAY.replace(day=16),
        ),
        "old": services.promo_save(
            by=biller,
            code="OLD",
            kind="percent",
            percent=Decimal(5),
            expires_on=TODAY.replace(day=14),
        ),
        "used": services.promo_save(
            by=biller, code="USED", kind="percent", percent=Decimal(5), max_uses=2
        ),
        "web": services.promo_save(
            by=biller, code="WEBONLY", kind="percent", percent=Decimal(5), products=[other]
        ),
        "fixed": services.promo_save(
            by=biller, code="MINUS500", kind="fixed", amount=Money(50000, "RUB")
        ),
    }


def test_promo_check_accepts_a_valid_code_whatever_its_case(promos, licence):
    found = promo_check(" ref5 ", product_ids=[licence.pk], currency="EUR", today=TODAY)
    assert found == promos["ref"]
    assert (
        promo_check("minus500", product_ids=[licence.pk], currency="RUB", today=TODAY)
        == (promos["fixed"])
    )
    # Valid on its first and last days.
    assert promo_check(
        "LATER", product_ids=[licence.pk], currency="RUB", today=TODAY.replace(day=16)
    )
    assert promo_check("OLD", product_ids=[licence.pk], currency="RUB", today=TODAY.replace(day=14))


@pytest.mark.parametrize(
    ("code", "currency", "message"),
    [
        ("NOPE", "RUB", "There is no promo code NOPE."),
        ("LATER", "RUB", "Promo code LATER is valid from 2025-06-16."),
        ("OLD", "RUB", "Promo code OLD expired on 2025-06-14."),
        ("USED", "RUB", "Promo code USED has been used up (2 of 2)."),
        ("WEBONLY", "RUB", "Promo code WEBONLY does not apply to these products."),
        ("MINUS500", "EUR", "Promo code MINUS500 is in RUB, the order in EUR."),
    ],
)
def test_promo_check_refusals(promos, licence, code, currency, message):
    PromoCode.objects.filter(code="USED").update(uses=2)
    with pytest.raises(ServiceError) as refused:
        promo_check(code, product_ids=[licence.pk], currency=currency, today=TODAY)
    assert refused.value.message_dict == {"promo_code": [message]}


def test_tax_rate_region_wins_over_country_and_exempt_pays_none(biller):
    services.tax_rule_save(by=biller, name="TVA", country="FR", rate="20")
    services.tax_rule_save(by=biller, name="TVA Corse", country="FR", region="Corse", rate="13")
    assert tax_rate_for(country="FR") == Decimal(20)
    assert tax_rate_for(country="fr", region="Bretagne") == Decimal(20)
    assert tax_rate_for(country="FR", region="corse") == Decimal(13)
    assert tax_rate_for(country="FR", region="Corse", exempt=True) == Decimal(0)
    assert tax_rate_for(country="DE") == Decimal(0)
    assert tax_rate_for(country="") == Decimal(0)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("800.00", "RUB", Money(80000, "RUB")),
        ("800", "EUR", Money(80000, "EUR")),
        ("12.50", "eur", Money(1250, "EUR")),
        (Decimal("0"), "USD", Money(0, "USD")),
        ("1500", "JPY", Money(1500, "JPY")),
    ],
)
def test_money_in(amount, currency, expected):
    assert money_in(amount, currency) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "field", "message"),
    [
        ("12.345", "EUR", "amount", "EUR amounts have at most 2 decimals."),
        ("1.5", "JPY", "amount", "JPY amounts have at most 0 decimals."),
        ("-1", "EUR", "amount", "The amount cannot be negative."),
        ("abc", "EUR", "amount", "Enter an amount such as 800.00."),
        ("NaN", "EUR", "amount", "Enter an amount such as 800.00."),
        ("1e20", "EUR", "amount", "The amount is too large."),
        ("", "EUR", "amount", "Enter an amount."),
        ("1", "EURO", "currency", "Unknown currency EURO."),
    ],
)
def test_money_in_refuses(amount, currency, field, message):
    with pytest.raises(ServiceError) as refused:
        money_in(amount, currency)
    assert refused.value.message_dict == {field: [message]}
