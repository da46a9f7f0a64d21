"""The daily automation: registered jobs, each idempotent, each run logged."""

import datetime as dt
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise

from clientbase.core import clock
from clientbase.core.models import CronRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """A daily job: `run(day)` does the day's work and returns a short summary."""

    name: str
    label: Promise
    run: Callable[[dt.date], str]


JOBS: dict[str, Job] = {}


def register_job(name: str, label: Promise):
    """Decorator: add a function `(day) -> summary` to the daily automation."""

    def add(function: Callable[[dt.date], str]):
        JOBS[name] = Job(name, label, function)
        return function

    return add


def run_jobs(*, day: dt.date | None = None, only: list[str] | None = None) -> list[CronRun]:
    """Run every job (or the named ones) for a day; one failing does not stop the others."""
    day = day or clock.today()
    unknown = set(only or []) - set(JOBS)
    if unknown:
        raise KeyError(f"No such job: {', '.join(sorted(unknown))}")
    runs = []
    for job in JOBS.values():
        if only and job.name not in only:
            continue
        run = CronRun.objects.create(job=job.name, run_date=day)
        try:
            summary = job.run(day)
        except Exception:  # recorded with its trace; the next job still runs
            run.status = CronRun.Status.FAILED
            run.result = traceback.format_exc()[-4000:]
            log.exception("daily job %s failed", job.name)
        else:
            run.status = CronRun.Status.OK
            run.result = summary
        run.finished_at = clock.now()
        run.save(update_fields=["status", "result", "finished_at"])
        runs.append(run)
    return runs


def enqueue_jobs(*, day: dt.date | None = None) -> int:
    """Queue every daily job for the workers, once the caller's transaction commits."""
    from django.db import transaction

    from clientbase.core.tasks import run_daily_job

    day_text = (day or clock.today()).isoformat()
    for name in JOBS:
        transaction.on_commit(lambda name=name: run_daily_job.enqueue(name, day_text))
    return len(JOBS)
