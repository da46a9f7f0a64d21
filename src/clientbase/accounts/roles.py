"""The roles a new installation starts with; an administrator edits them afterwards."""

from django.utils.translation import gettext_noop

from clientbase.accounts.permissions import ACTIONS
from clientbase.core.visibility import Scope

_CLIENT_WORK = ["clients.add", "clients.change", "clients.add_note"]
_BILLING_WORK = ["billing.sell", "billing.invoice", "billing.payment", "billing.refund"]
_SALES_ALL = [
    "sales.work",
    "sales.approve",
    "sales.kpi",
    "sales.settings",
    "marketing.templates",
]
_SUPPORT_ALL = [
    "support.work",
    "support.merge",
    "support.kb",
    "support.settings",
    "support.surveys",
    "support.ingest",
]

DEFAULT_ROLES: list[dict] = [
    {
        "slug": "administrator",
        "name": gettext_noop("Administrator"),
        "scope": Scope.ALL,
        "permissions": "*",
    },
    {
        "slug": "director",
        "name": gettext_noop("Director"),
        "scope": Scope.ALL,
        "permissions": [
            *_CLIENT_WORK,
            "clients.change_status",
            "clients.export",
            "clients.delete",
            "clients.merge",
            "clients.view_secrets",
            "core.view_audit",
            "core.view_automation",
            "catalog.manage",
            *_BILLING_WORK,
            *_SUPPORT_ALL,
            *_SALES_ALL,
        ],
    },
    {
        "slug": "manager",
        "name": gettext_noop("Manager"),
        "scope": Scope.UNIT,
        "permissions": [
            *_CLIENT_WORK,
            "clients.change_status",
            "clients.export",
            "core.view_audit",
            "billing.sell",
            "support.work",
            "support.surveys",
            "sales.work",
            "sales.approve",
            "sales.kpi",
        ],
    },
    {
        "slug": "sales",
        "name": gettext_noop("Sales"),
        "scope": Scope.OWN,
        "permissions": [*_CLIENT_WORK, "billing.sell", "support.work", "sales.work"],
    },
    {
        "slug": "billing",
        "name": gettext_noop("Billing"),
        "scope": Scope.ALL,
        "permissions": [
            *_CLIENT_WORK,
            "clients.change_status",
            "clients.export",
            "catalog.manage",
            *_BILLING_WORK,
            "support.work",
        ],
    },
    {
        "slug": "support",
        "name": gettext_noop("Support"),
        "scope": Scope.ALL,
        "permissions": [
            "clients.add_note",
            "support.work",
            "support.merge",
            "support.kb",
            "support.surveys",
        ],
    },
    {"slug": "read-only", "name": gettext_noop("Read-only"), "scope": Scope.ALL, "permissions": []},
]


def permissions_for(spec: dict) -> list[str]:
    """The action codes a default role allows ("*": all that are registered)."""
    if spec["permissions"] == "*":
        return sorted(ACTIONS)
    return sorted(spec["permissions"])


def ensure_default_roles(role_model) -> None:
    """Create the default roles that are missing; leave edited ones alone."""
    for spec in DEFAULT_ROLES:
        role_model.objects.get_or_create(
            slug=spec["slug"],
            defaults={
                "name": spec["name"],
                "scope": spec["scope"],
                "permissions": permissions_for(spec),
            },
        )


DEFAULT_ROLE_NAMES = {spec["slug"]: spec["name"] for spec in DEFAULT_ROLES}
