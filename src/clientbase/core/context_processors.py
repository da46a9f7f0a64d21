"""Template context every page needs: the navigation the user may open."""

from clientbase.core.registry import navigation_for


def navigation(request):
    """The user's menu (empty before sign-in)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_sections": []}
    return {"nav_sections": navigation_for(user)}
