"""The demo organisation and its staff, created once and left alone afterwards."""

from dataclasses import dataclass

from django.db import transaction

from clientbase.accounts.models import OrgUnit, Role, User
from clientbase.accounts.services import org_unit_create, user_create

DEMO_PASSWORD = "clientbase-demo"

# (name, kind, parent name)
DEMO_UNITS = [
    ("Clientbase Demo", "company", None),
    ("North", "region", "Clientbase Demo"),
    ("South", "region", "Clientbase Demo"),
    ("Paris", "branch", "North"),
    ("Lyon", "branch", "South"),
    ("Paris Team A", "team", "Paris"),
    ("Paris Team B", "team", "Paris"),
    ("Lyon Team", "team", "Lyon"),
]

# (username, first, last, role slug, unit name, language)
DEMO_USERS = [
    ("admin", "Alex", "Admin", "administrator", "Clientbase Demo", "en"),
    ("director", "Dana", "Director", "director", "Clientbase Demo", "en"),
    ("manager.north", "Nadia", "Volkova", "manager", "North", "ru"),
    ("sales.paris", "Julien", "Moreau", "sales", "Paris Team A", "fr"),
    ("sales.paris.b", "Claire", "Lefèvre", "sales", "Paris Team B", "fr"),
    ("sales.lyon", "Minh", "Nguyễn", "sales", "Lyon Team", "vi"),
    ("billing", "Boris", "Ivanov", "billing", "Clientbase Demo", "ru"),
    ("support", "Sam", "Support", "support", "Clientbase Demo", "en"),
    ("viewer", "Vera", "Viewer", "read-only", "Clientbase Demo", "en"),
]


@dataclass(frozen=True)
class DemoOrg:
    """The demo units by name and the demo staff by username."""

    units: dict[str, OrgUnit]
    users: dict[str, User]


def ensure_demo_org() -> DemoOrg:
    """Create the demo units and staff that are missing (safe to run again)."""
    with transaction.atomic():
        units: dict[str, OrgUnit] = {}
        for name, kind, parent_name in DEMO_UNITS:
            parent = units.get(parent_name) if parent_name else None
            unit = OrgUnit.objects.filter(name=name, parent=parent).first()
            units[name] = unit or org_unit_create(name=name, kind=kind, parent=parent, by=None)
        users: dict[str, User] = {}
        for username, first, last, role_slug, unit_name, language in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = user_create(
                    username=username,
                    password=None,
                    by=None,
                    is_superuser=username == "admin",
                    first_name=first,
                    last_name=last,
                    email=f"{username}@demo.clientbase.local",
                    language=language,
                    org_unit=units[unit_name],
                    role=Role.objects.get(slug=role_slug),
                )
                # The demo password is short on purpose; the password rules apply to people.
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            users[username] = user
    return DemoOrg(units=units, users=users)
