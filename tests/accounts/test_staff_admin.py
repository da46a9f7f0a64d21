"""Users, roles and the organisation tree, as an administrator manages them."""

import pytest

from clientbase.accounts.models import OrgUnit, Role, User
from clientbase.accounts.services import org_unit_update, role_save
from clientbase.core.errors import ServiceError
from clientbase.core.models import AuditEntry


def test_default_roles_exist_with_their_reach(db):
    scopes = dict(Role.objects.values_list("slug", "scope"))
    assert scopes == {
        "administrator": "all",
        "director": "all",
        "manager": "unit",
        "sales": "own",
        "billing": "all",
        "support": "all",
        "read-only": "all",
    }
    assert Role.objects.get(slug="read-only").permissions == []


def test_administrator_edits_a_role_and_it_applies(signed_in, admin_user, make_user):
    # given a sales user who may not export
    seller = make_user("seller")
    assert not seller.has_perm("clients.export")
    role = Role.objects.get(slug="sales")
    # when an administrator allows export for the role
    response = signed_in(admin_user).post(
        f"/accounts/settings/roles/{role.pk}/",
        {
            "name": "Sales",
            "slug": "sales",
            "scope": "own",
            "permissions": [
                "billing.sell",
                "clients.add",
                "clients.add_note",
                "clients.change",
                "clients.export",
                "sales.work",
                "support.work",
            ],
        },
    )
    assert response.status_code == 302
    # then the seller may, and the change is in the audit log
    seller = User.objects.get(pk=seller.pk)
    assert seller.has_perm("clients.export")
    entry = AuditEntry.objects.filter(object_type__model="role", object_id=str(role.pk)).latest(
        "id"
    )
    assert entry.changes["permissions"] == {
        "before": [
            "billing.sell",
            "clients.add",
            "clients.add_note",
            "clients.change",
            "sales.work",
            "support.work",
        ],
        "after": [
            "billing.sell",
            "clients.add",
            "clients.add_note",
            "clients.change",
            "clients.export",
            "sales.work",
            "support.work",
        ],
    }


def test_unknown_permission_is_refused(admin_user):
    role = Role.objects.get(slug="sales")
    with pytest.raises(ServiceError) as refused:
        role_save(
            role=role,
            name="Sales",
            slug="sales",
            scope="own",
            permissions=["billing.print_money"],
            require_two_factor=False,
            by=admin_user,
        )
    assert refused.value.message_dict == {"permissions": ["Unknown actions: billing.print_money"]}
    role.refresh_from_db()
    assert role.permissions == [
        "billing.sell",
        "clients.add",
        "clients.add_note",
        "clients.change",
        "sales.work",
        "support.work",
    ]


def test_settings_pages_need_their_permission(signed_in, make_user):
    client = signed_in(make_user("seller"))
    for url in [
        "/accounts/settings/users/",
        "/accounts/settings/roles/",
        "/accounts/settings/org/",
        "/accounts/settings/locked/",
        "/settings/audit/",
        "/settings/automation/",
    ]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"Your role does not allow this" in response.content


def test_settings_pages_render_for_an_administrator(signed_in, admin_user):
    client = signed_in(admin_user)
    for url in [
        "/accounts/settings/users/",
        "/accounts/settings/users/new/",
        "/accounts/settings/roles/",
        "/accounts/settings/roles/new/",
        "/accounts/settings/org/",
        "/accounts/settings/org/new/",
        "/accounts/settings/locked/",
        "/settings/audit/",
        "/settings/automation/",
        "/accounts/profile/",
    ]:
        assert client.get(url).status_code == 200, url


def test_administrator_adds_a_user_and_bad_password_is_refused(signed_in, admin_user, org):
    client = signed_in(admin_user)
    sales = Role.objects.get(slug="sales")
    data = {
        "username": "newbie",
        "first_name": "New",
        "last_name": "Bie",
        "email": "newbie@example.com",
        "phone": "",
        "language": "fr",
        "org_unit": org["team_a"].pk,
        "role": sales.pk,
        "is_active": "on",
    }
    response = client.post("/accounts/settings/users/new/", {**data, "password": "123"})
    assert response.status_code == 200
    assert b"This password is too short" in response.content
    assert not User.objects.filter(username="newbie").exists()
    response = client.post(
        "/accounts/settings/users/new/", {**data, "password": "a-good-long-secret-7"}
    )
    assert response.status_code == 302
    newbie = User.objects.get(username="newbie")
    assert (newbie.language, newbie.org_unit, newbie.role) == ("fr", org["team_a"], sales)
    assert newbie.check_password("a-good-long-secret-7")
    created = AuditEntry.objects.get(object_type__model="user", object_id=str(newbie.pk))
    assert created.action == "create"
    assert created.changes["password"] == {"before": None, "after": "••••••"}


def test_org_unit_move_rewrites_paths_below(org, admin_user):
    # given Team A under Paris under North
    south = OrgUnit.objects.create(
        name="South", kind="region", parent=org["company"], path=f"{org['company'].path}"
    )
    south.path = f"{org['company'].path}{south.pk}/"
    south.save(update_fields=["path"])
    # when Paris moves under South
    org_unit_update(unit=org["branch"], name="Paris", parent=south, by=admin_user)
    # then Paris and its teams live under South's path
    team_a = OrgUnit.objects.get(pk=org["team_a"].pk)
    assert team_a.path == f"{south.path}{org['branch'].pk}/{team_a.pk}/"
    assert team_a.depth == 3


def test_org_unit_cannot_move_under_itself(org, admin_user):
    with pytest.raises(ServiceError) as refused:
        org_unit_update(unit=org["region"], name="North", parent=org["team_a"], by=admin_user)
    assert refused.value.message_dict == {"parent": ["A unit cannot be moved under itself."]}
    assert OrgUnit.objects.get(pk=org["region"].pk).parent == org["company"]
