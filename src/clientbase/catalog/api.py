"""The catalogue over the API: products and prices, promo codes, tax rules.

Amounts are decimal strings in major units, e.g. {"amount": "800.00", "currency": "RUB"};
everyone signed in reads products, catalog.manage is needed for the rest and for writes.
"""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StringConstraints

from clientbase.catalog import services
from clientbase.catalog.models import (
    ConfigOption,
    Cycle,
    OptionPrice,
    Product,
    ProductGroup,
    PromoCode,
    TaxRule,
)
from clientbase.catalog.pricing import money_in
from clientbase.catalog.shell import MANAGE
from clientbase.core.api_base import Id, Page, Text, problems
from clientbase.core.errors import ServiceError
from clientbase.core.money import Money

router = Router()

# An amount as typed: digits with an optional decimal point, never a JSON number (a float).
Amount = Annotated[
    str,
    StringConstraints(pattern=r"^\d{1,15}(\.\d{1,6})?$"),
    Field(description='major units as a decimal string, e.g. "800.00"', examples=["800.00"]),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]
# Plain literals, not the models' TextChoices: every enum named "Kind" would share one
# component of the OpenAPI document.
CycleName = Literal[tuple(Cycle.values)]
ProductKind = Literal[tuple(Product.Kind.values)]
PromoKind = Literal[tuple(PromoCode.Kind.values)]


def _require(request: HttpRequest) -> None:
    """A 403 problem unless the caller may edit the catalogue."""
    if not request.user.has_perm(MANAGE):
        raise PermissionDenied


def _money_out(minor: int, currency: str) -> dict | None:
    if not currency:
        return None
    return {"amount": f"{Money(minor, currency).amount:f}", "currency": currency}


class MoneyIO(Schema):
    """An amount in a currency."""

    amount: Amount
    currency: Currency


class PriceOut(Schema):
    """What one cycle of a product costs in one currency."""

    currency: str
    cycle: CycleName
    amount: str
    setup_fee: str

    @staticmethod
    def resolve_amount(price) -> str:
        return f"{Money(price.amount_minor, price.currency).amount:f}"

    @staticmethod
    def resolve_setup_fee(price) -> str:
        return f"{Money(price.setup_fee_minor, price.currency).amount:f}"


class OptionPriceOut(Schema):
    """What one unit of an option costs per cycle in one currency."""

    currency: str
    cycle: CycleName
    unit_price: str

    @staticmethod
    def resolve_unit_price(price) -> str:
        return f"{Money(price.unit_minor, price.currency).amount:f}"


class OptionOut(Schema):
    """A configurable option priced per unit."""

    id: int
    code: str
    name: str
    included_units: int
    min_units: int
    max_units: int | None
    prices: list[OptionPriceOut]

    @staticmethod
    def resolve_prices(option) -> list:
        return list(option.prices.all())


class ProductOut(Schema):
    """A product with its prices and options."""

    id: int
    code: str
    name: str
    kind: ProductKind
    group_id: int | None
    group: str | None
    description: str
    origin: str
    cost: MoneyIO | None
    taxable: bool
    tax_inclusive: bool
    active: bool
    addon_for: list[int]
    prices: list[PriceOut]
    options: list[OptionOut]

    @staticmethod
    def resolve_group(product) -> str | None:
        return product.group.name if product.group else None

    @staticmethod
    def resolve_cost(product) -> dict | None:
        return _money_out(product.cost_minor, product.cost_currency)

    @staticmethod
    def resolve_addon_for(product) -> list[int]:
        return sorted(p.pk for p in product.addon_for.all())

    @staticmethod
    def resolve_prices(product) -> list:
        return list(product.prices.all())

    @staticmethod
    def resolve_options(product) -> list:
        return list(product.options.all())


Code = Annotated[Text, StringConstraints(min_length=1, max_length=40)]


