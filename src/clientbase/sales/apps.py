from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SalesConfig(AppConfig):
    """The sales module."""

    name = "clientbase.sales"
    label = "sales"
    verbose_name = _("Sales")

    def ready(self) -> None:
        from clientbase.sales import shell

        shell.register()
