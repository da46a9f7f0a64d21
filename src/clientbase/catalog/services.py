"""Every change to the catalogue: products, prices, options, promo codes and tax rules.

Each function checks its input, names the field at fault in a ServiceError, writes in one
transaction and logs the change in the audit log. Nothing is saved when a check fails.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django_countries import countries

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
from clientbase.catalog.pricing import check_currency
from clientbase.core.audit import audit_create, audit_delete, audit_update, snapshot
from clientbase.core.errors import ServiceError
from clientbase.core.money import Money

# Model fields as the callers know them: amounts are Money, not minor units.
_FIELD_NAMES = {
    "cost_minor": "cost",
    "cost_currency": "cost",
    "amount_minor": "amount",
    "setup_fee_minor": "setup_fee",
    "unit_minor": "unit_price",
}


def _check(obj, *, exclude: tuple[str, ...] = ()) -> None:
    """The model's own field checks (lengths, choices, decimals) as a ServiceError."""
    try:
        obj.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as bad:
        errors: dict[str, list[str]] = {}
        for field, messages in bad.message_dict.items():
            errors.setdefault(_FIELD_NAMES.get(field, field), []).extend(messages)
        raise ServiceError(errors=errors) from None


def _text(value, field: str, *, required: bool = False) -> str:
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise ServiceError(_("This field is required."), field=field)
    return text


def _cycle(cycle: str, field: str = "cycle") -> str:
    if cycle not in Cycle.values:
        raise ServiceError(_("Unknown billing cycle %(cycle)s.") % {"cycle": cycle}, field=field)
    return cycle


def _money(value, currency: str, field: str) -> Money:
    if not isinstance(value, Money):
        raise ServiceError(_("Enter an amount."), field=field)
    if value.currency != currency:
        raise ServiceError(
            _("The amount is in %(got)s, the price in %(want)s.")
            % {"got": value.currency, "want": currency},
            field=field,
        )
    if value.minor < 0:
        raise ServiceError(_("The amount cannot be negative."), field=field)
    return value


def _apply(obj, fields: dict, allowed: set[str]) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ServiceError(_("Unknown field."), field=unknown[0])
    for name, value in fields.items():
        setattr(obj, name, value)


# --- product groups ------------------------------------------------------------------


def product_group_save(
    *, by, group: ProductGroup | None = None, name: str, description: str = "", position: int = 0
) -> ProductGroup:
    """Create a product group, or rename and move one; names are unique."""
    name = _text(name, "name", required=True)
    clash = ProductGroup.objects.filter(name__iexact=name)
    if group is not None:
        clash = clash.exclude(pk=group.pk)
    if clash.exists():
        raise ServiceError(_("A group with this name already exists."), field="name")
    if not isinstance(position, int) or position < 0:
        raise ServiceError(_("The position must be a whole number, 0 or more."), field="position")
    with transaction.atomic():
        if group is None:
            group = ProductGroup(name=name, description=description or "", position=position)
            _check(group)
            group.save()
            audit_create(group, by=by)
            return group
        group = ProductGroup.objects.select_for_update().get(pk=group.pk)
        before = snapshot(group)
        group.name, group.description, group.position = name, description or "", position
        _check(group)
        group.save(update_fields=["name", "description", "position"])
        audit_update(group, before, by=by)
        return group


# --- products ------------------------------------------------------------------------

PRODUCT_FIELDS = {
    "code",
    "name",
    "kind",
    "group",
    "description",
    "origin",
    "cost",
    "taxable",
    "tax_inclusive",
    "active",
    "addon_for",
}


