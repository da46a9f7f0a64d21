"""Sign-in, second step, profile, tokens and the staff settings pages."""

import segno
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_email.models import EmailDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from clientbase.accounts import services
from clientbase.accounts.forms import (
    CodeForm,
    LanguageForm,
    OrgUnitForm,
    RoleForm,
    SignInForm,
    StyledPasswordChangeForm,
    StyledSetPasswordForm,
    TokenForm,
    UserForm,
)
from clientbase.accounts.middleware import SESSION_NEEDS_SECOND_STEP
from clientbase.accounts.models import ApiToken, OrgUnit, Role, User
from clientbase.core.errors import ServiceError
from clientbase.core.forms import add_service_errors
from clientbase.core.permissions import require_action

NEW_RECOVERY_CODES = "clientbase_new_recovery_codes"


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def _language_cookie(response: HttpResponse, language: str) -> HttpResponse:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        secure=settings.HTTPS_ONLY,
    )
    return response


class SignInView(auth_views.LoginView):
    """Password first; the middleware then asks for the second step when one is needed."""

    form_class = SignInForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        auth_login(self.request, user)  # rotates the session id
        self.request.session[SESSION_NEEDS_SECOND_STEP] = user_has_device(user, confirmed=True)
        response = redirect(self.get_success_url())
        return _language_cookie(response, user.language)


def lockout_response(request, response=None, credentials=None):
    """The page a throttled sign-in gets: what happened and what to do, with status 429."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return TemplateResponse(
        request,
        "accounts/locked_out.html",
        {"minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    ).render()


class SignOutView(auth_views.LogoutView):
    """Sign out by POST; the session is flushed."""


@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The second step: a code from the app, an emailed code, or a recovery code."""
    if request.user.is_verified():
        return redirect(_safe_next(request, reverse(settings.LOGIN_REDIRECT_URL)))
    email_device = EmailDevice.objects.filter(user=request.user, confirmed=True).first()
    form = CodeForm(request.POST or None)
    if request.method == "POST" and "send_email" in request.POST and email_device:
        email_device.generate_challenge()
        messages.info(request, _("We sent a code to %(email)s.") % {"email": request.user.email})
        form = CodeForm()
    elif request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["code"].replace(" ", ""))
        if device is not None:
            otp_login(request, device)
            return redirect(_safe_next(request, reverse(settings.LOGIN_REDIRECT_URL)))
        form.add_error("code", _("That code is not right. Try again, or use a recovery code."))
    return render(
        request,
        "accounts/two_factor_verify.html",
        {"form": form, "email_device": email_device, "next": request.GET.get("next", "")},
    )


