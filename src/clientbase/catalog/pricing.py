"""What things cost: catalogue prices with options, promo code checks and tax rates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from clientbase.catalog.models import (
    ConfigOption,
    Cycle,
    OptionPrice,
    Price,
    Product,
    PromoCode,
    TaxRule,
)
from clientbase.core.errors import ServiceError
from clientbase.core.money import Money, currency_exponent


@dataclass(frozen=True)
class OptionCharge:
    """Units of one option above those included, and what they cost per cycle."""

    option: ConfigOption
    units: int
    charged_units: int
    unit_price: Money

    @property
    def amount(self) -> Money:
        return self.unit_price * self.charged_units


@dataclass(frozen=True)
class Quote:
    """The price of one cycle of a product with its options, before promo and tax."""

    base: Money
    quantity: int
    options: tuple[OptionCharge, ...]
    setup_fee: Money

    @property
    def recurring(self) -> Money:
        total = self.base * self.quantity
        for charge in self.options:
            total = total + charge.amount
        return total


# ISO 4217 codes that are not money anyone is billed in: "no currency", test, metals, funds.
NO_CURRENCY = "X" * 3  # ISO 4217's code for "no currency", spelled so it is not read as a marker
NOT_BILLABLE = frozenset(
    {
        NO_CURRENCY,
        "XTS",
        "XAU",
        "XAG",
        "XPD",
        "XPT",
        "XDR",
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XSU",
        "XUA",
    }
)


def check_currency(currency: str, field: str = "currency") -> str:
    """A known ISO 4217 code of real money, or a clear error naming the field."""
    code = (currency or "").strip().upper()
    try:
        currency_exponent(code)
        if code in NOT_BILLABLE:
            raise ValueError(code)
    except ValueError:
        raise ServiceError(
            _("Unknown currency %(code)s.") % {"code": currency}, field=field
        ) from None
    return code


def product_quote(
    product: Product, *, cycle: str, currency: str, quantity: int = 1, options: dict | None = None
) -> Quote:
    """Price one cycle of a product in a currency; options are {code: units}."""
    if cycle not in Cycle.values:
        raise ServiceError(_("Unknown billing cycle %(cycle)s.") % {"cycle": cycle}, field="cycle")
    if quantity < 1:
        raise ServiceError(_("The quantity must be at least 1."), field="quantity")
    price = Price.objects.filter(product=product, currency=currency, cycle=cycle).first()
    if price is None:
        raise ServiceError(
            _("%(product)s has no %(cycle)s price in %(currency)s.")
            % {"product": product.name, "cycle": Cycle(cycle).label, "currency": currency},
            field="cycle",
        )
    options = dict(options or {})
    known = {o.code: o for o in product.options.all()}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ServiceError(
            _("%(product)s has no option %(code)s.")
            % {"product": product.name, "code": unknown[0]},
            field="options",
        )
    unit_prices = {
        p.option_id: p.unit_minor
        for p in OptionPrice.objects.filter(option__product=product, currency=currency, cycle=cycle)
    }
    charges = []
    for code, option in sorted(known.items()):
        units = options.get(code, option.included_units)
        if not isinstance(units, int) or isinstance(units, bool):
            raise ServiceError(
                _("%(option)s must be a whole number.") % {"option": option.name}, field="options"
            )
        too_high = option.max_units is not None and units > option.max_units
        if units < option.min_units or too_high:
            raise ServiceError(
                _("%(option)s must be between %(min)s and %(max)s.")
                % {"option": option.name, "min": option.min_units, "max": option.max_units or "∞"},
                field="options",
            )
        charged = max(0, units - option.included_units)
        charges.append(
            OptionCharge(option, units, charged, Money(unit_prices.get(option.pk, 0), currency))
        )
    return Quote(
        base=price.amount,
        quantity=quantity,
        options=tuple(charges),
        setup_fee=Money(price.setup_fee_minor, currency),
    )


def promo_check(code: str, *, product_ids: list[int], currency: str, today: dt.date) -> PromoCode:
    """The promo code if it may be used today on these products, else a clear error."""
    promo = PromoCode.objects.filter(code__iexact=(code or "").strip()).first()
    if promo is None:
        raise ServiceError(
            _("There is no promo code %(code)s.") % {"code": code}, field="promo_code"
        )
    if promo.starts_on and today < promo.starts_on:
        raise ServiceError(
            _("Promo code %(code)s is valid from %(date)s.")
            % {"code": promo.code, "date": promo.starts_on},
            field="promo_code",
        )
    if promo.expires_on and today > promo.expires_on:
        raise ServiceError(
            _("Promo code %(code)s expired on %(date)s.")
            % {"code": promo.code, "date": promo.expires_on},
            field="promo_code",
        )
    if promo.max_uses is not None and promo.uses >= promo.max_uses:
        raise ServiceError(
            _("Promo code %(code)s has been used up (%(uses)s of %(max)s).")
            % {"code": promo.code, "uses": promo.uses, "max": promo.max_uses},
            field="promo_code",
        )
    if promo.kind == PromoCode.Kind.FIXED and promo.currency != currency:
        raise ServiceError(
            _("Promo code %(code)s is in %(promo)s, the order in %(order)s.")
            % {"code": promo.code, "promo": promo.currency, "order": currency},
            field="promo_code",
        )
    allowed = set(promo.products.values_list("pk", flat=True))
    if allowed and not allowed & set(product_ids):
        raise ServiceError(
            _("Promo code %(code)s does not apply to these products.") % {"code": promo.code},
            field="promo_code",
        )
    return promo


def promo_applies_to(promo: PromoCode, product: Product) -> bool:
    """Whether a promo code discounts this product (no products chosen: all)."""
    allowed = [p.pk for p in promo.products.all()]
    return not allowed or product.pk in allowed


def tax_rate_for(*, country: str, region: str = "", exempt: bool = False) -> Decimal:
    """The rate for a client's country and region; a region's own rule wins; exempt: 0."""
    if exempt or not country:
        return Decimal(0)
    rules = {r.region.casefold(): r.rate for r in TaxRule.objects.filter(country=country.upper())}
    return rules.get((region or "").casefold(), rules.get("", Decimal(0)))


# Digits before the decimal point an amount may have: its minor units fit a 64-bit integer.
MAX_AMOUNT_DIGITS = 15


def money_in(
    amount: Decimal | str | int | None,
    currency: str,
    *,
    field: str = "amount",
    currency_field: str = "currency",
) -> Money:
    """An amount typed in major units ("800.00") as Money; refuses junk, negatives and
    more decimals than the currency has, naming the field."""
    currency = check_currency(currency, field=currency_field)
    if isinstance(amount, float | bool) or amount is None or amount == "":
        raise ServiceError(_("Enter an amount."), field=field)
    try:
        value = Decimal(str(amount).strip())
    except ArithmeticError:
        raise ServiceError(_("Enter an amount such as 800.00."), field=field) from None
    if not value.is_finite():
        raise ServiceError(_("Enter an amount such as 800.00."), field=field)
    if value < 0:
        raise ServiceError(_("The amount cannot be negative."), field=field)
    if value and value.adjusted() >= MAX_AMOUNT_DIGITS:
        raise ServiceError(_("The amount is too large."), field=field)
    places = currency_exponent(currency)
    if value and value.normalize().as_tuple().exponent < -places:
        raise ServiceError(
            _("%(currency)s amounts have at most %(places)s decimals.")
            % {"currency": currency, "places": places},
            field=field,
        )
    return Money.from_decimal(value, currency)
