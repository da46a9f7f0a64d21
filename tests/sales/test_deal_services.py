"""Deal services: create, update, move across stages with their rules and tasks; lead moves."""

import datetime as dt

import pytest
import time_machine

from clientbase.core.errors import ConflictError, ServiceError
from clientbase.core.models import AuditEntry, Event
from clientbase.core.money import Money
from clientbase.sales import deal_services as services
from clientbase.sales.models import Activity, Deal, Lead, Pipeline, Stage
from clientbase.sales.pipelines import default_pipeline, first_stage, stage_for_state

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _stage(name: str) -> Stage:
    return default_pipeline(Pipeline.Kind.DEAL).stages.get(name=name)


def _lead(owner, **fields) -> Lead:
    pipeline = default_pipeline(Pipeline.Kind.LEAD)
    return Lead.objects.create(
        number=fields.pop("number", "L-1"),
        name=fields.pop("name", "Jean Petit"),
        currency="EUR",
        stage=first_stage(pipeline),
        owner=owner,
        org_unit=owner.org_unit,
        **fields,
    )


def test_deal_create_numbers_and_places_in_first_stage(seller, buyer):
    # when a seller opens a deal for their client without saying where
    deal = services.deal_create(by=seller, name="  Website   redesign ", client=buyer)
    second = services.deal_create(by=seller, name="Hosting", value=Money(120000, "USD"))

    # then it is numbered, in the default pipeline's first stage, in the client's currency
    assert (deal.number, second.number) == ("D-00001", "D-00002")
    assert deal.name == "Website redesign"
    assert deal.stage == _stage("Needs analysis")
    assert (deal.status, deal.probability, deal.currency, deal.value_minor) == (
        "open",
        10,
        "EUR",
        0,
    )
    assert (second.currency, second.value_minor) == ("USD", 120000)
    assert (deal.owner, deal.org_unit) == (seller, seller.org_unit)
    assert Event.objects.filter(type="deal.created", client=buyer).count() == 1
    assert AuditEntry.objects.filter(object_id=str(deal.pk), object_type__model="deal").count() == 1


def test_deal_create_refuses_blank_name_and_negative_value(seller):
    with pytest.raises(ServiceError) as blank:
        services.deal_create(by=seller, name="   ")
    with pytest.raises(ServiceError) as negative:
        services.deal_create(by=seller, name="X", value=Money(-1, "EUR"))
    assert blank.value.message_dict == {"name": ["Give the deal a name."]}
    assert negative.value.message_dict == {"value": ["A deal's value cannot be negative."]}
    assert Deal.objects.count() == 0


def test_deal_create_in_a_gated_stage_checks_its_requirements(seller):
    with pytest.raises(ServiceError) as refused:
        services.deal_create(by=seller, name="X", stage=_stage("Negotiation"))
    assert refused.value.message_dict == {
        "stage": ["Negotiation needs a value and an expected close date."]
    }
    assert Deal.objects.count() == 0


def test_move_refused_names_what_is_missing_and_changes_nothing(seller):
    deal = services.deal_create(by=seller, name="X")

    with pytest.raises(ServiceError) as refused:
        services.deal_move(by=seller, deal=deal, stage=_stage("Proposal"))

    assert refused.value.message_dict == {"stage": ["Proposal needs a value."]}
    deal.refresh_from_db()
    assert (deal.stage.name, deal.version, deal.probability) == ("Needs analysis", 1, 10)


def test_move_sets_probability_and_creates_stage_tasks_once(seller, buyer):
    # given the proposal stage has two next steps
    proposal = _stage("Proposal")
    services.stage_task_save(by=seller, stage=proposal, subject="Send the proposal", due_in_days=2)
    services.stage_task_save(by=seller, stage=proposal, subject="Call back", kind="call")
    deal = services.deal_create(by=seller, name="X", value=Money(50000, "EUR"), client=buyer)

    # when the deal enters the stage, leaves, and enters again the same day
    moved = services.deal_move(by=seller, deal=deal, stage=proposal, version=1)
    services.deal_move(by=seller, deal=moved, stage=_stage("Needs analysis"))
    services.deal_move(by=seller, deal=moved, stage=proposal)

    # then each next step exists once, for the owner, due as defined
    moved.refresh_from_db()
    assert (moved.stage, moved.probability, moved.status, moved.version) == (
        proposal,
        40,
        "open",
        4,
    )
    tasks = Activity.objects.filter(deal=moved).order_by("subject")
    assert [(a.subject, a.kind, a.owner, a.due_at) for a in tasks] == [
        ("Call back", "call", seller, NOW + dt.timedelta(days=1)),
        ("Send the proposal", "task", seller, NOW + dt.timedelta(days=2)),
    ]
    assert all(a.client == buyer for a in tasks)
    assert Event.objects.filter(type="deal.moved", client=buyer).count() == 3


