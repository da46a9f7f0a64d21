"""Catalogue pages: everyone signed in reads the products; catalog.manage edits."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clientbase.catalog import services
from clientbase.catalog.forms import (
    OptionForm,
    OptionPriceForm,
    PriceForm,
    ProductForm,
    ProductGroupForm,
    PromoCodeForm,
    TaxRuleForm,
)
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
from clientbase.catalog.shell import MANAGE
from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.money import Money
from clientbase.core.permissions import require_action

_CYCLE_ORDER = {value: index for index, value in enumerate(Cycle.values)}


def _sorted_prices(prices) -> list:
    """Prices by currency then cycle length, each with its amounts as Money for display."""
    rows = sorted(prices, key=lambda p: (p.currency, _CYCLE_ORDER.get(p.cycle, 99)))
    for row in rows:
        if isinstance(row, Price):
            row.setup_fee = Money(row.setup_fee_minor, row.currency)
        else:
            row.unit = Money(row.unit_minor, row.currency)
    return rows


def _form_page(request, form, *, title: str, back: str, heading_note: str = "") -> HttpResponse:
    return render(
        request,
        "catalog/form.html",
        {"form": form, "title": title, "back": back, "heading_note": heading_note},
    )


# --- products ------------------------------------------------------------------------


@login_required
def product_list(request: HttpRequest) -> HttpResponse:
    """Every product by group, with its prices."""
    products = (
        Product.objects.select_related("group")
        .prefetch_related("prices", "addon_for")
        .order_by("group__position", "group__name", "name")
    )
    if request.GET.get("all") != "1":
        products = products.filter(active=True)
    sections: list[tuple[ProductGroup | None, list[Product]]] = []
    for product in products:
        product.sorted_prices = _sorted_prices(product.prices.all())
        if not sections or sections[-1][0] != product.group:
            sections.append((product.group, []))
        sections[-1][1].append(product)
    # Products without a group go last.
    sections.sort(key=lambda s: s[0] is None)
    return render(
        request,
        "catalog/product_list.html",
        {
            "sections": sections,
            "show_all": request.GET.get("all") == "1",
            "may_manage": request.user.has_perm(MANAGE),
        },
    )


def _detail(request, product: Product, status: int = 200, **forms) -> HttpResponse:
    options = list(
        product.options.prefetch_related(
            Prefetch("prices", queryset=OptionPrice.objects.order_by("currency", "cycle"))
        )
    )
    for option in options:
        option.sorted_prices = _sorted_prices(option.prices.all())
    may_manage = request.user.has_perm(MANAGE)
    context = {
        "product": product,
        "prices": _sorted_prices(product.prices.all()),
        "options": options,
        "addons": product.addons.filter(active=True).order_by("name"),
        "addon_for": product.addon_for.order_by("name"),
        "may_manage": may_manage,
        "cost": Money(product.cost_minor, product.cost_currency) if product.cost_currency else None,
        "price_form": forms.get("price_form") or PriceForm(),
        "option_price_form": forms.get("option_price_form") or OptionPriceForm(),
        "option_price_for": forms.get("option_price_for"),
    }
    return render(request, "catalog/product_detail.html", context, status=status)


@login_required
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A product with its prices, options and addons."""
    return _detail(request, get_object_or_404(Product.objects.select_related("group"), pk=pk))


