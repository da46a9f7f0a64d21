from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """The accounts module: staff users, roles, org units, two-step login, API tokens."""

    name = "clientbase.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from clientbase.core.registry import NavEntry, register_nav

        for label, url_name, permission in [
            (_("Users"), "accounts:user_list", "accounts.manage_users"),
            (_("Roles"), "accounts:role_list", "accounts.manage_roles"),
            (_("Organisation"), "accounts:org_unit_list", "accounts.manage_org"),
            (_("Locked sign-ins"), "accounts:lockout_list", "accounts.unlock_logins"),
        ]:
            register_nav(NavEntry("settings", label, url_name, permission))