class ProductIn(Schema):
    """A new product."""

    code: Code
    name: Text = Field(min_length=1, max_length=200)
    kind: ProductKind = "product"
    group_id: Id | None = None
    description: Text = Field("", max_length=10_000)
    origin: Text = Field("", max_length=100)
    cost: MoneyIO | None = None
    taxable: bool = True
    tax_inclusive: bool = False
    active: bool = True
    addon_for: list[Id] = Field(default_factory=list, max_length=1000)


class ProductPatch(Schema):
    """Fields to change on a product; those left out stay as they are."""

    code: Code | None = None
    name: Text | None = Field(None, min_length=1, max_length=200)
    kind: ProductKind | None = None
    group_id: Id | None = None
    description: Text | None = Field(None, max_length=10_000)
    origin: Text | None = Field(None, max_length=100)
    cost: MoneyIO | None = None
    taxable: bool | None = None
    tax_inclusive: bool | None = None
    active: bool | None = None
    addon_for: list[Id] | None = Field(None, max_length=1000)


class PriceIn(Schema):
    """One price of a product."""

    currency: Currency
    cycle: CycleName
    amount: Amount
    setup_fee: Amount = "0"
    apply_to_existing: bool = Field(
        False, description="a changed price reaches existing services at their next renewal"
    )


def _products():
    return Product.objects.select_related("group").prefetch_related(
        "prices",
        "addon_for",
        Prefetch(
            "options",
            queryset=ConfigOption.objects.prefetch_related(
                Prefetch("prices", queryset=OptionPrice.objects.order_by("currency", "cycle"))
            ),
        ),
    )


def _product_fields(data: dict) -> dict:
    """The payload as product_save takes it: rows for ids, Money for amounts."""
    if "group_id" in data:
        group_id = data.pop("group_id")
        data["group"] = None
        if group_id is not None:
            data["group"] = ProductGroup.objects.filter(pk=group_id).first()
            if data["group"] is None:
                raise ServiceError("No such product group.", field="group_id")
    if "addon_for" in data:
        ids = data.pop("addon_for") or []
        found = list(Product.objects.filter(pk__in=ids))
        if len(found) != len(set(ids)):
            raise ServiceError("No such product.", field="addon_for")
        data["addon_for"] = found
    if "cost" in data:
        cost = data.pop("cost")
        data["cost"] = (
            None
            if cost is None
            else money_in(
                cost["amount"],
                cost["currency"],
                field="cost.amount",
                currency_field="cost.currency",
            )
        )
    return data


def _at_api_fields(refused: ServiceError, names: dict[str, str]) -> ServiceError:
    return ServiceError(
        errors={names.get(field, field): msgs for field, msgs in refused.message_dict.items()}
    )


_PRODUCT_NAMES = {"group": "group_id", "cost_currency": "cost.currency"}


@router.get("/products", response={200: list[ProductOut], **problems(422)}, summary="List products")
@paginate(Page)
def product_list(request: HttpRequest, active: bool | None = None, kind: ProductKind | None = None):
    """Every product with its prices and options, by code."""
    found = _products().order_by("code")
    if active is not None:
        found = found.filter(active=active)
    if kind is not None:
        found = found.filter(kind=kind)
    return found


@router.get(
    "/products/{product_id}",
    response={200: ProductOut, **problems(404, 422)},
    summary="Get a product",
)
def product_get(request: HttpRequest, product_id: Id):
    """One product with its prices and options."""
    return get_object_or_404(_products(), pk=product_id)


@router.post(
    "/products", response={201: ProductOut, **problems(400, 403, 422)}, summary="Create a product"
)
def product_create(request: HttpRequest, payload: ProductIn):
    """Add a product; its code must not be used by another one."""
    _require(request)
    try:
        data = _product_fields(payload.dict())
        product = services.product_save(by=request.user, **data)
    except ServiceError as refused:
        raise _at_api_fields(refused, _PRODUCT_NAMES) from refused
    return Status(201, get_object_or_404(_products(), pk=product.pk))