def product_save(*, by, product: Product | None = None, **fields) -> Product:
    """Create a product (code and name needed), or change the fields given of one.

    `cost` is Money or None; `addon_for` a list of products, only for an addon.
    """
    unknown = sorted(set(fields) - PRODUCT_FIELDS)
    if unknown:
        raise ServiceError(_("Unknown field."), field=unknown[0])
    creating = product is None
    try:
        with transaction.atomic():
            if creating:
                product = Product()
                fields.setdefault("code", "")
                fields.setdefault("name", "")
            else:
                product = Product.objects.select_for_update().get(pk=product.pk)
            before = None if creating else snapshot(product)
            addon_for = fields.pop("addon_for", None)
            if "code" in fields:
                fields["code"] = _text(fields["code"], "code", required=True)
                clash = Product.objects.filter(code__iexact=fields["code"])
                if not creating:
                    clash = clash.exclude(pk=product.pk)
                if clash.exists():
                    raise ServiceError(_("This code is already used."), field="code")
            if "name" in fields:
                fields["name"] = _text(fields["name"], "name", required=True)
            for text_field in ("description", "origin"):
                if text_field in fields:
                    fields[text_field] = _text(fields[text_field], text_field)
            if "cost" in fields:
                cost = fields.pop("cost")
                if cost is None:
                    fields["cost_minor"], fields["cost_currency"] = 0, ""
                else:
                    cost = _money(cost, check_currency(cost.currency, field="cost"), "cost")
                    fields["cost_minor"], fields["cost_currency"] = cost.minor, cost.currency
            for name, value in fields.items():
                setattr(product, name, value)
            _check(product)
            if addon_for is not None:
                addon_for = list(addon_for)
                if addon_for and product.kind != Product.Kind.ADDON:
                    raise ServiceError(
                        _("Only an addon is sold as an addon for other products."),
                        field="addon_for",
                    )
                if any(p.pk == product.pk and p.pk for p in addon_for) or any(
                    p.kind != Product.Kind.PRODUCT for p in addon_for
                ):
                    raise ServiceError(
                        _("An addon is for products, not for itself or other addons."),
                        field="addon_for",
                    )
            elif not creating and product.kind != Product.Kind.ADDON and product.addon_for.exists():
                raise ServiceError(
                    _("Clear the products this addon is for before making it a product."),
                    field="kind",
                )
            product.save()
            if addon_for is not None:
                product.addon_for.set(addon_for)
            if creating:
                audit_create(product, by=by)
            else:
                audit_update(product, before, by=by)
    except IntegrityError:
        # Another clerk took the code between the check and the save.
        raise ServiceError(_("This code is already used."), field="code") from None
    return product


# --- prices --------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceSpec:
    """One price of a product as a caller gives it."""

    currency: str
    cycle: str
    amount: Money
    setup_fee: Money | None = None
    # A changed price reaches existing services at their next renewal, not only new ones.
    apply_to_existing: bool = False


# Called as hook(product, currency, cycle) when a changed price is meant for existing
# services too; billing marks them to renew at the new price.
PRICE_CHANGE_HOOKS: list = []


def on_price_change(hook) -> None:
    """Register what happens to existing services when a price changes for them."""
    PRICE_CHANGE_HOOKS.append(hook)


def _price_values(
    currency: str, cycle: str, amount: Money, setup_fee: Money | None, prefix: str = ""
) -> tuple[str, str, int, int]:
    currency = check_currency(currency, field=f"{prefix}currency")
    cycle = _cycle(cycle, f"{prefix}cycle")
    amount = _money(amount, currency, f"{prefix}amount")
    fee = Money.zero(currency) if setup_fee is None else setup_fee
    fee = _money(fee, currency, f"{prefix}setup_fee")
    if cycle == Cycle.FREE and amount.minor:
        raise ServiceError(_("A free cycle costs nothing."), field=f"{prefix}amount")
    return currency, cycle, amount.minor, fee.minor


def _price_write(
    *, by, product: Product, currency, cycle, amount_minor, fee_minor, apply_to_existing=False
) -> Price:
    if apply_to_existing:
        for hook in PRICE_CHANGE_HOOKS:
            hook(product, currency, cycle)
    price = (
        Price.objects.select_for_update()
        .filter(product=product, currency=currency, cycle=cycle)
        .first()
    )
    if price is None:
        price = Price.objects.create(
            product=product,
            currency=currency,
            cycle=cycle,
            amount_minor=amount_minor,
            setup_fee_minor=fee_minor,
        )
        audit_create(price, by=by)
        return price
    before = snapshot(price)
    price.amount_minor, price.setup_fee_minor = amount_minor, fee_minor
    price.save(update_fields=["amount_minor", "setup_fee_minor"])
    audit_update(price, before, by=by)
    return price


