"""Two people moving one deal at once on PostgreSQL: one wins, the other gets a conflict, and
the stage's next steps are made once."""

import threading

import pytest
from django.db import connection, connections

from clientbase.core.errors import ConflictError
from clientbase.core.money import Money
from clientbase.sales import deal_services as services
from clientbase.sales.models import Activity, Deal, DealSummary, Pipeline
from clientbase.sales.pipelines import default_pipeline

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency are what these test")


def _at_once(work, args_list):
    barrier = threading.Barrier(len(args_list), timeout=30)
    results: list = [None] * len(args_list)

    def run(index, args):
        try:
            barrier.wait()
            results[index] = work(*args)
        except Exception as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_two_moves_of_one_deal_at_once_one_wins_the_other_conflicts(seller, sales_manager):
    pipeline = default_pipeline(Pipeline.Kind.DEAL)
    proposal = pipeline.stages.get(name="Proposal")
    negotiation = pipeline.stages.get(name="Negotiation")
    services.stage_task_save(by=None, stage=proposal, subject="Send the proposal")
    services.stage_task_save(by=None, stage=negotiation, subject="Agree on terms")
    deal = services.deal_create(by=seller, name="Race", value=Money(5000, "EUR"))
    deal.expected_close = None

    def move(user, stage):
        fresh = Deal.objects.get(pk=deal.pk)
        return services.deal_move(by=user, deal=fresh, stage=stage, version=1)

    results = _at_once(move, [(seller, proposal), (sales_manager, proposal)])

    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], ConflictError), results
    deal.refresh_from_db()
    assert (deal.stage, deal.version) == (proposal, 2)
    assert Activity.objects.filter(deal=deal, subject="Send the proposal").count() == 1
    assert DealSummary.objects.get(stage=proposal).count == 1
    assert DealSummary.objects.get(stage=pipeline.stages.get(name="Needs analysis")).count == 0


def test_many_deals_created_at_once_get_distinct_numbers_and_exact_totals(seller):
    def create(n):
        return services.deal_create(by=seller, name=f"D{n}", value=Money(100, "EUR"))

    results = _at_once(create, [(n,) for n in range(6)])

    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.number for r in results}) == 6
    (row,) = DealSummary.objects.all()
    assert (row.count, row.value_minor) == (6, 600)
