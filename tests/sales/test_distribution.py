"""Lead distribution: rules by source and campaign, round robin, fewest open leads (SAL-6)."""

import pytest

from clientbase.core.cron import run_jobs
from clientbase.core.errors import ServiceError
from clientbase.sales.lead_services import (
    distribution_rule_save,
    lead_create,
    leads_distribute,
)
from clientbase.sales.models import DistributionLog, DistributionRule, Lead


@pytest.fixture
def team(make_user):
    return [make_user(f"s{i}", role="sales", unit="team_a") for i in range(3)]


def arrive(admin_user, n: int, **fields) -> list[Lead]:
    defaults = {"source": "web", "campaign": "", "currency": "EUR", "org_unit": admin_user.org_unit}
    return [
        lead_create(by=None, owner=None, name=f"Lead {i}", **{**defaults, **fields})
        for i in range(n)
    ]


def test_round_robin_takes_turns_and_continues_after_the_last_one(admin_user, team):
    # Given a round-robin rule for the web source among three sellers
    rule = distribution_rule_save(by=admin_user, name="Web", source="web", members=team)
    # When four leads arrive
    leads = arrive(admin_user, 4)
    # Then they go in turn, the fourth back to the first, and the log says so
    assert [lead.owner for lead in leads] == [team[0], team[1], team[2], team[0]]
    assert leads[0].org_unit == team[0].org_unit
    rule.refresh_from_db()
    assert rule.last_assignee == team[0]
    log = DistributionLog.objects.order_by("id")
    assert [(e.lead_id, e.assignee_id, e.trigger, e.rule_id) for e in log] == [
        (lead.pk, lead.owner_id, "arrival", rule.pk) for lead in leads
    ]


def test_first_matching_rule_by_position_and_campaign(admin_user, team):
    distribution_rule_save(by=admin_user, name="Any", members=[team[2]], position=9)
    distribution_rule_save(
        by=admin_user, name="Spring", campaign="spring", members=[team[1]], position=1
    )
    distribution_rule_save(by=admin_user, name="Off", members=[team[0]], position=0, active=False)
    spring = arrive(admin_user, 1, campaign="Spring")[0]
    other = arrive(admin_user, 1, campaign="autumn")[0]
    assert (spring.owner, other.owner) == (team[1], team[2])


def test_fewest_open_leads_wins(admin_user, team):
    for _ in range(2):
        lead_create(by=team[0], name="Busy", currency="EUR")
    lead_create(by=team[1], name="Busy too", currency="EUR")
    distribution_rule_save(by=admin_user, name="Load", members=team, method="least_load")
    leads = arrive(admin_user, 3)
    assert [lead.owner for lead in leads] == [team[2], team[1], team[2]]


def test_no_rule_leaves_the_lead_waiting_and_the_daily_job_hands_it_out(admin_user, team):
    # Given a lead that arrived before any rule
    waiting = arrive(admin_user, 1)[0]
    assert waiting.owner is None
    assert DistributionLog.objects.count() == 0
    # When a rule appears and the daily job runs (twice)
    distribution_rule_save(by=admin_user, name="Web", members=[team[1]])
    runs = run_jobs(only=["sales_distribute"])
    assert leads_distribute() == 0
    # Then the lead went to the rule's member, once, by the schedule
    waiting.refresh_from_db()
    assert waiting.owner == team[1]
    assert [(e.assignee_id, e.trigger) for e in DistributionLog.objects.all()] == [
        (team[1].pk, "schedule")
    ]
    assert (runs[0].status, runs[0].result) == ("ok", "1 waiting lead handed out")


def test_a_lead_with_an_owner_is_not_distributed(admin_user, team, seller):
    distribution_rule_save(by=admin_user, name="Web", members=team)
    lead = lead_create(by=seller, name="Mine", source="web", currency="EUR")
    assert lead.owner == seller
    assert DistributionLog.objects.count() == 0


def test_a_rule_needs_a_name_and_people(admin_user):
    with pytest.raises(ServiceError) as refused:
        distribution_rule_save(by=admin_user, name=" ", members=[], method="random")
    assert set(refused.value.message_dict) == {"name", "members", "method"}
    assert DistributionRule.objects.count() == 0


def test_rule_pages_need_the_settings_permission(signed_in, seller, admin_user, team):
    assert signed_in(seller).get("/sales/distribution/").status_code == 403
    web = signed_in(admin_user)
    response = web.post(
        "/sales/distribution/new/",
        {
            "name": "Fair",
            "source": "fair",
            "campaign": "",
            "method": "round_robin",
            "members": [team[0].pk, team[1].pk],
            "position": 0,
            "active": "on",
        },
    )
    assert response.status_code == 302
    rule = DistributionRule.objects.get()
    assert (rule.name, rule.source, sorted(m.pk for m in rule.members.all())) == (
        "Fair",
        "fair",
        sorted([team[0].pk, team[1].pk]),
    )
    page = web.get("/sales/distribution/")
    assert b"Fair" in page.content
    refused = web.post("/sales/distribution/new/", {"name": "", "method": "round_robin"})
    assert refused.status_code == 400
    assert DistributionRule.objects.count() == 1
    arrive(admin_user, 1, source="fair")
    log = web.get("/sales/distribution/log/")
    assert log.status_code == 200 and b"On arrival" in log.content
