from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    """The client portal module."""

    name = "clientbase.portal"
    label = "portal"
    verbose_name = _("Client portal")
