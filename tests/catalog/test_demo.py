"""The demo catalogue: prices in three currencies, a per-user licence, REF5, tax rules."""

from decimal import Decimal

from clientbase.catalog.demo import demo_catalog
from clientbase.catalog.models import OptionPrice, Price, Product, PromoCode, TaxRule
from clientbase.catalog.pricing import product_quote
from clientbase.core.money import Money


def test_demo_catalog_is_made_once(db):
    assert demo_catalog() == 5
    counts = (Product.objects.count(), Price.objects.count(), OptionPrice.objects.count())
    assert counts == (5, 60, 12)
    assert demo_catalog() == 0
    assert (Product.objects.count(), Price.objects.count(), OptionPrice.objects.count()) == counts
    licence = Product.objects.get(code="crm-licence")
    quote = product_quote(licence, cycle="monthly", currency="RUB", options={"users": 6})
    assert quote.recurring == Money(150000 + 6 * 80000, "RUB")
    ref = PromoCode.objects.get(code="REF5")
    assert (ref.kind, ref.percent, ref.recurring) == ("percent", Decimal(5), True)
    assert sorted(TaxRule.objects.values_list("country", "rate")) == [
        ("DE", Decimal(19)),
        ("FR", Decimal(20)),
        ("RU", Decimal(20)),
        ("VN", Decimal(10)),
    ]
    backup = Product.objects.get(code="backup")
    assert sorted(backup.addon_for.values_list("code", flat=True)) == ["vps", "web-hosting"]
