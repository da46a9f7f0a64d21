"""Gapless document numbers per series, unique under concurrency."""

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from clientbase.core.models import NumberSeries

# Defaults a series gets the first time a number is taken from it; an administrator may
# change prefix and digits later in the admin.
SERIES_DEFAULTS: dict[str, dict] = {}


def register_series(key: str, *, prefix: str = "", padding: int = 0) -> None:
    """Declare a series and the look of its first numbers."""
    SERIES_DEFAULTS[key] = {"prefix": prefix, "padding": padding}


@dataclass(frozen=True)
class DocumentNumber:
    """A number taken from a series: its value and how it is written."""

    series: str
    value: int
    text: str


def _locked_series(key: str) -> NumberSeries:
    series = NumberSeries.objects.select_for_update().filter(key=key).first()
    if series is not None:
        return series
    try:
        # A savepoint, so that losing the race to create the row keeps the caller's
        # transaction usable; the winner's row is then locked like any other.
        with transaction.atomic():
            NumberSeries.objects.create(key=key, **SERIES_DEFAULTS.get(key, {}))
    except IntegrityError:
        pass
    return NumberSeries.objects.select_for_update().get(key=key)


def next_number(key: str) -> DocumentNumber:
    """Take the next number of a series inside the caller's transaction.

    The row stays locked until the caller commits, so numbers are unique; if the caller
    rolls back, the number is given back with it, so there are no gaps.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_number must run inside the transaction that uses the number")
    series = _locked_series(key)
    value = series.next_value
    series.next_value = value + 1
    series.save(update_fields=["next_value"])
    text = f"{series.prefix}{value:0{series.padding}d}"
    return DocumentNumber(series=key, value=value, text=text)


def reserve_numbers(key: str, count: int) -> list[DocumentNumber]:
    """Take `count` consecutive numbers of a series at once, for bulk writers.

    Same guarantees as next_number: unique under concurrency, given back on rollback.
    """
    if count < 1:
        raise ValueError("reserve at least one number")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("reserve_numbers must run inside the transaction that uses them")
    series = _locked_series(key)
    first = series.next_value
    series.next_value = first + count
    series.save(update_fields=["next_value"])
    return [
        DocumentNumber(series=key, value=v, text=f"{series.prefix}{v:0{series.padding}d}")
        for v in range(first, first + count)
    ]
