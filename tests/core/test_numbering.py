"""Document numbers: per series, gapless, unique under concurrent writers."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from clientbase.core import numbering
from clientbase.core.models import NumberSeries
from clientbase.core.numbering import (
    DocumentNumber,
    next_number,
    register_series,
    reserve_numbers,
)

transactional = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    """Raised inside a transaction to roll it back on purpose."""


@pytest.fixture(autouse=True)
def own_series_defaults(monkeypatch):
    """Series registered by a test are forgotten after it."""
    monkeypatch.setattr(numbering, "SERIES_DEFAULTS", dict(numbering.SERIES_DEFAULTS))


def take(key: str) -> DocumentNumber:
    """One number in its own committed transaction."""
    with transaction.atomic():
        return next_number(key)


def take_and_roll_back(key: str) -> DocumentNumber:
    """One number in a transaction that is then rolled back."""
    taken = []
    with pytest.raises(Rollback), transaction.atomic():
        taken.append(next_number(key))
        raise Rollback
    return taken[0]


@transactional
def test_next_number_outside_a_transaction_is_refused():
    """Without the caller's transaction the number could outlive a failed save."""
    with pytest.raises(RuntimeError, match="must run inside the transaction"):
        next_number("quote")

    assert NumberSeries.objects.count() == 0


@transactional
def test_numbers_follow_the_registered_prefix_and_padding():
    """A registered series starts at 1 and writes its numbers with prefix and padding."""
    register_series("test-invoice", prefix="INV-", padding=5)

    numbers = [take("test-invoice") for _ in range(3)]

    assert numbers == [
        DocumentNumber(series="test-invoice", value=1, text="INV-00001"),
        DocumentNumber(series="test-invoice", value=2, text="INV-00002"),
        DocumentNumber(series="test-invoice", value=3, text="INV-00003"),
    ]
    series = NumberSeries.objects.get(key="test-invoice")
    assert (series.prefix, series.padding, series.next_value) == ("INV-", 5, 4)


@transactional
def test_an_unregistered_series_is_plain_numbers():
    """A series nobody registered has no prefix and no padding."""
    assert [take("test-plain").text for _ in range(3)] == ["1", "2", "3"]


@transactional
def test_padding_never_cuts_a_longer_number():
    """Past the padded width the number just grows."""
    register_series("test-short", prefix="T", padding=2)
    NumberSeries.objects.create(key="test-short", prefix="T", padding=2, next_value=99)

    assert [take("test-short").text for _ in range(3)] == ["T99", "T100", "T101"]


@transactional
def test_the_series_row_decides_after_the_first_number():
    """An administrator's change of prefix and digits applies to the next numbers."""
    register_series("test-quote", prefix="Q", padding=3)
    assert take("test-quote").text == "Q001"

    NumberSeries.objects.filter(key="test-quote").update(prefix="2026/", padding=0)

    assert take("test-quote").text == "2026/2"


@transactional
def test_series_count_independently():
    """Each series has its own counter."""
    register_series("test-a", prefix="A")
    register_series("test-b", prefix="B")

    texts = [take("test-a").text, take("test-b").text, take("test-a").text, take("test-b").text]

    assert texts == ["A1", "B1", "A2", "B2"]
    assert dict(NumberSeries.objects.values_list("key", "next_value")) == {
        "test-a": 3,
        "test-b": 3,
    }


@transactional
def test_a_rolled_back_transaction_gives_its_number_back():
    """A number taken by a failed save is taken again by the next one: no gap."""
    register_series("test-credit", prefix="CN-", padding=3)
    assert take("test-credit").text == "CN-001"

    lost = take_and_roll_back("test-credit")

    assert lost.text == "CN-002"
    assert NumberSeries.objects.get(key="test-credit").next_value == 2
    assert take("test-credit").text == "CN-002"


@transactional
def test_a_rolled_back_first_number_leaves_no_series_behind():
    """Even the creation of the series row rolls back with the transaction that made it."""
    register_series("test-first", prefix="F")

    assert take_and_roll_back("test-first").text == "F1"

    assert NumberSeries.objects.filter(key="test-first").count() == 0
    assert take("test-first").text == "F1"


@pytest.mark.django_db
def test_a_rolled_back_savepoint_gives_its_number_back():
    """Numbers taken in an inner atomic block that fails go back with it."""
    with transaction.atomic():
        first = next_number("test-nested")
        with pytest.raises(Rollback), transaction.atomic():
            next_number("test-nested")
            raise Rollback
        second = next_number("test-nested")

    assert (first.value, second.value) == (1, 2)
    assert NumberSeries.objects.get(key="test-nested").next_value == 3