def test_move_with_a_stale_version_is_a_conflict(seller):
    deal = services.deal_create(by=seller, name="X", value=Money(100, "EUR"))
    services.deal_move(by=seller, deal=deal, stage=_stage("Proposal"), version=1)

    with pytest.raises(ConflictError):
        services.deal_move(by=seller, deal=deal, stage=_stage("Needs analysis"), version=1)
    deal.refresh_from_db()
    assert (deal.stage.name, deal.version) == ("Proposal", 2)


def test_won_needs_a_client_and_lost_needs_a_reason(seller, buyer):
    deal = services.deal_create(by=seller, name="X", value=Money(100, "EUR"))
    with pytest.raises(ServiceError) as no_client:
        services.deal_move(by=seller, deal=deal, stage=_stage("Won"))
    with pytest.raises(ServiceError) as no_reason:
        services.deal_move(by=seller, deal=deal, stage=_stage("Lost"), reason="  ")
    assert no_client.value.message_dict == {
        "stage": ["Won needs a client (a lead converted first)."]
    }
    assert no_reason.value.message_dict == {"reason": ["Say why before moving to Lost."]}
    deal.refresh_from_db()
    assert (deal.status, deal.closed_on, deal.version) == ("open", None, 1)

    lost = services.deal_move(by=seller, deal=deal, stage=_stage("Lost"), reason="Too expensive")
    assert (lost.status, lost.lost_reason, lost.closed_on, lost.probability) == (
        "lost", "Too expensive", NOW.date(), 0,
    )  # fmt: skip

    services.deal_update(by=seller, deal=lost, client=buyer)
    won = services.deal_move(by=seller, deal=lost, stage=_stage("Won"))
    assert (won.status, won.lost_reason, won.closed_on, won.probability) == (
        "won",
        "",
        NOW.date(),
        100,
    )
    assert Event.objects.get(type="deal.won").amount == Money(100, "EUR")


def test_move_to_a_stage_of_another_pipeline_is_refused(seller, admin_user):
    other = services.pipeline_save(by=admin_user, name="Partners")
    deal = services.deal_create(by=seller, name="X")
    with pytest.raises(ServiceError) as refused:
        services.deal_move(by=seller, deal=deal, stage=first_stage(other))
    assert refused.value.message_dict == {"stage": ["This stage belongs to another pipeline."]}


def test_deal_update_checks_version_and_keeps_the_stage_gate(seller):
    deal = services.deal_create(by=seller, name="X", value=Money(100, "EUR"))
    deal = services.deal_move(by=seller, deal=deal, stage=_stage("Proposal"))

    updated = services.deal_update(
        by=seller, deal=deal, version=2, name="Y", expected_close=dt.date(2025, 4, 30)
    )
    assert (updated.name, updated.expected_close, updated.version) == ("Y", dt.date(2025, 4, 30), 3)
    with pytest.raises(ConflictError):
        services.deal_update(by=seller, deal=deal, version=2, name="Z")
    with pytest.raises(ServiceError) as cleared:
        services.deal_update(by=seller, deal=deal, value=Money(0, "EUR"))
    assert cleared.value.message_dict == {"__all__": ["Proposal needs a value."]}
    deal.refresh_from_db()
    assert (deal.name, deal.value_minor, deal.version) == ("Y", 100, 3)


def test_lead_move_sets_status_and_dead_needs_a_reason(seller):
    lead = _lead(seller)
    pipeline = lead.stage.pipeline

    in_progress = services.lead_move(
        by=seller, lead=lead, stage=stage_for_state(pipeline, "in_progress"), version=1
    )
    assert (in_progress.status, in_progress.version) == ("in_progress", 2)

    with pytest.raises(ServiceError) as no_reason:
        services.lead_move(by=seller, lead=lead, stage=stage_for_state(pipeline, "dead"))
    with pytest.raises(ServiceError) as not_converted:
        services.lead_move(by=seller, lead=lead, stage=stage_for_state(pipeline, "customer"))
    assert no_reason.value.message_dict == {"reason": ["Say why before moving to Dead."]}
    assert not_converted.value.message_dict == {
        "stage": ["Customer needs a client (a lead converted first)."]
    }
    dead = services.lead_move(
        by=seller, lead=lead, stage=stage_for_state(pipeline, "dead"), reason="No budget"
    )
    assert (dead.status, dead.dead_reason) == ("dead", "No budget")


