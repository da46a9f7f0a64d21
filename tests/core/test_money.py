"""Money: exact minor units, half-up rounding, locale formatting and lossless splitting."""

import decimal
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from clientbase.core.money import CurrencyMismatch, Money, currency_exponent, money_sum

CURRENCIES = ["EUR", "JPY", "BHD", "USD", "VND", "RUB"]
NBSP = "\xa0"
NNBSP = "\u202f"

currencies = st.sampled_from(CURRENCIES)
minors = st.integers(min_value=-(10**18), max_value=10**18)


def money(currency: str = "EUR"):
    """Amounts of one currency, as large as a BigIntegerField column holds."""
    return minors.map(lambda minor: Money(minor, currency))


def half_up(value: Fraction) -> int:
    """The oracle: nearest integer, halves away from zero, in exact rational arithmetic."""
    magnitude = abs(value)
    rounded = int(magnitude + Fraction(1, 2))
    return rounded if value >= 0 else -rounded


# --- currencies -------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "digits"), [("EUR", 2), ("JPY", 0), ("BHD", 3), ("VND", 0)])
def test_currency_exponent_is_the_currency_minor_unit(currency, digits):
    """Babel's precision decides how many minor units make a major one."""
    assert currency_exponent(currency) == digits


@pytest.mark.parametrize("code", ["ABC", "eur", "", "EURO"])
def test_unknown_currency_is_refused(code):
    """A code Babel does not know is refused wherever it enters."""
    with pytest.raises(ValueError, match="Unknown currency code"):
        Money(100, code)
    with pytest.raises(ValueError, match="Unknown currency code"):
        Money.from_decimal(Decimal("1.00"), code)


# --- construction -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("0.125"), "EUR", 13),
        (Decimal("-0.125"), "EUR", -13),
        (Decimal("0.124"), "EUR", 12),
        (Decimal("-0.124"), "EUR", -12),
        (Decimal("0.135"), "EUR", 14),
        (Decimal("12.345"), "EUR", 1235),
        (Decimal("0.5"), "JPY", 1),
        (Decimal("-0.5"), "JPY", -1),
        (Decimal("2.4999"), "JPY", 2),
        (Decimal("1500"), "JPY", 1500),
        (Decimal("1.2345"), "BHD", 1235),
        (Decimal("-1.2345"), "BHD", -1235),
        (Decimal("1.2344"), "BHD", 1234),
        (Decimal("0.0005"), "BHD", 1),
        ("19.99", "EUR", 1999),
        ("1E+3", "EUR", 100000),
        (12, "EUR", 1200),
        (-7, "BHD", -7000),
        (Decimal("-0"), "EUR", 0),
    ],
)
def test_from_decimal_rounds_half_up_to_the_minor_unit(amount, currency, minor):
    """Major units become minor units, halves rounded away from zero."""
    assert Money.from_decimal(amount, currency) == Money(minor, currency)


def test_from_decimal_rounds_once_beyond_28_digits():
    """More digits than the default decimal context keeps are not rounded twice."""
    # Rounded first to 28 digits this reads 12.50 cents and would become 13.
    amount = Decimal("0.12499999999999999999999999999999")

    assert Money.from_decimal(amount, "EUR").minor == 12
    assert Money.from_decimal(amount.copy_negate(), "EUR").minor == -12


@pytest.mark.parametrize("amount", [1.5, 0.1, True, None, [1]])
def test_from_decimal_refuses_floats_and_other_types(amount):
    """A float (or anything not a Decimal, str or int) never becomes money."""
    with pytest.raises(TypeError):
        Money.from_decimal(amount, "EUR")


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "abc", "", "1E+999999999"])
def test_from_decimal_refuses_what_is_not_a_finite_amount(amount):
    """Not-a-number, infinities, text and absurd exponents are a ValueError."""
    with pytest.raises(ValueError):
        Money.from_decimal(amount, "EUR")


@pytest.mark.parametrize("minor", [1.0, Decimal(1), "1", True, None])
def test_minor_units_must_be_an_int(minor):
    """Money holds a whole number of minor units, nothing else."""
    with pytest.raises(TypeError, match=r"Money\.minor must be an int"):
        Money(minor, "EUR")


def test_money_is_a_frozen_hashable_value():
    """Equal amounts are one value; different currencies are never equal."""
    price = Money(500, "EUR")

    assert price == Money(500, "EUR")
    assert price != Money(500, "USD")
    assert price != 500
    assert {price, Money(500, "EUR"), Money(500, "USD")} == {price, Money(500, "USD")}
    with pytest.raises(AttributeError):
        price.minor = 1


