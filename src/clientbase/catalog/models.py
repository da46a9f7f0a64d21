"""Data of the catalogue: products, their prices, options, addons, promo codes and tax rules."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clientbase.core.money import Money


class Cycle(models.TextChoices):
    """How often a product is billed."""

    FREE = "free", _("Free")
    ONE_TIME = "one_time", _("One-time")
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")
    SEMI_ANNUAL = "semi_annual", _("Semi-annual")
    ANNUAL = "annual", _("Annual")
    BIENNIAL = "biennial", _("Biennial")


# Months a cycle lasts; free and one-time services do not renew.
CYCLE_MONTHS = {
    Cycle.MONTHLY: 1,
    Cycle.QUARTERLY: 3,
    Cycle.SEMI_ANNUAL: 6,
    Cycle.ANNUAL: 12,
    Cycle.BIENNIAL: 24,
}


class ProductGroup(models.Model):
    """A heading the catalogue is sorted under (hosting, licences, consulting…)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("product group")
        verbose_name_plural = _("product groups")

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """Something we sell: a service billed by cycle, or an addon to other products."""

    class Kind(models.TextChoices):
        PRODUCT = "product", _("Product")
        ADDON = "addon", _("Addon")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.PRODUCT)
    group = models.ForeignKey(
        ProductGroup,
        on_delete=models.PROTECT,
        related_name="products",
        null=True,
        blank=True,
        verbose_name=_("group"),
    )
    description = models.TextField(_("description"), blank=True)
    origin = models.CharField(_("origin"), max_length=100, blank=True)
    cost_minor = models.BigIntegerField(_("cost price"), default=0)
    cost_currency = models.CharField(_("cost currency"), max_length=3, blank=True)
    taxable = models.BooleanField(_("taxable"), default=True)
    # Whether the prices typed for this product already contain the tax.
    tax_inclusive = models.BooleanField(_("prices include tax"), default=False)
    active = models.BooleanField(_("on sale"), default=True)
    addon_for = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="addons", verbose_name=_("addon for")
    )

    class Meta:
        ordering = ["group__position", "name"]
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["product", "addon"]), name="product_kind")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Price(models.Model):
    """What one cycle of a product costs in one currency."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="prices")
    currency = models.CharField(_("currency"), max_length=3)
    cycle = models.CharField(_("billing cycle"), max_length=12, choices=Cycle.choices)
    amount_minor = models.BigIntegerField(_("price"), default=0)
    setup_fee_minor = models.BigIntegerField(_("setup fee"), default=0)

    class Meta:
        ordering = ["currency", "cycle"]
        verbose_name = _("price")
        verbose_name_plural = _("prices")
        constraints = [
            models.UniqueConstraint(
                fields=["product", "currency", "cycle"], name="one_price_per_currency_cycle"
            ),
            models.CheckConstraint(
                condition=Q(amount_minor__gte=0, setup_fee_minor__gte=0), name="price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.cycle} {self.amount}"

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


class ConfigOption(models.Model):
    """A configurable quantity of a product priced per unit, e.g. the number of users."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="options")
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=100)
    # Units the product's own price already covers; only units above are charged.
    included_units = models.PositiveIntegerField(_("units included"), default=0)
    min_units = models.PositiveIntegerField(_("minimum"), default=0)
    max_units = models.PositiveIntegerField(_("maximum"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("configurable option")
        verbose_name_plural = _("configurable options")
        constraints = [
            models.UniqueConstraint(fields=["product", "code"], name="one_option_code_per_product")
        ]

    def __str__(self) -> str:
        return self.name


class OptionPrice(models.Model):
    """What one unit of an option costs per cycle in one currency."""

    option = models.ForeignKey(ConfigOption, on_delete=models.CASCADE, related_name="prices")
    currency = models.CharField(_("currency"), max_length=3)
    cycle = models.CharField(_("billing cycle"), max_length=12, choices=Cycle.choices)
    unit_minor = models.BigIntegerField(_("price per unit"), default=0)

    class Meta:
        verbose_name = _("option price")
        verbose_name_plural = _("option prices")
        constraints = [
            models.UniqueConstraint(
                fields=["option", "currency", "cycle"], name="one_option_price_per_cycle"
            ),
            models.CheckConstraint(
                condition=Q(unit_minor__gte=0), name="option_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.option_id} {self.cycle} {self.unit_minor}"


class PromoCode(models.Model):
    """A discount a clerk or client types at order time."""

    class Kind(models.TextChoices):
        PERCENT = "percent", _("Percent")
        FIXED = "fixed", _("Fixed amount")

    code = models.CharField(_("code"), max_length=40, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    # A percentage (5.00) for percent codes; for fixed ones, amount_minor in `currency`.
    percent = models.DecimalField(_("percent"), max_digits=5, decimal_places=2, default=Decimal(0))
    amount_minor = models.BigIntegerField(_("amount"), default=0)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    # A recurring code discounts every renewal too; otherwise only the first invoice.
    recurring = models.BooleanField(_("recurring"), default=False)
    products = models.ManyToManyField(
        Product, blank=True, related_name="promo_codes", verbose_name=_("products")
    )
    starts_on = models.DateField(_("valid from"), null=True, blank=True)
    expires_on = models.DateField(_("expires on"), null=True, blank=True)
    max_uses = models.PositiveIntegerField(_("use limit"), null=True, blank=True)
    uses = models.PositiveIntegerField(_("times used"), default=0)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("promo code")
        verbose_name_plural = _("promo codes")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["percent", "fixed"]), name="promo_kind"),
            models.CheckConstraint(
                condition=Q(percent__gte=0, percent__lte=100, amount_minor__gte=0),
                name="promo_value_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class TaxRule(models.Model):
    """A tax rate for clients in a country, or in one region of it."""

    name = models.CharField(_("name"), max_length=100)
    country = models.CharField(_("country"), max_length=2)
    # Empty: the whole country; a region's own rule wins over the country's.
    region = models.CharField(_("region"), max_length=100, blank=True)
    rate = models.DecimalField(_("rate, %"), max_digits=6, decimal_places=3)

    class Meta:
        ordering = ["country", "region"]
        verbose_name = _("tax rule")
        verbose_name_plural = _("tax rules")
        constraints = [
            models.UniqueConstraint(fields=["country", "region"], name="one_tax_rule_per_region"),
            models.CheckConstraint(
                condition=Q(rate__gte=0, rate__lte=100), name="tax_rate_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.rate} %"