@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Choose and confirm a second step: an authenticator app or codes by email."""
    method = request.GET.get("method", "totp")
    form = CodeForm(request.POST or None)
    context = {
        "method": method,
        "form": form,
        "required": bool(request.user.role and request.user.role.require_two_factor),
        "has_device": user_has_device(request.user, confirmed=True),
    }
    if method == "email":
        if request.method == "POST" and "send" in request.POST:
            try:
                services.email_device_start(user=request.user)
                messages.info(
                    request, _("We sent a code to %(email)s.") % {"email": request.user.email}
                )
            except ServiceError as refused:
                messages.error(request, " ".join(refused.messages))
            return redirect(reverse("accounts:two_factor_setup") + "?method=email")
        if request.method == "POST" and form.is_valid():
            try:
                codes = services.email_device_confirm(
                    user=request.user, code=form.cleaned_data["code"]
                )
            except ServiceError as refused:
                add_service_errors(form, refused)
            else:
                return _second_step_enabled(request, EmailDevice, codes)
        return render(request, "accounts/two_factor_setup.html", context)

    device_id = request.session.get("totp_setup_device")
    device = TOTPDevice.objects.filter(pk=device_id, user=request.user, confirmed=False).first()
    if device is None:
        device = services.totp_device_start(user=request.user)
        request.session["totp_setup_device"] = device.pk
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.totp_device_confirm(
                user=request.user, device=device, code=form.cleaned_data["code"]
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            request.session.pop("totp_setup_device", None)
            return _second_step_enabled(request, TOTPDevice, codes)
    context.update(
        device=device,
        qr_svg=segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2),
        secret=_base32_secret(device),
    )
    return render(request, "accounts/two_factor_setup.html", context)


def _base32_secret(device: TOTPDevice) -> str:
    import base64

    raw = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def _second_step_enabled(request, device_model, codes: list[str]) -> HttpResponse:
    device = device_model.objects.filter(user=request.user, confirmed=True).first()
    otp_login(request, device)
    request.session[SESSION_NEEDS_SECOND_STEP] = True
    messages.success(request, _("Two-step login is on."))
    if codes:
        request.session[NEW_RECOVERY_CODES] = codes
        return redirect("accounts:recovery_codes")
    return redirect("accounts:profile")


@login_required
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """Show freshly made recovery codes once; a POST makes a new set."""
    if request.method == "POST":
        request.session[NEW_RECOVERY_CODES] = services.recovery_codes_regenerate(user=request.user)
        return redirect("accounts:recovery_codes")
    codes = request.session.pop(NEW_RECOVERY_CODES, None)
    return render(request, "accounts/recovery_codes.html", {"codes": codes})


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """The user's own page: language, password, two-step login and API tokens."""
    new_secret = request.session.pop("clientbase_new_token", None)
    return render(
        request,
        "accounts/profile.html",
        {
            "language_form": LanguageForm(initial={"language": request.user.language}),
            "token_form": TokenForm(),
            "tokens": request.user.api_tokens.all(),
            "new_secret": new_secret,
            "devices": {
                "totp": TOTPDevice.objects.filter(user=request.user, confirmed=True).exists(),
                "email": EmailDevice.objects.filter(user=request.user, confirmed=True).exists(),
            },
        },
    )


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch the interface language, and remember it for a signed-in user."""
    form = LanguageForm(request.POST)
    target = _safe_next(request, reverse(settings.LOGIN_REDIRECT_URL))
    if not form.is_valid():
        return redirect(target)
    language = form.cleaned_data["language"]
    if request.user.is_authenticated:
        services.user_set_language(user=request.user, language=language)
    return _language_cookie(redirect(target), language)


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    """Make a token; its secret is shown on the next page only."""
    form = TokenForm(request.POST)
    if form.is_valid():
        issued = services.token_create(
            user=request.user, name=form.cleaned_data["name"], by=request.user
        )
        request.session["clientbase_new_token"] = issued.secret
    else:
        messages.error(request, _("Give the token a name."))
    return redirect("accounts:profile")


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the user's own tokens."""
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.token_revoke(token=token, by=request.user)
    messages.success(request, _("Token %(name)s revoked.") % {"name": token.name})
    return redirect("accounts:profile")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change one's own password; recorded in the audit log and the user's history."""

    template_name = "accounts/password_change.html"
    form_class = StyledPasswordChangeForm
    success_url = reverse_lazy("accounts:profile")

    def form_valid(self, form):
        services.user_set_password(
            user=self.request.user,
            password=form.cleaned_data["new_password1"],
            by=self.request.user,
        )
        self.request.user.refresh_from_db()
        from django.contrib.auth import update_session_auth_hash

        update_session_auth_hash(self.request, self.request.user)
        messages.success(self.request, _("Your password was changed."))
        return redirect(self.success_url)


# --- settings: users, roles, org units, locked sign-ins ---------------------------------


@require_action("accounts.manage_users")
def user_list(request: HttpRequest) -> HttpResponse:
    """Every member of staff with unit and role."""
    users = User.objects.select_related("org_unit", "role").order_by("username")
    return render(request, "accounts/user_list.html", {"users": users})


@require_action("accounts.manage_users")
def user_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Add a user, or change one."""
    user = get_object_or_404(User, pk=pk) if pk else None
    form = UserForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k not in ("username", "password")}
        try:
            if user is None:
                user = services.user_create(
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password"],
                    by=request.user,
                    **data,
                )
            else:
                services.user_update(user=user, by=request.user, **data)
                if form.cleaned_data["password"]:
                    services.user_set_password(
                        user=user, password=form.cleaned_data["password"], by=request.user
                    )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("User %(name)s saved.") % {"name": user.username})
            return redirect("accounts:user_list")
    return render(request, "accounts/user_form.html", {"form": form, "subject": user})