def run_writers(key: str, *, threads: int, rounds: int, roll_back_every: int) -> dict:
    """Writers that each take numbers in their own transactions and connections, together."""
    committed: list[int] = []
    rolled_back: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def writer(index: int) -> None:
        try:
            start.wait()
            for round_ in range(rounds):
                fail = (index * rounds + round_) % roll_back_every == 0
                try:
                    with transaction.atomic():
                        number = next_number(key)
                        # Hold the number a moment so that other writers queue on it.
                        time.sleep(0.001)
                        if fail:
                            raise Rollback
                except Rollback:
                    with lock:
                        rolled_back.append(number.value)
                    continue
                # Only a committed number is recorded, after its commit.
                with lock:
                    committed.append(number.value)
        except BaseException as error:  # reported by the test thread
            with lock:
                errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return {
        "alive": [w for w in workers if w.is_alive()],
        "errors": errors,
        "committed": committed,
        "rolled_back": rolled_back,
    }


def assert_gapless(result: dict, key: str, *, threads: int, rounds: int, roll_back_every: int):
    """Committed numbers are exactly 1..N, each once, and the series continues at N + 1."""
    assert result["alive"] == []
    assert result["errors"] == []
    expected_rollbacks = len(range(0, threads * rounds, roll_back_every))
    committed = result["committed"]
    assert len(result["rolled_back"]) == expected_rollbacks
    assert len(committed) == threads * rounds - expected_rollbacks
    assert sorted(committed) == list(range(1, len(committed) + 1))
    assert NumberSeries.objects.get(key=key).next_value == len(committed) + 1


@pytest.mark.postgres
@transactional
def test_concurrent_writers_get_gapless_unique_numbers_on_postgresql():
    """20 writers racing, some rolling back, share 1..N with no gap and no duplicate."""
    # The series row does not exist yet, so the writers also race to create it.
    result = run_writers("test-race", threads=20, rounds=5, roll_back_every=7)

    assert_gapless(result, "test-race", threads=20, rounds=5, roll_back_every=7)


# The SQLite test database lives in memory with a shared cache, where a second writer gets
# "database table is locked" at once instead of waiting; so the SQLite race runs in a child
# process on a file database set up as in production (WAL, BEGIN IMMEDIATE, busy timeout).
SQLITE_RACE = """
import json
import django

django.setup()
from django.db import connection
from clientbase.core.models import NumberSeries
from tests.core.test_numbering import run_writers

with connection.schema_editor() as editor:
    editor.create_model(NumberSeries)
connection.close()
result = run_writers("test-race", threads=8, rounds=5, roll_back_every=3)
print(json.dumps({
    "alive": [w.name for w in result["alive"]],
    "errors": [repr(e) for e in result["errors"]],
    "committed": result["committed"],
    "rolled_back": result["rolled_back"],
    "next_value": NumberSeries.objects.get(key="test-race").next_value,
    "vendor": connection.vendor,
    "journal": connection.cursor().execute("PRAGMA journal_mode").fetchone()[0],
}))
"""


def test_concurrent_writers_get_gapless_unique_numbers_on_a_sqlite_file(tmp_path):
    """8 writers racing on a SQLite file, some rolling back, share 1..N with no gap."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {
        "DJANGO_SETTINGS_MODULE": "clientbase.settings",
        "CLIENTBASE_VAR_DIR": str(tmp_path),
        "CLIENTBASE_TESTING": "true",
        "SECRET_KEY": "numbering-race",
        "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")]),
    }

    done = subprocess.run(
        [sys.executable, "-c", SQLITE_RACE],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["vendor"], result["journal"]) == ("sqlite", "wal")
    assert (result["alive"], result["errors"]) == ([], [])
    committed = result["committed"]
    assert len(result["rolled_back"]) == len(range(0, 8 * 5, 3)) == 14
    assert sorted(committed) == list(range(1, 8 * 5 - 14 + 1))
    assert result["next_value"] == 8 * 5 - 14 + 1


@pytest.mark.django_db
def test_reserve_numbers_takes_a_block_after_next_number():
    register_series("block-test", prefix="B-", padding=3)
    with transaction.atomic():
        first = next_number("block-test")
        block = reserve_numbers("block-test", 3)
        after = next_number("block-test")
    assert first.text == "B-001"
    assert [n.text for n in block] == ["B-002", "B-003", "B-004"]
    assert after.value == 5


@pytest.mark.django_db
def test_reserve_numbers_refuses_an_empty_block():
    with pytest.raises(ValueError), transaction.atomic():
        reserve_numbers("block-test-2", 0)
    assert not NumberSeries.objects.filter(key="block-test-2").exists()
