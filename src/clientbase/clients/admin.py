from django.contrib import admin

from clientbase.clients.models import Client
from clientbase.core.admin_base import ReadOnlyAdmin


@admin.register(Client)
class ClientAdmin(ReadOnlyAdmin):
    """Clients, as stored (edited in the Clients pages)."""

    list_display = ["number", "name", "email", "kind", "status", "owner", "org_unit"]
    list_filter = ["kind", "status"]
    search_fields = ["number", "name", "email"]