# --- views ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "amount", "text"),
    [
        (Money(1235, "EUR"), Decimal("12.35"), "12.35 EUR"),
        (Money(-5, "EUR"), Decimal("-0.05"), "-0.05 EUR"),
        (Money(0, "EUR"), Decimal("0.00"), "0.00 EUR"),
        (Money(1500, "JPY"), Decimal("1500"), "1500 JPY"),
        (Money(1, "BHD"), Decimal("0.001"), "0.001 BHD"),
        (Money(10**30 + 1, "EUR"), Decimal("10000000000000000000000000000.01"), None),
    ],
)
def test_amount_is_the_exact_major_value(money, amount, text):
    """The major-unit view is exact, whatever the number of digits."""
    assert money.amount == amount
    assert str(money.amount) == str(amount)
    if text is not None:
        assert str(money) == text


@pytest.mark.parametrize(
    ("money", "locale", "text"),
    [
        (Money(123450, "EUR"), "en", "€1,234.50"),
        (Money(123450, "EUR"), "fr", f"1{NNBSP}234,50{NBSP}€"),
        (Money(123450, "EUR"), "ru", f"1{NBSP}234,50{NBSP}€"),
        (Money(123450, "EUR"), "vi", f"1.234,50{NBSP}€"),
        (Money(-123450, "EUR"), "en", "-€1,234.50"),
        (Money(-123450, "EUR"), "fr", f"-1{NNBSP}234,50{NBSP}€"),
        (Money(0, "EUR"), "fr", f"0,00{NBSP}€"),
        (Money(1234567, "JPY"), "en", "¥1,234,567"),
        (Money(1234567, "JPY"), "ru", f"1{NBSP}234{NBSP}567{NBSP}¥"),
        (Money(1234567, "BHD"), "en", "BHD1,234.567"),
        (Money(1234567, "BHD"), "vi", f"1.234,567{NBSP}BHD"),
        (Money(12345000, "VND"), "vi", f"12.345.000{NBSP}₫"),
        (Money(12345000, "VND"), "en", "₫12,345,000"),
        (Money(123450, "RUB"), "ru", f"1{NBSP}234,50{NBSP}₽"),
        (Money(123450, "RUB"), "en", "RUB1,234.50"),
        (Money(5, "USD"), "en", "$0.05"),
        (Money(5, "USD"), "fr", f"0,05{NBSP}$US"),
        (Money(5, "USD"), "vi", f"0,05{NBSP}US$"),
    ],
)
def test_format_follows_the_locale(money, locale, text):
    """Digits, separators and symbol are placed as each shipped language writes them."""
    assert money.format(locale) == text


def test_format_defaults_to_english():
    """Without a locale the amount reads as in English."""
    assert Money(99, "EUR").format() == "€0.99"


# --- arithmetic -------------------------------------------------------------------------


def test_add_subtract_negate_and_abs():
    """Sums and differences are exact in minor units."""
    a, b = Money(1050, "EUR"), Money(-75, "EUR")

    assert a + b == Money(975, "EUR")
    assert a - b == Money(1125, "EUR")
    assert -a == Money(-1050, "EUR")
    assert abs(b) == Money(75, "EUR")
    assert bool(Money.zero("EUR")) is False
    assert bool(b) is True


@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
)
def test_different_currencies_cannot_be_combined(combine):
    """Adding or ordering EUR against USD is a CurrencyMismatch, also a ValueError."""
    with pytest.raises(CurrencyMismatch, match="EUR and USD cannot be combined"):
        combine(Money(100, "EUR"), Money(100, "USD"))
    assert issubclass(CurrencyMismatch, ValueError)


@pytest.mark.parametrize("other", [1, Decimal("1"), "1"])
def test_money_does_not_combine_with_plain_numbers(other):
    """Adding a bare number is a TypeError: its currency is unknown."""
    with pytest.raises(TypeError, match="Cannot combine Money with"):
        Money(100, "EUR") + other
    with pytest.raises(TypeError, match="Cannot combine Money with"):
        assert Money(100, "EUR") < other


def test_comparisons_order_amounts_of_one_currency():
    """Amounts of one currency order by value and sort."""
    small, big = Money(-5, "JPY"), Money(3, "JPY")

    assert (small < big, small <= big, small > big, small >= big) == (True, True, False, False)
    assert (big <= Money(3, "JPY"), big >= Money(3, "JPY")) == (True, True)
    assert sorted([big, small, Money(0, "JPY")]) == [small, Money(0, "JPY"), big]


