from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClientsConfig(AppConfig):
    """The clients module."""

    name = "clientbase.clients"
    label = "clients"
    verbose_name = _("Clients")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from clientbase.clients import search, shell

        shell.register()
        # Not business logic: SQLite rebuilds the clients table for many later migrations and
        # drops the search triggers with it, so every migrate puts the index back.
        post_migrate.connect(search.search_index_post_migrate, sender=self)
