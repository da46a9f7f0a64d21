from django.contrib import admin

from clientbase.catalog.models import Price, Product, ProductGroup, PromoCode, TaxRule
from clientbase.core.admin_base import ReadOnlyAdmin


@admin.register(ProductGroup)
class ProductGroupAdmin(ReadOnlyAdmin):
    """Product groups, as stored (edited in the Catalogue pages)."""

    list_display = ["name", "position"]


@admin.register(Product)
class ProductAdmin(ReadOnlyAdmin):
    """Products, as stored (edited in the Catalogue pages)."""

    list_display = ["code", "name", "kind", "group", "active"]
    list_filter = ["kind", "active", "group"]
    search_fields = ["code", "name"]


@admin.register(Price)
class PriceAdmin(ReadOnlyAdmin):
    """Prices in minor units, as stored."""

    list_display = ["product", "currency", "cycle", "amount_minor", "setup_fee_minor"]
    list_filter = ["currency", "cycle"]


@admin.register(PromoCode)
class PromoCodeAdmin(ReadOnlyAdmin):
    """Promo codes, as stored."""

    list_display = ["code", "kind", "percent", "amount_minor", "currency", "uses", "expires_on"]
    search_fields = ["code"]


@admin.register(TaxRule)
class TaxRuleAdmin(ReadOnlyAdmin):
    """Tax rules, as stored."""

    list_display = ["country", "region", "name", "rate"]
