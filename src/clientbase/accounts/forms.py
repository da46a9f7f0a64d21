"""Forms of sign-in, second step, profile and the settings pages."""

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, SetPasswordForm
from django.utils.translation import gettext_lazy as _

from clientbase.accounts.models import OrgUnit, Role, User
from clientbase.accounts.permissions import ACTIONS, actions_by_module
from clientbase.accounts.services import USER_FIELDS
from clientbase.core.forms import StyledForm


class SignInForm(StyledForm, AuthenticationForm):
    """Username and password; django-axes counts the failures."""

    username = forms.CharField(
        label=_("Username"),
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )


class CodeForm(StyledForm, forms.Form):
    """A one-time code: from the app, from an email, or a recovery code."""

    code = forms.CharField(
        label=_("Code"),
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class LanguageForm(StyledForm, forms.Form):
    """The language the interface speaks."""

    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    next = forms.CharField(required=False, widget=forms.HiddenInput)


class TokenForm(StyledForm, forms.Form):
    """A name for a new API token."""

    name = forms.CharField(
        label=_("Token name"),
        max_length=80,
        widget=forms.TextInput(attrs={"placeholder": _("Token name, e.g. accounting export")}),
    )


class UserForm(StyledForm, forms.ModelForm):
    """A member of staff, as an administrator edits them."""

    password = forms.CharField(
        label=_("Password"),
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Leave empty to keep the current password."),
    )

    class Meta:
        model = User
        fields = ["username", *USER_FIELDS]
        widgets = {"language": forms.Select(choices=settings.LANGUAGES)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["org_unit"].queryset = OrgUnit.objects.order_by("path")
        self.fields["org_unit"].required = True
        self.fields["role"].required = True
        if self.instance.pk:
            self.fields["username"].disabled = True
        else:
            self.fields["password"].required = True
            self.fields["password"].help_text = ""


class RoleForm(StyledForm, forms.ModelForm):
    """A role: reach, second-step rule and the actions it allows."""

    permissions = forms.MultipleChoiceField(
        label=_("Allowed actions"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Role
        fields = ["name", "slug", "scope", "require_two_factor"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["permissions"].choices = [(c, a.label) for c, a in ACTIONS.items()]
        self.initial.setdefault("permissions", list(self.instance.permissions or []))
        self.action_groups = actions_by_module()


class OrgUnitForm(StyledForm, forms.ModelForm):
    """A unit of the organisation."""

    class Meta:
        model = OrgUnit
        fields = ["name", "kind", "parent"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        parents = OrgUnit.objects.order_by("path")
        if self.instance.pk:
            parents = parents.exclude(path__startswith=self.instance.path)
            self.fields["kind"].disabled = True
        self.fields["parent"].queryset = parents


class StyledPasswordChangeForm(StyledForm, PasswordChangeForm):
    """Old password and the new one twice."""


class StyledSetPasswordForm(StyledForm, SetPasswordForm):
    """A new password twice, from a reset link."""
