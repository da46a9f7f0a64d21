"""Permission checks that read the user's role."""

from django.contrib.auth.backends import ModelBackend


class RoleBackend(ModelBackend):
    """Password sign-in as Django does it; permissions from the role's allowed actions."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_role_perm_cache"):
            role = user_obj.role
            user_obj._role_perm_cache = set(role.permissions) if role else set()
        return super().get_all_permissions(user_obj, obj) | user_obj._role_perm_cache
