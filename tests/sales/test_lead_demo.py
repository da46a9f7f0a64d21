"""The demo leads: made once, in every status, through the services."""

from clientbase.core.demo import ensure_demo_org
from clientbase.sales.lead_demo import demo_lead_create
from clientbase.sales.models import DistributionLog, Lead, WebFormSubmission


def test_demo_leads_are_made_once(default_roles):
    org = ensure_demo_org()
    assert demo_lead_create(org=org) == 8
    assert demo_lead_create(org=org) == 0
    statuses = set(Lead.objects.values_list("status", flat=True))
    assert statuses == {"new", "in_progress", "appointment", "customer", "dead"}
    assert Lead.objects.get(status="customer").client is not None
    web_lead = WebFormSubmission.objects.get().lead
    assert web_lead.owner is not None
    assert DistributionLog.objects.get().lead == web_lead
