"""The demo message templates: all valid, made once."""

import pytest

from clientbase.core.demo import ensure_demo_org
from clientbase.marketing.demo import DEMO_TEMPLATES, demo_templates_create
from clientbase.marketing.models import MessageTemplate
from clientbase.marketing.templating import example_context, render

pytestmark = pytest.mark.django_db


def test_the_demo_templates_are_made_once_and_render(default_roles):
    org = ensure_demo_org()
    assert demo_templates_create(org=org) == len(DEMO_TEMPLATES)
    assert demo_templates_create(org=org) == 0
    assert MessageTemplate.objects.count() == len(DEMO_TEMPLATES)
    languages = set(MessageTemplate.objects.values_list("language", flat=True))
    assert languages == {"", "en", "fr", "ru", "vi"}
    assert MessageTemplate.objects.filter(channel="sms").count() == 2
    for template in MessageTemplate.objects.all():
        assert render(template.body, example_context())
