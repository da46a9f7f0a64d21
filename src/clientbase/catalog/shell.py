"""What the catalogue adds to the shell: its permission and menu entries."""

from django.utils.translation import gettext_lazy as _

from clientbase.accounts.permissions import register_action
from clientbase.core.registry import NavEntry, register_nav

CATALOGUE = _("Catalogue")
MANAGE = "catalog.manage"


def register() -> None:
    """Hook the catalogue into roles and the billing menu."""
    register_action(MANAGE, _("Edit the catalogue, promo codes and tax rules"), CATALOGUE)
    register_nav(NavEntry("billing", _("Products and prices"), "catalog:products"))
    register_nav(NavEntry("billing", _("Promo codes"), "catalog:promos", MANAGE))
    register_nav(NavEntry("billing", _("Tax rules"), "catalog:tax_rules", MANAGE))
