"""Background tasks of the platform (run by `clientbase worker`)."""

import datetime as dt

from django_tasks import task

from clientbase.core.cron import run_jobs


@task()
def run_daily_job(job_name: str, day: str) -> str:
    """Run one daily job in a worker; returns the run's status and summary."""
    (run,) = run_jobs(day=dt.date.fromisoformat(day), only=[job_name])
    return f"{run.status}: {run.result}"