def price_set(
    *,
    by,
    product: Product,
    currency: str,
    cycle: str,
    amount: Money,
    setup_fee: Money | None = None,
    apply_to_existing: bool = False,
) -> Price:
    """Set what one cycle of a product costs in a currency (and its setup fee); with
    `apply_to_existing`, live services renew at it too, else only new ones get it."""
    currency, cycle, amount_minor, fee_minor = _price_values(currency, cycle, amount, setup_fee)
    with transaction.atomic():
        return _price_write(
            by=by,
            product=product,
            currency=currency,
            cycle=cycle,
            amount_minor=amount_minor,
            fee_minor=fee_minor,
            apply_to_existing=apply_to_existing,
        )


def price_remove(*, by, price: Price) -> None:
    """Stop offering a product in one currency and cycle."""
    with transaction.atomic():
        price = Price.objects.select_for_update().filter(pk=price.pk).first()
        if price is None:
            return
        audit_delete(price, by=by)
        price.delete()


def prices_replace(*, by, product: Product, prices: list[PriceSpec]) -> list[Price]:
    """Make a product's prices exactly these; errors are named `prices.<index>.<field>`."""
    rows: dict[tuple[str, str], tuple[int, int, bool]] = {}
    for index, spec in enumerate(prices):
        prefix = f"prices.{index}."
        currency, cycle, amount_minor, fee_minor = _price_values(
            spec.currency, spec.cycle, spec.amount, spec.setup_fee, prefix
        )
        if (currency, cycle) in rows:
            raise ServiceError(
                _("%(currency)s %(cycle)s is listed twice.")
                % {"currency": currency, "cycle": Cycle(cycle).label},
                field=f"{prefix}cycle",
            )
        rows[currency, cycle] = (amount_minor, fee_minor, spec.apply_to_existing)
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product.pk)
        for price in Price.objects.select_for_update().filter(product=product):
            if (price.currency, price.cycle) not in rows:
                audit_delete(price, by=by)
                price.delete()
        for (currency, cycle), (amount_minor, fee_minor, to_existing) in rows.items():
            _price_write(
                by=by,
                product=product,
                currency=currency,
                cycle=cycle,
                amount_minor=amount_minor,
                fee_minor=fee_minor,
                apply_to_existing=to_existing,
            )
        return list(Price.objects.filter(product=product).order_by("currency", "cycle"))


# --- configurable options ------------------------------------------------------------

OPTION_FIELDS = {"code", "name", "included_units", "min_units", "max_units"}