@require_action(MANAGE)
def product_add(request: HttpRequest) -> HttpResponse:
    """Add a product."""
    form = ProductForm.for_product(None, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            product = services.product_save(by=request.user, **form.product_data())
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Product %(code)s added.") % {"code": product.code})
            return redirect("catalog:product", pk=product.pk)
    return _form_page(request, form, title=_("New product"), back=reverse("catalog:products"))


@require_action(MANAGE)
def product_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a product's own fields."""
    product = get_object_or_404(Product, pk=pk)
    form = ProductForm.for_product(product, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.product_save(by=request.user, product=product, **form.product_data())
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Product %(code)s saved.") % {"code": product.code})
            return redirect("catalog:product", pk=product.pk)
    return _form_page(
        request, form, title=str(product), back=reverse("catalog:product", args=[product.pk])
    )


@require_action(MANAGE)
@require_POST
def price_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Set a price of a product (a new currency and cycle, or a new amount for one)."""
    product = get_object_or_404(Product, pk=pk)
    form = PriceForm(request.POST)
    if form.is_valid():
        try:
            services.price_set(by=request.user, product=product, **form.price_data())
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Price saved."))
            return redirect(reverse("catalog:product", args=[product.pk]) + "#prices")
    return _detail(request, product, status=422, price_form=form)


@require_action(MANAGE)
@require_POST
def price_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop offering a product in one currency and cycle."""
    price = get_object_or_404(Price, pk=pk)
    services.price_remove(by=request.user, price=price)
    messages.success(request, _("Price removed."))
    return redirect(reverse("catalog:product", args=[price.product_id]) + "#prices")


# --- options -------------------------------------------------------------------------


def _option_form_page(request, product: Product, option: ConfigOption | None) -> HttpResponse:
    initial = {}
    if option is not None:
        initial = {
            f: getattr(option, f)
            for f in ("code", "name", "included_units", "min_units", "max_units")
        }
    form = OptionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.option_save(
                by=request.user, product=product, option=option, **form.cleaned_data
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Option saved."))
            return redirect(reverse("catalog:product", args=[product.pk]) + "#options")
    return _form_page(
        request,
        form,
        title=option.name if option else _("New option"),
        back=reverse("catalog:product", args=[product.pk]),
        heading_note=str(product),
    )


@require_action(MANAGE)
def option_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a configurable option to a product."""
    return _option_form_page(request, get_object_or_404(Product, pk=pk), None)


@require_action(MANAGE)
def option_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a configurable option."""
    option = get_object_or_404(ConfigOption.objects.select_related("product"), pk=pk)
    return _option_form_page(request, option.product, option)


@require_action(MANAGE)
@require_POST
def option_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove an option and its unit prices."""
    option = get_object_or_404(ConfigOption, pk=pk)
    services.option_remove(by=request.user, option=option)
    messages.success(request, _("Option removed."))
    return redirect(reverse("catalog:product", args=[option.product_id]) + "#options")


@require_action(MANAGE)
@require_POST
def option_price_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Set what one unit of an option costs per cycle in a currency."""
    option = get_object_or_404(ConfigOption.objects.select_related("product"), pk=pk)
    form = OptionPriceForm(request.POST)
    if form.is_valid():
        try:
            services.option_price_set(by=request.user, option=option, **form.price_data())
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Unit price saved."))
            return redirect(reverse("catalog:product", args=[option.product_id]) + "#options")
    return _detail(
        request, option.product, status=422, option_price_form=form, option_price_for=option.pk
    )


@require_action(MANAGE)
@require_POST
def option_price_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop pricing an option in one currency and cycle."""
    price = get_object_or_404(OptionPrice.objects.select_related("option"), pk=pk)
    services.option_price_remove(by=request.user, price=price)
    messages.success(request, _("Unit price removed."))
    return redirect(reverse("catalog:product", args=[price.option.product_id]) + "#options")


# --- groups --------------------------------------------------------------------------


@require_action(MANAGE)
def group_list(request: HttpRequest) -> HttpResponse:
    """The product groups in their order."""
    from django.db.models import Count

    groups = ProductGroup.objects.annotate(product_count=Count("products"))
    return render(request, "catalog/group_list.html", {"groups": groups})


@require_action(MANAGE)
def group_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Add or change a product group."""
    group = get_object_or_404(ProductGroup, pk=pk) if pk else None
    initial = (
        {"name": group.name, "description": group.description, "position": group.position}
        if group
        else {}
    )
    form = ProductGroupForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.product_group_save(by=request.user, group=group, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Group saved."))
            return redirect("catalog:groups")
    return _form_page(
        request,
        form,
        title=group.name if group else _("New product group"),
        back=reverse("catalog:groups"),
    )


# --- promo codes ---------------------------------------------------------------------


@require_action(MANAGE)
def promo_list(request: HttpRequest) -> HttpResponse:
    """Every promo code with its value, validity and uses."""
    promos = list(PromoCode.objects.prefetch_related("products").order_by("code"))
    for promo in promos:
        promo.money = Money(promo.amount_minor, promo.currency) if promo.currency else None
    return render(request, "catalog/promo_list.html", {"promos": promos})


@require_action(MANAGE)
def promo_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Add or change a promo code."""
    promo = get_object_or_404(PromoCode, pk=pk) if pk else None
    form = PromoCodeForm.for_promo(promo, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.promo_save(by=request.user, promo=promo, **form.promo_data())
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Promo code %(code)s saved.") % {"code": saved.code})
            return redirect("catalog:promos")
    return _form_page(
        request,
        form,
        title=promo.code if promo else _("New promo code"),
        back=reverse("catalog:promos"),
    )


# --- tax rules -----------------------------------------------------------------------


@require_action(MANAGE)
def tax_rule_list(request: HttpRequest) -> HttpResponse:
    """Every tax rule by country and region."""
    return render(
        request, "catalog/tax_rule_list.html", {"rules": TaxRule.objects.order_by("country")}
    )


@require_action(MANAGE)
def tax_rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Add or change a tax rule."""
    rule = get_object_or_404(TaxRule, pk=pk) if pk else None
    initial = (
        {"name": rule.name, "country": rule.country, "region": rule.region, "rate": rule.rate}
        if rule
        else {}
    )
    form = TaxRuleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.tax_rule_save(by=request.user, rule=rule, **form.cleaned_data)
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Tax rule saved."))
            return redirect("catalog:tax_rules")
    return _form_page(
        request,
        form,
        title=rule.name if rule else _("New tax rule"),
        back=reverse("catalog:tax_rules"),
    )
