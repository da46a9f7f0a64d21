from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SupportConfig(AppConfig):
    """The support module."""

    name = "clientbase.support"
    label = "support"
    verbose_name = _("Support")

    def ready(self) -> None:
        from clientbase.support import shell

        shell.register()
