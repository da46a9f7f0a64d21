"""The shell: dashboard, navigation, search, error pages, audit log, cron, health."""

import datetime as dt

from django.core.management import call_command

from clientbase.clients.services import client_create, client_update
from clientbase.core.models import AuditEntry, CronRun, IdempotencyKey


def test_navigation_shows_only_allowed_sections(signed_in, make_user, admin_user):
    seller_page = signed_in(make_user("seller")).get("/")
    assert [s["key"] for s in seller_page.context["nav_sections"]] == [
        "clients",
        "sales",
        "billing",
        "support",
    ]
    admin_page = signed_in(admin_user).get("/")
    assert [s["key"] for s in admin_page.context["nav_sections"]] == [
        "clients",
        "sales",
        "billing",
        "support",
        "reports",
        "settings",
    ]


def test_anonymous_visitor_is_sent_to_sign_in(client, db):
    response = client.get("/clients/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/clients/"


def test_themed_404(signed_in, admin_user):
    response = signed_in(admin_user).get("/no/such/page/")
    assert response.status_code == 404
    assert b"This page does not exist" in response.content


def test_healthz(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_security_headers_on_pages(client, db):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in policy


def test_audit_log_filters_by_user_type_and_date(signed_in, admin_user, make_user, time_machine):
    ann = make_user("ann")
    time_machine.move_to("2026-03-10 12:00:00+00:00", tick=False)
    alpha = client_create(by=ann, name="Alpha", email="alpha@example.com")
    time_machine.move_to("2026-03-12 12:00:00+00:00", tick=False)
    client_update(client=alpha, by=admin_user, name="Alpha SAS")
    client = signed_in(admin_user)
    page = client.get("/settings/audit/", {"user": ann.pk})
    assert [(e.action, e.object_repr) for e in page.context["page"]] == [
        ("create", f"{alpha.number} Alpha")
    ]
    page = client.get("/settings/audit/", {"from": "2026-03-11", "to": "2026-03-12"})
    entries = list(page.context["page"])
    assert [(e.action, e.changes["name"]) for e in entries] == [
        ("update", {"before": "Alpha", "after": "Alpha SAS"})
    ]
    client_type = AuditEntry.objects.get(action="update").object_type_id
    page = client.get("/settings/audit/", {"type": client_type})
    assert page.context["page"].paginator.count == 2
    assert "Alpha SAS" in page.content.decode()


def test_cron_runs_every_job_and_logs_it(db, time_machine):
    time_machine.move_to("2026-04-02 08:00:00+00:00", tick=False)
    IdempotencyKey.objects.create(
        principal="p", key="old", method="POST", path="/api/v1/x", request_hash="h"
    )
    time_machine.move_to("2026-04-03 09:00:00+00:00", tick=False)
    IdempotencyKey.objects.create(
        principal="p", key="new", method="POST", path="/api/v1/x", request_hash="h"
    )
    call_command("cron")
    runs = {r.job: r for r in CronRun.objects.all()}
    assert set(runs) == {
        "billing_run",
        "clear_sessions",
        "prune_idempotency_keys",
        "prune_automation_log",
        "deferred_actions",
        "dunning",
        "import_uploads",
        "invoices_overdue",
        "support_escalate",
        "support_mail_poll",
        "support_mail_retry",
        "sales_distribute",
        "sales_deal_totals",
        "sales_reminders",
        "sales_reorder_reminders",
        "sales_contract_renewals",
    }
    assert all(r.status == "ok" and r.run_date == dt.date(2026, 4, 3) for r in runs.values())
    assert runs["prune_idempotency_keys"].result == "1 idempotency key removed"
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    # running again the same day does no harm
    call_command("cron")
    assert IdempotencyKey.objects.count() == 1
    assert CronRun.objects.filter(status="ok").count() == 32


def test_a_failing_job_is_logged_and_others_still_run(db, monkeypatch):
    from clientbase.core import cron

    def broken(day):
        raise RuntimeError("disk full")

    monkeypatch.setitem(cron.JOBS, "broken", cron.Job("broken", "Broken", broken))
    runs = cron.run_jobs()
    by_job = {r.job: r for r in runs}
    assert by_job["broken"].status == "failed"
    assert "RuntimeError: disk full" in by_job["broken"].result
    assert by_job["clear_sessions"].status == "ok"


def test_search_box_suggests_while_typing(signed_in, make_user):
    ann = make_user("ann")
    alpha = client_create(by=ann, name="Alpha SARL", email="alpha@example.com")
    response = signed_in(ann).get("/search/", {"q": "alph"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert [t.name for t in response.templates] == ["core/_search_results.html"]
    html = response.content.decode()
    assert f"{alpha.number} · Alpha SARL" in html
    assert f'href="/clients/{alpha.pk}/"' in html
    assert "<nav" not in html


def test_unknown_page_for_a_visitor_is_themed_without_the_menu(client, db):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "This page does not exist" in html
    assert 'id="user-menu"' not in html


def test_errors_under_api_are_problem_documents(client, db):
    from django.test import RequestFactory

    from clientbase.core.views import bad_request, server_error

    request = RequestFactory().get("/api/v1/anything")
    for view, status in [(bad_request, 400), (server_error, 500)]:
        response = view(request)
        assert response.status_code == status
        assert response["Content-Type"] == "application/problem+json"


def test_themed_500_needs_no_database(rf):
    from clientbase.core.views import server_error

    response = server_error(rf.get("/clients/"))
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content