def _whole(value, field: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ServiceError(_("Enter a whole number, 0 or more."), field=field)
    return value


def option_save(*, by, product: Product, option: ConfigOption | None = None, **fields):
    """Create a configurable option of a product, or change the fields given of one."""
    unknown = sorted(set(fields) - OPTION_FIELDS)
    if unknown:
        raise ServiceError(_("Unknown field."), field=unknown[0])
    creating = option is None
    with transaction.atomic():
        if creating:
            option = ConfigOption(product=product)
            fields.setdefault("code", "")
            fields.setdefault("name", "")
        else:
            option = ConfigOption.objects.select_for_update().get(pk=option.pk, product=product)
        before = None if creating else snapshot(option)
        if "code" in fields:
            fields["code"] = _text(fields["code"], "code", required=True)
            clash = ConfigOption.objects.filter(product=product, code__iexact=fields["code"])
            if not creating:
                clash = clash.exclude(pk=option.pk)
            if clash.exists():
                raise ServiceError(_("This product already has this option."), field="code")
        if "name" in fields:
            fields["name"] = _text(fields["name"], "name", required=True)
        for name in ("included_units", "min_units"):
            if name in fields:
                fields[name] = _whole(fields[name], name)
        if "max_units" in fields:
            fields["max_units"] = _whole(fields["max_units"], "max_units", optional=True)
        for name, value in fields.items():
            setattr(option, name, value)
        if option.max_units is not None and option.max_units < option.min_units:
            raise ServiceError(_("The maximum cannot be less than the minimum."), field="max_units")
        _check(option, exclude=("product",))
        option.save()
        if creating:
            audit_create(option, by=by)
        else:
            audit_update(option, before, by=by)
        return option


def option_remove(*, by, option: ConfigOption) -> None:
    """Remove an option and its unit prices."""
    with transaction.atomic():
        option = ConfigOption.objects.select_for_update().filter(pk=option.pk).first()
        if option is None:
            return
        for price in option.prices.all():
            audit_delete(price, by=by)
        audit_delete(option, by=by)
        option.delete()


def option_price_set(
    *, by, option: ConfigOption, currency: str, cycle: str, unit_price: Money
) -> OptionPrice:
    """Set what one unit of an option costs per cycle in a currency."""
    currency = check_currency(currency)
    cycle = _cycle(cycle)
    unit = _money(unit_price, currency, "unit_price")
    with transaction.atomic():
        price = (
            OptionPrice.objects.select_for_update()
            .filter(option=option, currency=currency, cycle=cycle)
            .first()
        )
        if price is None:
            price = OptionPrice.objects.create(
                option=option, currency=currency, cycle=cycle, unit_minor=unit.minor
            )
            audit_create(price, by=by)
            return price
        before = snapshot(price)
        price.unit_minor = unit.minor
        price.save(update_fields=["unit_minor"])
        audit_update(price, before, by=by)
        return price


def option_price_remove(*, by, price: OptionPrice) -> None:
    """Stop pricing an option in one currency and cycle."""
    with transaction.atomic():
        price = OptionPrice.objects.select_for_update().filter(pk=price.pk).first()
        if price is None:
            return
        audit_delete(price, by=by)
        price.delete()


# --- promo codes ---------------------------------------------------------------------

PROMO_FIELDS = {
    "code",
    "kind",
    "percent",
    "amount",
    "recurring",
    "products",
    "starts_on",
    "expires_on",
    "max_uses",
    "note",
}


def _percent(value) -> Decimal:
    if isinstance(value, float | bool) or value is None:
        raise ServiceError(_("Enter a percentage such as 5."), field="percent")
    try:
        percent = Decimal(str(value).strip())
    except InvalidOperation:
        raise ServiceError(_("Enter a percentage such as 5."), field="percent") from None
    if not percent.is_finite() or not Decimal(0) < percent <= Decimal(100):
        raise ServiceError(_("The percentage must be above 0 and at most 100."), field="percent")
    return percent


def promo_save(*, by, promo: PromoCode | None = None, **fields) -> PromoCode:
    """Create a promo code, or change the fields given of one.

    A percent code takes `percent` (above 0, at most 100); a fixed one `amount` (Money, its
    currency is the code's). Codes are unique whatever their case; expiry not before start.
    """
    unknown = sorted(set(fields) - PROMO_FIELDS)
    if unknown:
        raise ServiceError(_("Unknown field."), field=unknown[0])
    creating = promo is None
    try:
        with transaction.atomic():
            if creating:
                promo = PromoCode()
                fields.setdefault("code", "")
                fields.setdefault("kind", PromoCode.Kind.PERCENT)
            else:
                promo = PromoCode.objects.select_for_update().get(pk=promo.pk)
            before = None if creating else snapshot(promo)
            products = fields.pop("products", None)
            if "code" in fields:
                code = _text(fields["code"], "code", required=True).upper()
                clash = PromoCode.objects.filter(code__iexact=code)
                if not creating:
                    clash = clash.exclude(pk=promo.pk)
                if clash.exists():
                    raise ServiceError(_("This code is already used."), field="code")
                fields["code"] = code
            kind = fields.get("kind", promo.kind)
            if kind not in PromoCode.Kind.values:
                raise ServiceError(_("Choose percent or fixed amount."), field="kind")
            if kind == PromoCode.Kind.PERCENT:
                if "percent" in fields or creating or promo.kind != kind:
                    promo.percent = _percent(fields.pop("percent", None))
                fields.pop("amount", None)
                promo.amount_minor, promo.currency = 0, ""
            else:
                amount = fields.pop("amount", None)
                if amount is None and (creating or promo.kind != kind):
                    raise ServiceError(_("Enter the amount of the discount."), field="amount")
                if amount is not None:
                    currency = check_currency(getattr(amount, "currency", ""), field="amount")
                    amount = _money(amount, currency, "amount")
                    if not amount.minor:
                        raise ServiceError(_("The discount must be above 0."), field="amount")
                    promo.amount_minor, promo.currency = amount.minor, amount.currency
                fields.pop("percent", None)
                promo.percent = Decimal(0)
            if "max_uses" in fields:
                max_uses = fields["max_uses"]
                if max_uses is not None and (
                    isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1
                ):
                    raise ServiceError(_("Enter a whole number, 1 or more."), field="max_uses")
            for date_field in ("starts_on", "expires_on"):
                value = fields.get(date_field)
                if value is not None and not isinstance(value, dt.date):
                    raise ServiceError(_("Enter a date."), field=date_field)
            if "note" in fields:
                fields["note"] = _text(fields["note"], "note")
            for name, value in fields.items():
                setattr(promo, name, value)
            if promo.starts_on and promo.expires_on and promo.expires_on < promo.starts_on:
                raise ServiceError(
                    _("The code cannot expire before it starts."), field="expires_on"
                )
            if products is not None:
                products = list(products)
            _check(promo)
            promo.save()
            if products is not None:
                promo.products.set(products)
            if creating:
                audit_create(promo, by=by)
            else:
                audit_update(promo, before, by=by)
    except IntegrityError:
        raise ServiceError(_("This code is already used."), field="code") from None
    return promo


# --- tax rules -----------------------------------------------------------------------


def _rate(value) -> Decimal:
    if isinstance(value, float | bool) or value is None:
        raise ServiceError(_("Enter a rate such as 20."), field="rate")
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise ServiceError(_("Enter a rate such as 20."), field="rate") from None
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(100):
        raise ServiceError(_("The rate must be between 0 and 100."), field="rate")
    return rate


def tax_rule_save(
    *, by, rule: TaxRule | None = None, name: str, country: str, region: str = "", rate
) -> TaxRule:
    """Create or change a tax rate for a country (ISO 3166 code) or one region of it."""
    name = _text(name, "name", required=True)
    country = _text(country, "country", required=True).upper()
    if country not in countries:
        raise ServiceError(_("Unknown country code %(code)s.") % {"code": country}, field="country")
    region = _text(region, "region")
    rate = _rate(rate)
    clash = TaxRule.objects.filter(country=country, region__iexact=region)
    if rule is not None:
        clash = clash.exclude(pk=rule.pk)
    if clash.exists():
        raise ServiceError(
            _("There is already a rule for this country and region."), field="region"
        )
    try:
        with transaction.atomic():
            if rule is None:
                rule = TaxRule(name=name, country=country, region=region, rate=rate)
                _check(rule)
                rule.save()
                audit_create(rule, by=by)
                return rule
            rule = TaxRule.objects.select_for_update().get(pk=rule.pk)
            before = snapshot(rule)
            rule.name, rule.country, rule.region, rule.rate = name, country, region, rate
            _check(rule)
            rule.save(update_fields=["name", "country", "region", "rate"])
            audit_update(rule, before, by=by)
            return rule
    except IntegrityError:
        raise ServiceError(
            _("There is already a rule for this country and region."), field="region"
        ) from None


def tax_rule_remove(*, by, rule: TaxRule) -> None:
    """Remove a tax rule."""
    with transaction.atomic():
        rule = TaxRule.objects.select_for_update().filter(pk=rule.pk).first()
        if rule is None:
            return
        audit_delete(rule, by=by)
        rule.delete()
