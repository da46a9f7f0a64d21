"""A signed-in session is usable only after the second step, when the user needs one."""

from django.shortcuts import redirect
from django.urls import reverse
from django_otp import user_has_device

from clientbase.core.api_base import problem_response

SESSION_NEEDS_SECOND_STEP = "clientbase_needs_second_step"
OPEN_PREFIXES = ("/static/", "/healthz", "/accounts/logout", "/accounts/two-factor/", "/i18n/")


def needs_second_step(user) -> bool:
    """Whether this user must pass a second step: they set one up, or their role demands it."""
    role = user.role
    return bool(role and role.require_two_factor) or user_has_device(user, confirmed=True)


class RequireTwoFactorMiddleware:
    """Send a signed-in but unverified user to the second step before anything else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not user.is_verified()
            and not request.path.startswith(OPEN_PREFIXES)
            and self._must_verify(request, user)
        ):
            if request.path.startswith("/api/"):
                return problem_response(
                    401, "Two-step login required", "Finish signing in with your second step first."
                )
            if user_has_device(user, confirmed=True):
                return redirect(reverse("accounts:two_factor_verify") + f"?next={request.path}")
            return redirect("accounts:two_factor_setup")
        return self.get_response(request)

    @staticmethod
    def _must_verify(request, user) -> bool:
        # A device set up in this very session is known: it is set at login and when the user
        # adds one; the role's rule is read live so turning it on applies at the next click.
        if user.role_id and user.role.require_two_factor:
            return True
        return bool(request.session.get(SESSION_NEEDS_SECOND_STEP))
