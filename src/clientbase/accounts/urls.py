from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from clientbase.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("two-factor/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("two-factor/setup/", views.two_factor_setup, name="two_factor_setup"),
    path("two-factor/recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path("profile/", views.profile, name="profile"),
    path("profile/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("profile/tokens/", views.token_create, name="token_create"),
    path("profile/tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            template_name="accounts/password_reset.html",
            email_template_name="accounts/password_reset_email.txt",
            subject_template_name="accounts/password_reset_subject.txt",
            success_url=reverse_lazy("accounts:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("settings/users/", views.user_list, name="user_list"),
    path("settings/users/new/", views.user_edit, name="user_add"),
    path("settings/users/<int:pk>/", views.user_edit, name="user_edit"),
    path(
        "settings/users/<int:pk>/two-factor-reset/",
        views.user_two_factor_reset,
        name="user_two_factor_reset",
    ),
    path("settings/roles/", views.role_list, name="role_list"),
    path("settings/roles/new/", views.role_edit, name="role_add"),
    path("settings/roles/<int:pk>/", views.role_edit, name="role_edit"),
    path("settings/org/", views.org_unit_list, name="org_unit_list"),
    path("settings/org/new/", views.org_unit_edit, name="org_unit_add"),
    path("settings/org/<int:pk>/", views.org_unit_edit, name="org_unit_edit"),
    path("settings/locked/", views.lockout_list, name="lockout_list"),
    path("settings/locked/<int:pk>/unlock/", views.lockout_unlock, name="lockout_unlock"),
]