@router.patch(
    "/products/{product_id}",
    response={200: ProductOut, **problems(400, 403, 404, 422)},
    summary="Change a product",
)
def product_update(request: HttpRequest, product_id: Id, payload: ProductPatch):
    """Change some fields of a product; `cost: null` clears the cost price."""
    product = get_object_or_404(Product, pk=product_id)
    _require(request)
    changes = payload.dict(exclude_unset=True)
    for field in list(changes):
        if changes[field] is None and field not in {"group_id", "cost"}:
            changes.pop(field)
    try:
        services.product_save(by=request.user, product=product, **_product_fields(changes))
    except ServiceError as refused:
        raise _at_api_fields(refused, _PRODUCT_NAMES) from refused
    return get_object_or_404(_products(), pk=product.pk)


@router.put(
    "/products/{product_id}/prices",
    response={200: list[PriceOut], **problems(400, 403, 404, 422)},
    summary="Replace a product's prices",
)
def product_prices_put(request: HttpRequest, product_id: Id, payload: list[PriceIn]):
    """Make the product's prices exactly these: prices not listed are removed."""
    product = get_object_or_404(Product, pk=product_id)
    _require(request)
    if len(payload) > 200:
        raise ServiceError("At most 200 prices.", field="")
    specs = []
    try:
        for index, row in enumerate(payload):
            amount = money_in(
                row.amount,
                row.currency,
                field=f"{index}.amount",
                currency_field=f"{index}.currency",
            )
            fee = money_in(row.setup_fee, amount.currency, field=f"{index}.setup_fee")
            specs.append(
                services.PriceSpec(amount.currency, row.cycle, amount, fee, row.apply_to_existing)
            )
        return services.prices_replace(by=request.user, product=product, prices=specs)
    except ServiceError as refused:
        raise ServiceError(
            errors={
                field.removeprefix("prices."): msgs for field, msgs in refused.message_dict.items()
            }
        ) from refused


# --- promo codes ---------------------------------------------------------------------


class PromoOut(Schema):
    """A promo code."""

    id: int
    code: str
    kind: PromoKind
    percent: str | None
    amount: MoneyIO | None
    recurring: bool
    products: list[int]
    starts_on: dt.date | None
    expires_on: dt.date | None
    max_uses: int | None
    uses: int
    note: str

    @staticmethod
    def resolve_percent(promo) -> str | None:
        return f"{promo.percent.normalize():f}" if promo.kind == PromoCode.Kind.PERCENT else None

    @staticmethod
    def resolve_amount(promo) -> dict | None:
        return _money_out(promo.amount_minor, promo.currency)

    @staticmethod
    def resolve_products(promo) -> list[int]:
        return sorted(p.pk for p in promo.products.all())


Percent = Annotated[
    str,
    StringConstraints(pattern=r"^\d{1,3}(\.\d{1,2})?$"),
    Field(description='a percentage as a decimal string, e.g. "5"', examples=["5"]),
]


class PromoIn(Schema):
    """A new promo code: `percent` for a percent code, `amount` for a fixed one."""

    code: Code
    kind: PromoKind
    percent: Percent | None = None
    amount: MoneyIO | None = None
    recurring: bool = False
    products: list[Id] = Field(default_factory=list, max_length=1000)
    starts_on: dt.date | None = None
    expires_on: dt.date | None = None
    max_uses: int | None = Field(None, ge=1, le=2**31 - 1)
    note: Text = Field("", max_length=200)


class PromoPatch(Schema):
    """Fields to change on a promo code; those left out stay as they are."""

    code: Code | None = None
    kind: PromoKind | None = None
    percent: Percent | None = None
    amount: MoneyIO | None = None
    recurring: bool | None = None
    products: list[Id] | None = Field(None, max_length=1000)
    starts_on: dt.date | None = None
    expires_on: dt.date | None = None
    max_uses: int | None = Field(None, ge=1, le=2**31 - 1)
    note: Text | None = Field(None, max_length=200)


_NULLABLE_PROMO = {"starts_on", "expires_on", "max_uses"}


