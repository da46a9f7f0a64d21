"""Catalogue services (CAT-1 to CAT-4): good input saved and audited, bad input refused at
its field with nothing changed."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from clientbase.catalog import services
from clientbase.catalog.models import (
    ConfigOption,
    OptionPrice,
    Price,
    Product,
    PromoCode,
    TaxRule,
)
from clientbase.core.errors import ServiceError
from clientbase.core.models import AuditEntry
from clientbase.core.money import Money


def _fields(error: ServiceError) -> dict:
    return error.value.message_dict


def test_product_create_and_update_are_audited(biller):
    product = services.product_save(
        by=biller, code="web", name="Web hosting", cost=Money(500, "EUR"), origin="OVH"
    )
    assert (product.code, product.name, product.kind) == ("web", "Web hosting", "product")
    assert (product.cost_minor, product.cost_currency) == (500, "EUR")
    services.product_save(by=biller, product=product, name="Web hosting Pro", cost=None)
    product.refresh_from_db()
    assert (product.name, product.cost_minor, product.cost_currency) == ("Web hosting Pro", 0, "")
    entries = AuditEntry.objects.filter(
        object_type=ContentType.objects.get_for_model(Product), object_id=str(product.pk)
    ).order_by("pk")
    assert [e.action for e in entries] == ["create", "update"]
    assert entries[1].changes["name"] == {"before": "Web hosting", "after": "Web hosting Pro"}


def test_product_code_must_be_unique(biller):
    services.product_save(by=biller, code="web", name="Web hosting")
    with pytest.raises(ServiceError) as refused:
        services.product_save(by=biller, code="WEB", name="Other")
    assert _fields(refused) == {"code": ["This code is already used."]}
    assert Product.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"code": "", "name": "X"}, {"code": ["This field is required."]}),
        ({"code": "x", "name": "  "}, {"name": ["This field is required."]}),
        ({"code": "bad code!", "name": "X"}, "code"),
        ({"code": "x", "name": "X", "kind": "service"}, "kind"),
        (
            {"code": "x", "name": "X", "cost": Money(-100, "EUR")},
            {"cost": ["The amount cannot be negative."]},
        ),
    ],
)
def test_bad_product_input_saves_nothing(biller, fields, errors):
    audits = AuditEntry.objects.count()
    with pytest.raises(ServiceError) as refused:
        services.product_save(by=biller, **fields)
    if isinstance(errors, str):
        assert list(_fields(refused)) == [errors]
    else:
        assert _fields(refused) == errors
    assert Product.objects.count() == 0
    assert AuditEntry.objects.count() == audits


def test_addons_are_for_products_only(biller):
    web = services.product_save(by=biller, code="web", name="Web hosting")
    backup = services.product_save(
        by=biller, code="backup", name="Backup", kind="addon", addon_for=[web]
    )
    assert list(backup.addon_for.all()) == [web]
    assert list(web.addons.all()) == [backup]
    with pytest.raises(ServiceError) as refused:
        services.product_save(by=biller, code="ssl", name="SSL", addon_for=[web])
    assert list(_fields(refused)) == ["addon_for"]
    with pytest.raises(ServiceError) as refused:
        services.product_save(by=biller, code="x", name="X", kind="addon", addon_for=[backup])
    assert list(_fields(refused)) == ["addon_for"]
    assert Product.objects.count() == 2


def test_price_set_creates_then_updates(biller, licence):
    price = services.price_set(
        by=biller,
        product=licence,
        currency="eur",
        cycle="annual",
        amount=Money.from_decimal("240.00", "EUR"),
    )
    assert (price.currency, price.cycle, price.amount_minor, price.setup_fee_minor) == (
        "EUR",
        "annual",
        24000,
        0,
    )
    services.price_set(
        by=biller,
        product=licence,
        currency="EUR",
        cycle="annual",
        amount=Money(22000, "EUR"),
        setup_fee=Money(1000, "EUR"),
    )
    price.refresh_from_db()
    assert (price.amount_minor, price.setup_fee_minor) == (22000, 1000)
    assert Price.objects.filter(product=licence).count() == 2


@pytest.mark.parametrize(
    ("currency", "cycle", "amount", "fee", "field"),
    [
        ("XYZ", "monthly", Money(100, "EUR"), None, "currency"),
        ("EUR", "weekly", Money(100, "EUR"), None, "cycle"),
        ("EUR", "monthly", Money(100, "USD"), None, "amount"),
        ("EUR", "monthly", Money(-1, "EUR"), None, "amount"),
        ("EUR", "monthly", Money(100, "EUR"), Money(5, "RUB"), "setup_fee"),
        ("EUR", "free", Money(100, "EUR"), None, "amount"),
    ],
)
def test_bad_price_changes_nothing(biller, licence, currency, cycle, amount, fee, field):
    before = list(Price.objects.values_list("currency", "cycle", "amount_minor"))
    audits = AuditEntry.objects.count()
    with pytest.raises(ServiceError) as refused:
        services.price_set(
            by=biller, product=licence, currency=currency, cycle=cycle, amount=amount, setup_fee=fee
        )
    assert list(_fields(refused)) == [field]
    assert list(Price.objects.values_list("currency", "cycle", "amount_minor")) == before
    assert AuditEntry.objects.count() == audits


def test_price_remove(biller, licence):
    price = Price.objects.get(product=licence)
    services.price_remove(by=biller, price=price)
    assert not Price.objects.filter(product=licence).exists()
    assert (
        AuditEntry.objects.filter(
            action="delete",
            object_type=ContentType.objects.get_for_model(Price),
            object_id=str(price.pk),
        ).count()
        == 1
    )


def test_prices_replace_is_all_or_nothing(biller, licence):
    specs = [
        services.PriceSpec("RUB", "annual", Money(2000000, "RUB")),
        services.PriceSpec("EUR", "monthly", Money(2500, "EUR"), Money(500, "EUR")),
    ]
    services.prices_replace(by=biller, product=licence, prices=specs)
    assert sorted(
        Price.objects.values_list("currency", "cycle", "amount_minor", "setup_fee_minor")
    ) == [
        ("EUR", "monthly", 2500, 500),
        ("RUB", "annual", 2000000, 0),
    ]
    with pytest.raises(ServiceError) as refused:
        services.prices_replace(
            by=biller,
            product=licence,
            prices=[specs[0], services.PriceSpec("RUB", "annual", Money(1, "RUB"))],
        )
    assert list(_fields(refused)) == ["prices.1.cycle"]
    assert Price.objects.count() == 2


def test_options_and_their_unit_prices(biller, licence):
    option = ConfigOption.objects.get(product=licence)
    services.option_save(by=biller, product=licence, option=option, max_units=50)
    option.refresh_from_db()
    assert (option.code, option.included_units, option.min_units, option.max_units) == (
        "users",
        1,
        1,
        50,
    )
    with pytest.raises(ServiceError) as refused:
        services.option_save(by=biller, product=licence, option=option, max_units=0)
    assert list(_fields(refused)) == ["max_units"]
    with pytest.raises(ServiceError) as refused:
        services.option_save(by=biller, product=licence, code="USERS", name="Seats")
    assert _fields(refused) == {"code": ["This product already has this option."]}
    with pytest.raises(ServiceError) as refused:
        services.option_price_set(
            by=biller, option=option, currency="RUB", cycle="monthly", unit_price=Money(1, "EUR")
        )
    assert list(_fields(refused)) == ["unit_price"]
    option.refresh_from_db()
    assert option.max_units == 50
    assert ConfigOption.objects.count() == 1
    assert list(OptionPrice.objects.values_list("unit_minor", flat=True)) == [80000]


def test_percent_and_fixed_promo_codes(biller, licence):
    ref = services.promo_save(
        by=biller, code=" ref5 ", kind="percent", percent=Decimal(5), recurring=True
    )
    assert (ref.code, ref.kind, ref.percent, ref.recurring) == ("REF5", "percent", Decimal(5), True)
    fixed = services.promo_save(
        by=biller,
        code="WELCOME",
        kind="fixed",
        amount=Money(50000, "RUB"),
        products=[licence],
        starts_on=dt.date(2025, 1, 1),
        expires_on=dt.date(2025, 1, 1),
        max_uses=10,
    )
    assert (fixed.amount_minor, fixed.currency, fixed.percent) == (50000, "RUB", Decimal(0))
    assert list(fixed.products.all()) == [licence]
    services.promo_save(by=biller, promo=fixed, kind="percent", percent=Decimal("12.5"))
    fixed.refresh_from_db()
    assert (fixed.kind, fixed.percent, fixed.amount_minor, fixed.currency) == (
        "percent",
        Decimal("12.5"),
        0,
        "",
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"code": "ref5", "kind": "percent", "percent": Decimal(3)}, "code"),
        ({"code": "X", "kind": "percent", "percent": Decimal(101)}, "percent"),
        ({"code": "X", "kind": "percent", "percent": Decimal(0)}, "percent"),
        ({"code": "X", "kind": "percent"}, "percent"),
        ({"code": "X", "kind": "fixed"}, "amount"),
        ({"code": "X", "kind": "fixed", "amount": Money(0, "EUR")}, "amount"),
        ({"code": "X", "kind": "other"}, "kind"),
        ({"code": "", "kind": "percent", "percent": Decimal(1)}, "code"),
        (
            {
                "code": "X",
                "kind": "percent",
                "percent": Decimal(1),
                "starts_on": dt.date(2025, 2, 1),
                "expires_on": dt.date(2025, 1, 31),
            },
            "expires_on",
        ),
        ({"code": "X", "kind": "percent", "percent": Decimal(1), "max_uses": 0}, "max_uses"),
    ],
)
def test_bad_promo_saves_nothing(biller, fields, field):
    services.promo_save(by=biller, code="REF5", kind="percent", percent=Decimal(5))
    audits = AuditEntry.objects.count()
    with pytest.raises(ServiceError) as refused:
        services.promo_save(by=biller, **fields)
    assert list(_fields(refused)) == [field]
    assert list(PromoCode.objects.values_list("code", flat=True)) == ["REF5"]
    assert AuditEntry.objects.count() == audits


def test_tax_rules(biller):
    france = services.tax_rule_save(by=biller, name="TVA", country="fr", rate=Decimal(20))
    corsica = services.tax_rule_save(
        by=biller, name="TVA Corse", country="FR", region="Corse", rate="13"
    )
    assert (france.country, france.region, france.rate) == ("FR", "", Decimal(20))
    assert (corsica.region, corsica.rate) == ("Corse", Decimal(13))
    services.tax_rule_save(by=biller, rule=france, name="TVA", country="FR", rate="20.5")
    france.refresh_from_db()
    assert france.rate == Decimal("20.5")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "X", "country": "XX", "rate": 10}, "country"),
        ({"name": "X", "country": "FR", "rate": 101}, "rate"),
        ({"name": "X", "country": "FR", "rate": -1}, "rate"),
        ({"name": "X", "country": "FR", "rate": "abc"}, "rate"),
        ({"name": "X", "country": "DE", "rate": "1.2345"}, "rate"),
        ({"name": "X", "country": "fr", "rate": 10}, "region"),
        ({"name": "", "country": "DE", "rate": 10}, "name"),
    ],
)
def test_bad_tax_rule_saves_nothing(biller, fields, field):
    services.tax_rule_save(by=biller, name="TVA", country="FR", rate=20)
    with pytest.raises(ServiceError) as refused:
        services.tax_rule_save(by=biller, **fields)
    assert list(_fields(refused)) == [field]
    assert list(TaxRule.objects.values_list("country", "rate")) == [("FR", Decimal(20))]
