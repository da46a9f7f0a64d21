from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    """The billing module."""

    name = "clientbase.billing"
    label = "billing"
    verbose_name = _("Billing")

    def ready(self) -> None:
        from clientbase.billing import shell

        shell.register()
