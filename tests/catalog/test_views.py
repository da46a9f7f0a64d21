"""Catalogue pages: everyone signed in reads the products; catalog.manage edits."""

from decimal import Decimal

import pytest
from django.urls import reverse

from clientbase.catalog import services
from clientbase.catalog.models import ConfigOption, OptionPrice, Price, Product, PromoCode, TaxRule
from clientbase.core.money import Money


def test_product_list_shows_groups_and_formatted_prices(signed_in, seller, licence):
    response = signed_in(seller).get(reverse("catalog:products"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Licences" in page
    assert "CRM licence" in page
    assert "RUB2,000.00" in page
    assert "RUB500.00" in page  # the setup fee
    assert reverse("catalog:product_add") not in page


def test_product_list_takes_a_few_queries(
    signed_in, seller, licence, biller, django_assert_num_queries
):
    for code in ("a", "b", "c"):
        product = services.product_save(by=biller, code=code, name=code.upper())
        services.price_set(
            by=biller, product=product, currency="EUR", cycle="monthly", amount=Money(1000, "EUR")
        )
    browser = signed_in(seller)
    browser.get(reverse("catalog:products"))
    # Session, user, role and unit, then products, prices and addon links.
    with django_assert_num_queries(7):
        assert browser.get(reverse("catalog:products")).status_code == 200


def test_product_page_shows_prices_options_and_addons(signed_in, seller, biller, licence):
    services.product_save(
        by=biller, code="backup", name="Daily backup", kind="addon", addon_for=[licence]
    )
    response = signed_in(seller).get(reverse("catalog:product", args=[licence.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "RUB2,000.00" in page
    assert "Users" in page
    assert "RUB800.00" in page
    assert "Daily backup" in page
    assert reverse("catalog:product_edit", args=[licence.pk]) not in page


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("catalog:product_add", []),
        ("catalog:product_edit", ["licence"]),
        ("catalog:option_add", ["licence"]),
        ("catalog:groups", []),
        ("catalog:group_add", []),
        ("catalog:promos", []),
        ("catalog:promo_add", []),
        ("catalog:tax_rules", []),
        ("catalog:tax_rule_add", []),
    ],
)
def test_edit_pages_need_catalog_manage(signed_in, seller, biller, licence, name, args):
    url = reverse(name, args=[licence.pk if a == "licence" else a for a in args])
    assert signed_in(seller).get(url).status_code == 403
    assert signed_in(biller).get(url).status_code == 200


def test_writes_need_catalog_manage(signed_in, seller, licence):
    browser = signed_in(seller)
    price = Price.objects.get(product=licence)
    response = browser.post(
        reverse("catalog:price_add", args=[licence.pk]),
        {"currency": "EUR", "cycle": "monthly", "amount": "10.00"},
    )
    assert response.status_code == 403
    assert browser.post(reverse("catalog:price_delete", args=[price.pk])).status_code == 403
    assert Price.objects.filter(product=licence).count() == 1


def test_pages_need_sign_in(client, licence):
    response = client.get(reverse("catalog:products"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_add_a_product(signed_in, biller):
    browser = signed_in(biller)
    response = browser.post(
        reverse("catalog:product_add"),
        {
            "code": "web",
            "name": "Web hosting",
            "kind": "product",
            "cost": "4.50",
            "cost_currency": "EUR",
            "taxable": "on",
            "active": "on",
        },
    )
    product = Product.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:product", args=[product.pk])
    assert (product.code, product.cost_minor, product.cost_currency, product.taxable) == (
        "web",
        450,
        "EUR",
        True,
    )


def test_product_form_shows_errors_at_their_fields(signed_in, biller, licence):
    response = signed_in(biller).post(
        reverse("catalog:product_add"),
        {
            "code": "crm-licence",
            "name": "Again",
            "kind": "product",
            "cost": "1.234",
            "cost_currency": "EUR",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "EUR amounts have at most 2 decimals." in page
    assert Product.objects.count() == 1
    response = signed_in(biller).post(
        reverse("catalog:product_add"), {"code": "crm-licence", "name": "Again", "kind": "product"}
    )
    assert "This code is already used." in response.content.decode()
    assert Product.objects.count() == 1


def test_edit_a_product(signed_in, biller, licence):
    browser = signed_in(biller)
    page = browser.get(reverse("catalog:product_edit", args=[licence.pk])).content.decode()
    assert 'value="crm-licence"' in page
    response = browser.post(
        reverse("catalog:product_edit", args=[licence.pk]),
        {"code": "crm-licence", "name": "CRM licence 2", "kind": "product", "active": "on"},
    )
    assert response.status_code == 302
    licence.refresh_from_db()
    assert licence.name == "CRM licence 2"


def test_set_and_remove_prices_from_the_product_page(signed_in, biller, licence):
    browser = signed_in(biller)
    response = browser.post(
        reverse("catalog:price_add", args=[licence.pk]),
        {"currency": "eur", "cycle": "annual", "amount": "800.00", "setup_fee": "10"},
    )
    assert response.status_code == 302
    price = Price.objects.get(product=licence, currency="EUR")
    assert (price.cycle, price.amount_minor, price.setup_fee_minor) == ("annual", 80000, 1000)
    response = browser.post(
        reverse("catalog:price_add", args=[licence.pk]),
        {"currency": "XYZ", "cycle": "annual", "amount": "1"},
    )
    assert response.status_code == 422
    assert "Unknown currency XYZ." in response.content.decode()
    browser.post(reverse("catalog:price_delete", args=[price.pk]))
    assert list(Price.objects.filter(product=licence).values_list("currency", flat=True)) == ["RUB"]


def test_options_from_the_product_page(signed_in, biller, licence):
    browser = signed_in(biller)
    response = browser.post(
        reverse("catalog:option_add", args=[licence.pk]),
        {"code": "storage", "name": "Storage, GB", "included_units": "10", "min_units": "10"},
    )
    assert response.status_code == 302
    option = ConfigOption.objects.get(code="storage")
    assert (option.included_units, option.min_units, option.max_units) == (10, 10, None)
    response = browser.post(
        reverse("catalog:option_price_add", args=[option.pk]),
        {"currency": "RUB", "cycle": "monthly", "unit_price": "25.50"},
    )
    assert response.status_code == 302
    assert OptionPrice.objects.get(option=option).unit_minor == 2550
    response = browser.post(
        reverse("catalog:option_price_add", args=[option.pk]),
        {"currency": "RUB", "cycle": "monthly", "unit_price": "-1"},
    )
    assert response.status_code == 422
    assert OptionPrice.objects.get(option=option).unit_minor == 2550
    browser.post(reverse("catalog:option_delete", args=[option.pk]))
    assert not ConfigOption.objects.filter(code="storage").exists()


def test_promo_codes_pages(signed_in, biller, licence):
    browser = signed_in(biller)
    response = browser.post(
        reverse("catalog:promo_add"),
        {"code": "ref5", "kind": "percent", "percent": "5", "recurring": "on"},
    )
    assert response.status_code == 302
    promo = PromoCode.objects.get()
    assert (promo.code, promo.percent, promo.recurring) == ("REF5", Decimal(5), True)
    response = browser.post(
        reverse("catalog:promo_add"),
        {
            "code": "MINUS",
            "kind": "fixed",
            "amount": "500",
            "currency": "RUB",
            "products": [licence.pk],
        },
    )
    assert response.status_code == 302
    page = browser.get(reverse("catalog:promos")).content.decode()
    assert "REF5" in page
    assert "RUB500.00" in page
    response = browser.post(
        reverse("catalog:promo_add"), {"code": "Ref5", "kind": "percent", "percent": "3"}
    )
    assert "This code is already used." in response.content.decode()
    response = browser.post(
        reverse("catalog:promo_edit", args=[promo.pk]),
        {"code": "REF5", "kind": "percent", "percent": "7"},
    )
    assert response.status_code == 302
    promo.refresh_from_db()
    assert (promo.percent, promo.recurring) == (Decimal(7), False)
    assert PromoCode.objects.count() == 2


def test_tax_rules_pages(signed_in, biller):
    browser = signed_in(biller)
    response = browser.post(
        reverse("catalog:tax_rule_add"), {"name": "TVA", "country": "FR", "rate": "20"}
    )
    assert response.status_code == 302
    rule = TaxRule.objects.get()
    assert (rule.country, rule.region, rule.rate) == ("FR", "", Decimal(20))
    response = browser.post(
        reverse("catalog:tax_rule_add"), {"name": "TVA 2", "country": "FR", "rate": "5"}
    )
    assert "There is already a rule for this country and region." in response.content.decode()
    page = browser.get(reverse("catalog:tax_rules")).content.decode()
    assert "TVA" in page
    response = browser.post(
        reverse("catalog:tax_rule_edit", args=[rule.pk]),
        {"name": "TVA", "country": "FR", "rate": "19.6"},
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.rate == Decimal("19.6")
    assert TaxRule.objects.count() == 1


def test_groups_pages(signed_in, biller, licence):
    browser = signed_in(biller)
    response = browser.post(reverse("catalog:group_add"), {"name": "Hosting", "position": "0"})
    assert response.status_code == 302
    page = browser.get(reverse("catalog:groups")).content.decode()
    assert "Hosting" in page
    assert "Licences" in page
