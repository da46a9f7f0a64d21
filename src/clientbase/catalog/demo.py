"""Demo catalogue: a few groups and products priced in EUR, RUB and USD, a CRM licence priced
per user, a referral promo code and tax rules; safe to run again (nothing is duplicated)."""

from decimal import Decimal

from django.db import transaction

from clientbase.catalog.models import (
    ConfigOption,
    Cycle,
    OptionPrice,
    Price,
    Product,
    ProductGroup,
    PromoCode,
    TaxRule,
)
from clientbase.core.money import Money

CURRENCIES = ("EUR", "RUB", "USD")
# Longer cycles are a little cheaper a month.
CYCLE_FACTORS = {
    Cycle.MONTHLY: Decimal(1),
    Cycle.QUARTERLY: Decimal("2.9"),
    Cycle.SEMI_ANNUAL: Decimal("5.7"),
    Cycle.ANNUAL: Decimal("10.8"),
}

# code: (group, name, kind, monthly price by currency, setup fee by currency, addon for)
PRODUCTS = {
    "web-hosting": (
        "Hosting",
        "Web hosting",
        Product.Kind.PRODUCT,
        {"EUR": "9.90", "RUB": "490", "USD": "10.90"},
        {},
        (),
    ),
    "vps": (
        "Hosting",
        "Virtual server",
        Product.Kind.PRODUCT,
        {"EUR": "29.00", "RUB": "1900", "USD": "32.00"},
        {"EUR": "15.00", "RUB": "1000", "USD": "15.00"},
        (),
    ),
    "backup": (
        "Hosting",
        "Daily backup",
        Product.Kind.ADDON,
        {"EUR": "3.00", "RUB": "150", "USD": "3.50"},
        {},
        ("web-hosting", "vps"),
    ),
    "crm-licence": (
        "Licences",
        "CRM licence",
        Product.Kind.PRODUCT,
        {"EUR": "20.00", "RUB": "1500", "USD": "22.00"},
        {},
        (),
    ),
    "support-plan": (
        "Services",
        "Support plan",
        Product.Kind.PRODUCT,
        {"EUR": "99.00", "RUB": "7900", "USD": "109.00"},
        {},
        (),
    ),
}
GROUPS = {"Hosting": 10, "Licences": 20, "Services": 30}
# What one CRM user costs a month in each currency ("6 users × 800").
USER_PRICE = {"EUR": "10.00", "RUB": "800", "USD": "11.00"}
TAX_RULES = [
    ("FR", "TVA", "20"),
    ("RU", "НДС", "20"),
    ("VN", "VAT", "10"),
    ("DE", "MwSt", "19"),
]


def _minor(monthly: str, currency: str, cycle: str) -> int:
    return Money.from_decimal(Decimal(monthly) * CYCLE_FACTORS[cycle], currency).minor


@transaction.atomic
def demo_catalog() -> int:
    """Create the demo catalogue's missing parts; returns how many products were new."""
    groups = {
        name: ProductGroup.objects.get_or_create(name=name, defaults={"position": position})[0]
        for name, position in GROUPS.items()
    }
    created = 0
    products = {}
    for code, (group, name, kind, monthly, setup, _for) in PRODUCTS.items():
        product, new = Product.objects.get_or_create(
            code=code, defaults={"name": name, "kind": kind, "group": groups[group]}
        )
        created += new
        products[code] = product
        for currency in CURRENCIES:
            for cycle in CYCLE_FACTORS:
                Price.objects.get_or_create(
                    product=product,
                    currency=currency,
                    cycle=cycle,
                    defaults={
                        "amount_minor": _minor(monthly[currency], currency, cycle),
                        "setup_fee_minor": Money.from_decimal(
                            setup.get(currency, "0"), currency
                        ).minor,
                    },
                )
    for code, (*_, addon_for) in PRODUCTS.items():
        if addon_for and new_addon_links(products[code]):
            products[code].addon_for.set([products[c] for c in addon_for])
    users, _ = ConfigOption.objects.get_or_create(
        product=products["crm-licence"],
        code="users",
        defaults={"name": "Users", "included_units": 0, "min_units": 1},
    )
    for currency in CURRENCIES:
        for cycle in CYCLE_FACTORS:
            OptionPrice.objects.get_or_create(
                option=users,
                currency=currency,
                cycle=cycle,
                defaults={"unit_minor": _minor(USER_PRICE[currency], currency, cycle)},
            )
    PromoCode.objects.get_or_create(
        code="REF5",
        defaults={
            "kind": PromoCode.Kind.PERCENT,
            "percent": Decimal(5),
            "recurring": True,
            "note": "Reference clients 5 %",
        },
    )
    for country, name, rate in TAX_RULES:
        TaxRule.objects.get_or_create(
            country=country, region="", defaults={"name": name, "rate": Decimal(rate)}
        )
    return created


def new_addon_links(addon: Product) -> bool:
    """Whether an addon has no products yet (an edited list is left alone)."""
    return not addon.addon_for.exists()