def test_lead_customer_stage_accepts_a_converted_lead(seller, buyer):
    lead = _lead(seller, client=buyer)
    pipeline = lead.stage.pipeline
    moved = services.lead_move(by=seller, lead=lead, stage=stage_for_state(pipeline, "customer"))
    assert moved.status == "customer"


def test_stage_with_records_cannot_be_deleted(seller, admin_user):
    deal = services.deal_create(by=seller, name="X")
    with pytest.raises(ServiceError) as refused:
        services.stage_delete(by=admin_user, stage=deal.stage)
    assert refused.value.message_dict == {
        "stage": ["Deals or leads are in this stage: move them first."]
    }
    extra = services.stage_save(
        by=admin_user, pipeline=deal.pipeline, name="Review", state="open", probability=55,
        requires=["value", "quote"],
    )  # fmt: skip
    assert (extra.position, extra.requires) == (5, ["value", "quote"])
    services.stage_delete(by=admin_user, stage=extra)
    assert not Stage.objects.filter(pk=extra.pk).exists()


def test_stage_save_refuses_bad_settings(admin_user):
    pipeline = default_pipeline(Pipeline.Kind.DEAL)
    cases = [
        ({"state": "dead"}, "state"),
        ({"probability": 101}, "probability"),
        ({"colour": "red"}, "colour"),
        ({"requires": ["money"]}, "requires"),
        ({"name": "Won"}, "name"),
    ]
    for change, field in cases:
        fields = {"name": "Z", "state": "open", "probability": 5, "colour": "#112233", **change}
        with pytest.raises(ServiceError) as refused:
            services.stage_save(by=admin_user, pipeline=pipeline, **fields)
        assert list(refused.value.message_dict) == [field]
    assert pipeline.stages.count() == 5


def test_stages_reorder(admin_user):
    pipeline = default_pipeline(Pipeline.Kind.DEAL)
    ids = list(pipeline.stages.values_list("pk", flat=True))
    services.stages_reorder(by=admin_user, pipeline=pipeline, stage_ids=ids[::-1])
    assert list(pipeline.stages.order_by("position").values_list("pk", flat=True)) == ids[::-1]
    with pytest.raises(ServiceError):
        services.stages_reorder(by=admin_user, pipeline=pipeline, stage_ids=ids[:2])


def test_running_totals_match_a_recount_after_every_kind_of_change(seller, other_seller, buyer):
    from clientbase.sales.models import DealSummary

    def snapshot():
        return sorted(
            (r.key, r.count, r.value_minor, r.weighted)
            for r in DealSummary.objects.exclude(count=0)
        )

    # given deals created, changed, moved, won, lost and handed to another owner
    a = services.deal_create(
        by=seller, name="A", value=Money(1000, "EUR"), expected_close=dt.date(2025, 4, 2)
    )
    b = services.deal_create(by=seller, name="B", value=Money(7, "USD"), client=buyer)
    services.deal_move(by=seller, deal=a, stage=_stage("Proposal"))
    services.deal_update(
        by=seller, deal=a, value=Money(2500, "EUR"), expected_close=dt.date(2025, 5, 1)
    )
    services.deal_move(by=seller, deal=b, stage=_stage("Won"))
    c = services.deal_create(by=seller, name="C", value=Money(3, "EUR"))
    services.deal_move(by=seller, deal=c, stage=_stage("Lost"), reason="No")
    services.deal_update(by=seller, deal=c, owner=other_seller)
    kept = snapshot()

    # when the totals are recounted from the deals
    services.deal_summary_rebuild()

    # then they are what the services kept
    assert snapshot() == kept
    assert sum(r[1] for r in kept) == 3


def test_dashboard_counter_and_search_see_only_what_the_user_may(seller, other_seller):
    from clientbase.sales.deal_queries import closing_this_month
    from clientbase.sales.shell import _find_deals as _find

    services.deal_create(by=seller, name="Closing soon", expected_close=dt.date(2025, 3, 31))
    services.deal_create(by=seller, name="Later", expected_close=dt.date(2025, 4, 1))
    services.deal_create(by=other_seller, name="Closing too", expected_close=dt.date(2025, 3, 2))

    assert [d.name for d in closing_this_month(seller)] == ["Closing soon"]
    assert [hit.title for hit in _find(seller, "closing", 5)] == ["D-00001 Closing soon"]
    assert _find(other_seller, "D-00001", 5) == []
