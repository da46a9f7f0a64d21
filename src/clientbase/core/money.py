"""Money as integer minor units of one currency; never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, lru_cache

from babel.numbers import format_currency, get_currency_precision, list_currencies


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


@cache
def currency_exponent(currency: str) -> int:
    """Digits after the decimal point for a currency (EUR 2, JPY 0, BHD 3)."""
    if currency not in _known_currencies():
        raise ValueError(f"Unknown currency code: {currency!r}")
    return get_currency_precision(currency)


@lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def round_half_up(value: Decimal) -> int:
    """Round a Decimal to the nearest integer, halves away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount: `minor` units (cents, kopecks) of `currency`."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError(f"Money.minor must be an int, not {type(self.minor).__name__}")
        currency_exponent(self.currency)

    # --- construction ---------------------------------------------------------------
    @classmethod
    def zero(cls, currency: str) -> Money:
        """Nothing, in a currency."""
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, amount: Decimal | str | int, currency: str) -> Money:
        """Major units (e.g. Decimal('12.345') EUR) rounded half-up to the minor unit."""
        if isinstance(amount, float):
            raise TypeError("Money never takes a float; pass a Decimal or a string")
        scaled = Decimal(amount).scaleb(currency_exponent(currency))
        return cls(round_half_up(scaled), currency)

    # --- views ----------------------------------------------------------------------
    @property
    def amount(self) -> Decimal:
        """The amount in major units, exact."""
        return Decimal(self.minor).scaleb(-currency_exponent(self.currency))

    def format(self, locale: str = "en") -> str:
        """The amount as a person reads it in a locale, e.g. '1 234,50 €' in fr."""
        return format_currency(self.amount, self.currency, locale=locale)

    def __str__(self) -> str:
        return f"{self.amount:f} {self.currency}"

    # --- arithmetic -----------------------------------------------------------------
    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"Cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} cannot be combined")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.minor), self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        """Multiply by a quantity or rate, rounding half-up once to the minor unit."""
        if isinstance(factor, float):
            raise TypeError("Money never multiplies by a float; use a Decimal")
        if isinstance(factor, int):
            return Money(self.minor * factor, self.currency)
        return Money(round_half_up(Decimal(self.minor) * factor), self.currency)

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return self.minor != 0

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def allocate(self, weights: list[int] | list[Decimal]) -> list[Money]:
        """Split over parts in proportion to weights, losing no minor unit.

        Each part gets the floor of its share; the minor units left over go one each to
        the parts with the largest remainders (ties: the earlier part), so the parts always
        add up to the whole.
        """
        if not weights:
            raise ValueError("allocate needs at least one weight")
        if any(w < 0 for w in weights):
            raise ValueError("allocation weights cannot be negative")
        total = sum(Decimal(w) for w in weights)
        if total == 0:
            raise ValueError("allocation weights cannot all be zero")
        sign = -1 if self.minor < 0 else 1
        whole = abs(self.minor)
        shares = [Decimal(whole) * Decimal(w) / total for w in weights]
        floors = [int(s) for s in shares]
        left = whole - sum(floors)
        by_remainder = sorted(range(len(weights)), key=lambda i: (-(shares[i] - floors[i]), i))
        for i in by_remainder[:left]:
            floors[i] += 1
        return [Money(sign * part, self.currency) for part in floors]

    def split(self, parts: int) -> list[Money]:
        """Split into `parts` near-equal amounts that add up to the whole."""
        if parts < 1:
            raise ValueError("split needs at least one part")
        return self.allocate([1] * parts)


def money_sum(amounts: list[Money], currency: str) -> Money:
    """The sum of amounts of one currency (zero for none)."""
    total = Money.zero(currency)
    for amount in amounts:
        total += amount
    return total