@pytest.mark.parametrize(
    ("money", "factor", "product"),
    [
        (Money(999, "EUR"), Decimal("0.125"), Money(125, "EUR")),  # 124.875
        (Money(-999, "EUR"), Decimal("0.125"), Money(-125, "EUR")),
        (Money(10, "EUR"), Decimal("0.05"), Money(1, "EUR")),  # 0.5 exactly: up
        (Money(10, "EUR"), Decimal("-0.05"), Money(-1, "EUR")),  # -0.5: away from zero
        (Money(10, "EUR"), Decimal("0.0499"), Money(0, "EUR")),
        (Money(14, "EUR"), Decimal("0.0357"), Money(0, "EUR")),  # 0.4998, not 0.50 then 1
        (Money(1999, "EUR"), Decimal("3"), Money(5997, "EUR")),
        (Money(1999, "EUR"), Decimal("1.19"), Money(2379, "EUR")),  # 2378.81
        (Money(1999, "EUR"), 3, Money(5997, "EUR")),
        (Money(1999, "EUR"), -2, Money(-3998, "EUR")),
        (Money(333, "JPY"), Decimal("0.5"), Money(167, "JPY")),
        (Money(1235, "BHD"), Decimal("0.1"), Money(124, "BHD")),  # 123.5
    ],
)
def test_multiply_rounds_half_up_once(money, factor, product):
    """A quantity or rate times an amount is rounded half-up once, to the minor unit."""
    assert money * factor == product
    assert factor * money == product


def test_multiply_is_exact_beyond_28_digits():
    """The product is not rounded to the default 28 digits before the half-up rounding."""
    # The exact product is 10**20 + 0.49999999999, which 28 digits would read as ...0.5.
    factor = Decimal("1.00000000000000000000049999999999")

    assert (Money(10**20, "EUR") * factor).minor == 10**20


@pytest.mark.parametrize("factor", [1.5, True, "2", Money(2, "EUR"), Fraction(1, 2)])
def test_multiply_refuses_floats_and_other_types(factor):
    """Only an int or a Decimal multiplies money."""
    with pytest.raises(TypeError, match="Money multiplies by an int or a Decimal"):
        Money(100, "EUR") * factor


@pytest.mark.parametrize("factor", [Decimal("NaN"), Decimal("Infinity"), Decimal("1E+999999999")])
def test_multiply_refuses_non_finite_factors(factor):
    """A factor that is not a finite, sane number is a ValueError."""
    with pytest.raises(ValueError):
        Money(100, "EUR") * factor


def test_money_sum():
    """The sum of amounts of one currency; zero for none; no mixing."""
    assert money_sum([Money(1, "EUR"), Money(2, "EUR"), Money(-4, "EUR")], "EUR") == Money(
        -1, "EUR"
    )
    assert money_sum([], "BHD") == Money(0, "BHD")
    with pytest.raises(CurrencyMismatch):
        money_sum([Money(1, "EUR"), Money(1, "USD")], "EUR")


# --- allocate and split -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "weights", "parts"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (-100, [1, 1, 1], [-34, -33, -33]),
        (100, [1, 2], [33, 67]),  # 33.33 and 66.67: the larger remainder gets the cent
        (-100, [1, 2], [-33, -67]),
        (1, [1, 1], [1, 0]),  # a tie goes to the earlier part
        (2, [1, 1, 1], [1, 1, 0]),
        (0, [1, 2], [0, 0]),
        (100, [0, 1], [0, 100]),
        (100, [1, 0, 1], [50, 0, 50]),
        (5, [Decimal("0.5"), Decimal("0.25"), Decimal("0.25")], [3, 1, 1]),
        (1000, [Decimal("19.99"), 5, Decimal("0.01")], [800, 200, 0]),  # 799.6, 200, 0.4
        (7, [3], [7]),
        # Shares a hair below a whole unit: 28-digit arithmetic rounds them up to it.
        (34 * 10**30 - 1, [1, 10**30 - 1], [34, 34 * 10**30 - 35]),
    ],
)
def test_allocate_exact_values(minor, weights, parts):
    """Parts get their floor share, leftover units go by largest remainder."""
    result = Money(minor, "EUR").allocate(weights)

    assert result == [Money(part, "EUR") for part in parts]
    assert sum(part.minor for part in result) == minor


