from django.contrib import admin

from clientbase.accounts.models import ApiToken, OrgUnit, Role, User
from clientbase.core.admin_base import ReadOnlyAdmin


@admin.register(User)
class UserAdmin(ReadOnlyAdmin):
    """Staff users (edited under Settings → Users)."""

    list_display = ["username", "email", "role", "org_unit", "is_active", "last_login"]
    list_filter = ["role", "is_active"]
    search_fields = ["username", "email", "first_name", "last_name"]
    exclude = ["password"]


@admin.register(Role)
class RoleAdmin(ReadOnlyAdmin):
    """Roles (edited under Settings → Roles)."""

    list_display = ["name", "slug", "scope", "require_two_factor"]


@admin.register(OrgUnit)
class OrgUnitAdmin(ReadOnlyAdmin):
    """The organisation tree (edited under Settings → Organisation)."""

    list_display = ["name", "kind", "parent", "path"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """API tokens: their names and use, never their secrets."""

    list_display = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    exclude = ["digest"]
