"""Money as integer minor units of one currency; never a float."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
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


# Scaling, multiplying and rounding to a whole number are exact in this context whatever the
# number of digits; the default context keeps 28 digits and would round (half-even) before
# we round half-up, e.g. 0.124999999999999999999999999999 EUR would come out as 0.13.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_UP)

# Digits this far from the decimal point are refused: no amount, rate or weight comes near,
# and a mistyped exponent such as 1E+999999999 would build a number of a billion digits.
_MAX_PLACES = 1000


def _finite(value: Decimal, what: str) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, not {value}")
    too_fine = value.as_tuple().exponent < -_MAX_PLACES
    if value and (too_fine or value.adjusted() >= _MAX_PLACES):
        raise ValueError(f"{what} {value:.3e} is out of range")
    return value


def round_half_up(value: Decimal) -> int:
    """Round a Decimal to the nearest integer, halves away from zero."""
    _finite(value, "Amount")
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP, context=_EXACT))


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
        if isinstance(amount, float | bool) or not isinstance(amount, Decimal | str | int):
            raise TypeError(f"Money takes a Decimal, a string or an int, not {amount!r}")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise ValueError(f"Not an amount: {amount!r}") from None
        exponent = currency_exponent(currency)
        scaled = _finite(value, "Amount").scaleb(exponent, context=_EXACT)
        return cls(round_half_up(scaled), currency)

    # --- views ----------------------------------------------------------------------
    @property
    def amount(self) -> Decimal:
        """The amount in major units, exact."""
        return Decimal(self.minor).scaleb(-currency_exponent(self.currency), context=_EXACT)

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
        if isinstance(factor, bool) or not isinstance(factor, int | Decimal):
            raise TypeError(f"Money multiplies by an int or a Decimal, not {factor!r}")
        if isinstance(factor, int):
            return Money(self.minor * factor, self.currency)
        product = _EXACT.multiply(Decimal(self.minor), _finite(factor, "Factor"))
        return Money(round_half_up(product), self.currency)

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

    def allocate(self, weights: Sequence[int | Decimal]) -> list[Money]:
        """Split over parts in proportion to weights, losing no minor unit.

        Each part gets the floor of its share; the minor units left over go one each to
        the parts with the largest remainders (ties: the earlier part), so the parts always
        add up to the whole and each is less than one minor unit from its exact share.
        """
        if not weights:
            raise ValueError("allocate needs at least one weight")
        ratios = []
        for weight in weights:
            if isinstance(weight, bool) or not isinstance(weight, int | Decimal):
                raise TypeError(f"allocation weights are ints or Decimals, not {weight!r}")
            if isinstance(weight, Decimal):
                _finite(weight, "Allocation weight")
            if weight < 0:
                raise ValueError("allocation weights cannot be negative")
            ratios.append(weight.as_integer_ratio())
        # Whole-number weights over one common denominator, so shares and remainders are
        # exact integers: a share computed in Decimal could round up across a whole unit.
        denominator = math.lcm(*(d for _, d in ratios))
        scaled = [n * (denominator // d) for n, d in ratios]
        total = sum(scaled)
        if total == 0:
            raise ValueError("allocation weights cannot all be zero")
        sign = -1 if self.minor < 0 else 1
        whole = abs(self.minor)
        shares = [divmod(whole * w, total) for w in scaled]
        parts = [floor for floor, _ in shares]
        left = whole - sum(parts)
        by_remainder = sorted(range(len(shares)), key=lambda i: (-shares[i][1], i))
        for i in by_remainder[:left]:
            parts[i] += 1
        return [Money(sign * part, self.currency) for part in parts]

    def split(self, parts: int) -> list[Money]:
        """Split into `parts` near-equal amounts that add up to the whole."""
        if isinstance(parts, bool) or not isinstance(parts, int):
            raise TypeError(f"split needs a whole number of parts, not {parts!r}")
        if parts < 1:
            raise ValueError("split needs at least one part")
        return self.allocate([1] * parts)


def money_sum(amounts: Iterable[Money], currency: str) -> Money:
    """The sum of amounts of one currency (zero for none)."""
    total = Money.zero(currency)
    for amount in amounts:
        total += amount
    return total
