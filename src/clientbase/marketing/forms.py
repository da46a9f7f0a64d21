"""Forms of the marketing pages: a message template, and a message composed from a card."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from clientbase.core.forms import StyledForm
from clientbase.marketing.models import MessageTemplate
from clientbase.marketing.services import BODY_MAX


def _language_choices() -> list[tuple[str, str]]:
    return [("", _("Any language")), *settings.LANGUAGES]


class TemplateForm(StyledForm, forms.Form):
    """A message template: the service checks its tags."""

    name = forms.CharField(label=_("Name"), max_length=100)
    channel = forms.ChoiceField(label=_("Channel"), choices=MessageTemplate.Channel.choices)
    language = forms.ChoiceField(label=_("Language"), choices=_language_choices, required=False)
    subject = forms.CharField(
        label=_("Subject"), max_length=200, required=False, help_text=_("For email only.")
    )
    body = forms.CharField(
        label=_("Text"), max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 12})
    )
    active = forms.BooleanField(label=_("Active: offered when writing a message"), required=False)

    @classmethod
    def initial_for(cls, template: MessageTemplate | None) -> dict:
        """The form's starting values for a template (or a new one)."""
        if template is None:
            return {"channel": MessageTemplate.Channel.EMAIL, "active": True}
        return {
            "name": template.name,
            "channel": template.channel,
            "language": template.language,
            "subject": template.subject,
            "body": template.body,
            "active": template.active,
        }


class ComposeForm(StyledForm, forms.Form):
    """One message: a template fills the subject and text, which stay editable."""

    template = forms.ModelChoiceField(
        label=_("Template"),
        queryset=MessageTemplate.objects.filter(active=True),
        required=False,
        empty_label=_("— write without a template —"),
    )
    channel = forms.ChoiceField(
        label=_("Send as"), choices=MessageTemplate.Channel.choices, widget=forms.HiddenInput
    )
    to = forms.CharField(label=_("To"), max_length=254)
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False)
    body = forms.CharField(
        label=_("Text"),
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text=_(
            "Edit freely: this message only. Tags such as {{ client.name }} are filled in."
        ),
    )

    def __init__(self, *args, channel: str = MessageTemplate.Channel.EMAIL, **kwargs):
        super().__init__(*args, **kwargs)
        # The channel is chosen above the form; only its templates are offered.
        self.fields["template"].queryset = MessageTemplate.objects.filter(
            active=True, channel=channel
        )
        if channel == MessageTemplate.Channel.SMS:
            del self.fields["subject"]
