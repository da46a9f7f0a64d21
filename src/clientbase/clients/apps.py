from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClientsConfig(AppConfig):
    """The clients module."""

    name = "clientbase.clients"
    label = "clients"
    verbose_name = _("Clients")

    def ready(self) -> None:
        from clientbase.clients import shell

        shell.register()