@require_action("accounts.manage_users")
@require_POST
def user_two_factor_reset(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a user's second-step devices, e.g. after a lost phone."""
    user = get_object_or_404(User, pk=pk)
    services.two_factor_disable(user=user, by=request.user)
    messages.success(request, _("Two-step login of %(name)s was reset.") % {"name": user.username})
    return redirect("accounts:user_edit", pk=user.pk)


@require_action("accounts.manage_roles")
def role_list(request: HttpRequest) -> HttpResponse:
    """Roles with their reach and how many people hold them."""
    roles = Role.objects.annotate(holders=Count("users")).order_by("name")
    return render(request, "accounts/role_list.html", {"roles": roles})


@require_action("accounts.manage_roles")
def role_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Add a role, or change what one allows."""
    role = get_object_or_404(Role, pk=pk) if pk else None
    form = RoleForm(request.POST or None, instance=role)
    if request.method == "POST" and form.is_valid():
        try:
            role = services.role_save(
                role=role,
                by=request.user,
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                scope=form.cleaned_data["scope"],
                permissions=form.cleaned_data["permissions"],
                require_two_factor=form.cleaned_data["require_two_factor"],
            )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Role %(name)s saved.") % {"name": role.name})
            return redirect("accounts:role_list")
    return render(request, "accounts/role_form.html", {"form": form, "subject": role})


@require_action("accounts.manage_org")
def org_unit_list(request: HttpRequest) -> HttpResponse:
    """The organisation as a tree, with the number of people in each unit."""
    units = OrgUnit.objects.annotate(people=Count("members")).order_by("path")
    return render(request, "accounts/org_unit_list.html", {"units": units})


@require_action("accounts.manage_org")
def org_unit_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Add a unit, or rename or move one."""
    unit = get_object_or_404(OrgUnit, pk=pk) if pk else None
    form = OrgUnitForm(request.POST or None, instance=unit)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if unit is None:
                unit = services.org_unit_create(
                    name=data["name"], kind=data["kind"], parent=data["parent"], by=request.user
                )
            else:
                unit = services.org_unit_update(
                    unit=unit, name=data["name"], parent=data["parent"], by=request.user
                )
        except ServiceError as refused:
            add_service_errors(form, refused)
        else:
            messages.success(request, _("Unit %(name)s saved.") % {"name": unit.name})
            return redirect("accounts:org_unit_list")
    return render(request, "accounts/org_unit_form.html", {"form": form, "subject": unit})


@require_action("accounts.unlock_logins")
def lockout_list(request: HttpRequest) -> HttpResponse:
    """Sign-ins with failures, locked ones first; an administrator can lift a lock."""
    attempts = AccessAttempt.objects.order_by("-failures_since_start", "-attempt_time")
    return render(
        request,
        "accounts/lockout_list.html",
        {"attempts": attempts, "limit": settings.AXES_FAILURE_LIMIT},
    )


@require_action("accounts.unlock_logins")
@require_POST
def lockout_unlock(request: HttpRequest, pk: int) -> HttpResponse:
    """Lift one lock now."""
    attempt = get_object_or_404(AccessAttempt, pk=pk)
    services.login_unlock(attempt=attempt, by=request.user)
    messages.success(
        request,
        _("Sign-in unlocked for %(who)s.") % {"who": attempt.username or attempt.ip_address},
    )
    return redirect("accounts:lockout_list")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Set a new password from a reset link; never signs in, so the second step still holds."""

    template_name = "accounts/password_reset_confirm.html"
    form_class = StyledSetPasswordForm
    success_url = reverse_lazy("accounts:password_reset_complete")
    post_reset_login = False

    def form_valid(self, form):
        services.user_set_password(
            user=form.user, password=form.cleaned_data["new_password1"], by=form.user
        )
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return redirect(self.success_url)
