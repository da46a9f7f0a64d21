"""Permission checks that read the user's role."""

from django.contrib.auth.backends import ModelBackend


class RoleBackend(ModelBackend):
    """Password sign-in as Django does it; permissions from the role's allowed actions.

    The role is the one source of permissions: Django's per-user and per-group permission
    tables are not consulted, which also spares every request two queries.
    """

    def get_user_permissions(self, user_obj, obj=None):
        return set()

    def get_group_permissions(self, user_obj, obj=None):
        return set()

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_role_perm_cache"):
            role = user_obj.role
            user_obj._role_perm_cache = frozenset(role.permissions) if role else frozenset()
        return set(user_obj._role_perm_cache)
