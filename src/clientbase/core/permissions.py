"""Guards for views: a missing permission is a themed 403 page."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied


def require_action(code: str):
    """Let a view run only for users whose role allows the action."""

    def decorate(view):
        @login_required
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not request.user.has_perm(code):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return guarded

    return decorate