def _promo_fields(data: dict) -> dict:
    if "products" in data:
        ids = data.pop("products") or []
        found = list(Product.objects.filter(pk__in=ids))
        if len(found) != len(set(ids)):
            raise ServiceError("No such product.", field="products")
        data["products"] = found
    if data.get("percent") is not None:
        data["percent"] = Decimal(data["percent"])
    if data.get("amount") is not None:
        amount = data["amount"]
        data["amount"] = money_in(
            amount["amount"],
            amount["currency"],
            field="amount.amount",
            currency_field="amount.currency",
        )
    return data


def _promos():
    return PromoCode.objects.prefetch_related("products")


@router.get(
    "/promo-codes", response={200: list[PromoOut], **problems(403, 422)}, summary="List promo codes"
)
@paginate(Page)
def promo_list(request: HttpRequest):
    """Every promo code, by code."""
    _require(request)
    return _promos().order_by("code")


@router.get(
    "/promo-codes/{promo_id}",
    response={200: PromoOut, **problems(403, 404, 422)},
    summary="Get a promo code",
)
def promo_get(request: HttpRequest, promo_id: Id):
    """One promo code."""
    _require(request)
    return get_object_or_404(_promos(), pk=promo_id)


@router.post(
    "/promo-codes",
    response={201: PromoOut, **problems(400, 403, 422)},
    summary="Create a promo code",
)
def promo_create(request: HttpRequest, payload: PromoIn):
    """Add a promo code; codes are unique whatever their case."""
    _require(request)
    data = payload.dict()
    if data["kind"] == PromoCode.Kind.PERCENT:
        data.pop("amount")
    else:
        data.pop("percent")
    try:
        promo = services.promo_save(by=request.user, **_promo_fields(data))
    except ServiceError as refused:
        raise _at_api_fields(refused, {}) from refused
    return Status(201, get_object_or_404(_promos(), pk=promo.pk))


@router.patch(
    "/promo-codes/{promo_id}",
    response={200: PromoOut, **problems(400, 403, 404, 422)},
    summary="Change a promo code",
)
def promo_update(request: HttpRequest, promo_id: Id, payload: PromoPatch):
    """Change some fields of a promo code; null clears a date or the use limit."""
    _require(request)
    promo = get_object_or_404(PromoCode, pk=promo_id)
    changes = payload.dict(exclude_unset=True)
    for field in list(changes):
        if changes[field] is None and field not in _NULLABLE_PROMO:
            changes.pop(field)
    try:
        services.promo_save(by=request.user, promo=promo, **_promo_fields(changes))
    except ServiceError as refused:
        raise _at_api_fields(refused, {}) from refused
    return get_object_or_404(_promos(), pk=promo.pk)


# --- tax rules -----------------------------------------------------------------------


class TaxRuleOut(Schema):
    """A tax rate for a country or one region of it."""

    id: int
    name: str
    country: str
    region: str
    rate: str

    @staticmethod
    def resolve_rate(rule) -> str:
        return f"{rule.rate.normalize():f}"


class TaxRuleIn(Schema):
    """A new tax rule; an empty region means the whole country."""

    name: Text = Field(min_length=1, max_length=100)
    country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
    region: Text = Field("", max_length=100)
    rate: Annotated[
        str,
        StringConstraints(pattern=r"^\d{1,3}(\.\d{1,3})?$"),
        Field(description='a percentage as a decimal string, e.g. "20"', examples=["20"]),
    ]


@router.get(
    "/tax-rules", response={200: list[TaxRuleOut], **problems(422)}, summary="List tax rules"
)
@paginate(Page)
def tax_rule_list(request: HttpRequest):
    """Every tax rule, by country and region."""
    return TaxRule.objects.order_by("country", "region")


@router.post(
    "/tax-rules", response={201: TaxRuleOut, **problems(400, 403, 422)}, summary="Create a tax rule"
)
def tax_rule_create(request: HttpRequest, payload: TaxRuleIn):
    """Add a tax rule; one per country and region."""
    _require(request)
    data = payload.dict()
    data["rate"] = Decimal(data["rate"])
    return Status(201, services.tax_rule_save(by=request.user, **data))
