"""Background tasks: queued after commit, run by `clientbase worker` on either backend."""

import os
import socket
import subprocess
import sys

import pytest

from clientbase.core.models import CronRun


def test_run_now_queues_every_job_after_commit(
    signed_in, admin_user, django_capture_on_commit_callbacks
):
    client = signed_in(admin_user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/settings/automation/run/")
    assert response.status_code == 302
    assert len(callbacks) == 16
    assert sorted(CronRun.objects.values_list("job", "status")) == [
        ("billing_run", "ok"),
        ("clear_sessions", "ok"),
        ("deferred_actions", "ok"),
        ("dunning", "ok"),
        ("import_uploads", "ok"),
        ("invoices_overdue", "ok"),
        ("prune_automation_log", "ok"),
        ("prune_idempotency_keys", "ok"),
        ("sales_contract_renewals", "ok"),
        ("sales_deal_totals", "ok"),
        ("sales_distribute", "ok"),
        ("sales_reminders", "ok"),
        ("sales_reorder_reminders", "ok"),
        ("support_escalate", "ok"),
        ("support_mail_poll", "ok"),
        ("support_mail_retry", "ok"),
    ]


def test_run_now_needs_permission(signed_in, make_user):
    response = signed_in(make_user("seller")).post("/settings/automation/run/")
    assert response.status_code == 403
    assert CronRun.objects.count() == 0


def _clientbase(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "clientbase.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _worker_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CLIENTBASE_VAR_DIR=str(tmp_path), CLIENTBASE_TESTING="false", **extra)
    return env


def _redis_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_worker_processes_queued_jobs(tmp_path, backend):
    # given a fresh installation with the chosen task backend
    extra = {}
    if backend == "redis":
        if not _redis_answers():
            pytest.skip("Redis is not running on 127.0.0.1:6379")
        extra["REDIS_URL"] = "redis://127.0.0.1:6379/15"
    env = _worker_env(tmp_path, **extra)
    _clientbase(env, "migrate", "--noinput", "-v0")
    if backend == "redis":
        _clientbase(env, "shell", "-c", "import django_rq; django_rq.get_queue().empty()")
    # when the daily jobs are queued and a worker drains the queue
    assert _clientbase(env, "cron", "--background").strip() == "16 jobs queued"
    _clientbase(env, "worker", "--batch")
    # then every job ran once, in the worker
    out = _clientbase(
        env,
        "shell",
        "-v0",
        "-c",
        "from clientbase.core.models import CronRun;"
        "print(sorted(CronRun.objects.values_list('job', 'status')))",
    )
    assert out.strip() == (
        "[('billing_run', 'ok'), ('clear_sessions', 'ok'), ('deferred_actions', 'ok'), "
        "('dunning', 'ok'), ('import_uploads', 'ok'), ('invoices_overdue', 'ok'), "
        "('prune_automation_log', 'ok'), ('prune_idempotency_keys', 'ok'), "
        "('sales_contract_renewals', 'ok'), ('sales_deal_totals', 'ok'), "
        "('sales_distribute', 'ok'), ('sales_reminders', 'ok'), "
        "('sales_reorder_reminders', 'ok'), ('support_escalate', 'ok'), ('support_mail_poll', 'ok'), ('support_mail_retry', 'ok')]"
    )
