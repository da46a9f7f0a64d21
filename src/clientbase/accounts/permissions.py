"""The actions a role can allow: each module declares its own, the role editor lists them."""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Action:
    """One thing a role may allow, e.g. `billing.refund`."""

    code: str
    label: Promise
    module: Promise


ACTIONS: dict[str, Action] = {}


def register_action(code: str, label: Promise, module: Promise) -> None:
    """Declare an action so roles can allow it and views can require it."""
    ACTIONS[code] = Action(code, label, module)


def actions_by_module() -> list[tuple[str, list[Action]]]:
    """The registered actions grouped by module, for the role editor."""
    groups: dict[str, list[Action]] = {}
    for action in ACTIONS.values():
        groups.setdefault(str(action.module), []).append(action)
    return sorted(groups.items())


SETTINGS = _("Settings")
CLIENTS = _("Clients")
for code, label, module in [
    ("accounts.manage_users", _("Add and change users"), SETTINGS),
    ("accounts.manage_roles", _("Edit roles and their permissions"), SETTINGS),
    ("accounts.manage_org", _("Edit the organisation tree"), SETTINGS),
    ("accounts.unlock_logins", _("Unlock locked sign-ins"), SETTINGS),
    ("core.view_audit", _("Read the audit log"), SETTINGS),
    ("core.view_automation", _("See automation runs"), SETTINGS),
    ("core.run_automation", _("Start the daily automation now"), SETTINGS),
    ("core.manage_custom_fields", _("Define custom fields"), SETTINGS),
    ("clients.add", _("Add clients"), CLIENTS),
    ("clients.add_note", _("Write notes and comments on clients"), CLIENTS),
    ("clients.change_status", _("Activate, inactivate and close accounts"), CLIENTS),
    ("clients.change", _("Change clients"), CLIENTS),
    ("clients.delete", _("Delete clients"), CLIENTS),
    ("clients.merge", _("Merge clients"), CLIENTS),
    ("clients.view_secrets", _("Read secret custom fields"), CLIENTS),
    ("clients.export", _("Export clients"), CLIENTS),
]:
    register_action(code, label, module)