@pytest.mark.parametrize(
    ("weights", "error"),
    [
        ([], ValueError),
        ([0, 0], ValueError),
        ([Decimal("0"), 0], ValueError),
        ([-1, 2], ValueError),
        ([Decimal("-0.5"), 1], ValueError),
        ([Decimal("NaN"), 1], ValueError),
        ([Decimal("Infinity"), 1], ValueError),
        ([0.5, 0.5], TypeError),
        ([True, 1], TypeError),
        (["1", 1], TypeError),
    ],
)
def test_allocate_refuses_bad_weights(weights, error):
    """No, zero-only, negative, non-finite or float weights are refused."""
    with pytest.raises(error):
        Money(100, "EUR").allocate(weights)


@pytest.mark.parametrize(
    ("minor", "count", "parts"),
    [
        (100, 3, [34, 33, 33]),
        (-100, 3, [-34, -33, -33]),
        (10, 4, [3, 3, 2, 2]),
        (2, 5, [1, 1, 0, 0, 0]),
        (9, 1, [9]),
    ],
)
def test_split_exact_values(minor, count, parts):
    """Near-equal parts, larger ones first."""
    assert Money(minor, "JPY").split(count) == [Money(part, "JPY") for part in parts]


@pytest.mark.parametrize(("count", "error"), [(0, ValueError), (-1, ValueError), (2.0, TypeError)])
def test_split_refuses_no_parts(count, error):
    """Splitting into nothing, or a fraction of parts, is refused."""
    with pytest.raises(error):
        Money(100, "EUR").split(count)


# --- properties -------------------------------------------------------------------------

weights = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12) | st.lists(
    st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=12,
)


@given(minor=minors | st.integers(min_value=-(10**30), max_value=10**30), weights=weights)
def test_allocate_sums_to_the_whole_and_stays_within_a_unit(minor, weights):
    """The parts add up exactly and each is less than one minor unit from its share."""
    assume(sum(weights) > 0)

    parts = Money(minor, "EUR").allocate(weights)

    assert sum(part.minor for part in parts) == minor
    total = sum(Fraction(w) for w in weights)
    for part, weight in zip(parts, weights, strict=True):
        share = Fraction(minor) * Fraction(weight) / total
        assert abs(part.minor - share) < 1
        assert part.minor * minor >= 0  # never the opposite sign of the whole
        if weight == 0:
            assert part.minor == 0


@given(minor=minors, count=st.integers(min_value=1, max_value=60))
def test_split_parts_differ_by_at_most_one(minor, count):
    """Split parts add up, differ by at most one minor unit, and the larger come first."""
    parts = [part.minor for part in Money(minor, "EUR").split(count)]

    assert len(parts) == count
    assert sum(parts) == minor
    assert max(parts) - min(parts) <= 1
    assert [abs(p) for p in parts] == sorted((abs(p) for p in parts), reverse=True)


@given(currency=currencies, a=minors, b=minors)
def test_add_and_subtract_are_inverse(currency, a, b):
    """(a + b) - b is a, and a + (-a) is zero."""
    x, y = Money(a, currency), Money(b, currency)

    assert (x + y) - y == x
    assert x - y == x + (-y)
    assert x + (-x) == Money.zero(currency)


@given(
    currency=currencies,
    amount=st.decimals(
        min_value=-(10**15), max_value=10**15, allow_nan=False, allow_infinity=False
    ),
)
def test_from_decimal_is_within_half_a_minor_unit(currency, amount):
    """The rounded amount is the nearest minor unit; an exact half goes away from zero."""
    exact = Fraction(amount) * 10 ** currency_exponent(currency)

    minor = Money.from_decimal(amount, currency).minor

    assert abs(minor - exact) <= Fraction(1, 2)
    if abs(minor - exact) == Fraction(1, 2):
        assert abs(minor) > abs(exact)
    assert minor == half_up(exact)


@given(
    # Beyond a BigIntegerField too, so products run past the default 28 decimal digits.
    minor=minors | st.integers(min_value=-(10**30), max_value=10**30),
    factor=st.decimals(min_value=-1000, max_value=1000, allow_nan=False, allow_infinity=False)
    | st.decimals(min_value=-10, max_value=10, places=12),
)
def test_multiplication_matches_decimal_quantize_half_up(minor, factor):
    """Amount times a Decimal is the exact product quantized once with ROUND_HALF_UP."""
    with decimal.localcontext(prec=200):
        expected = (Decimal(minor) * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP)

    assert (Money(minor, "EUR") * factor).minor == int(expected)
    assert int(expected) == half_up(Fraction(minor) * Fraction(factor))
