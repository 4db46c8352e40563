"""Epsilon parsing and labels: every way people write epsilons, and every way to get it wrong."""

from __future__ import annotations

import pytest

from lab.core.epsilon import check_eps, default_eps, format_eps, parse_eps, parse_number
from lab.core.errors import LabError
from lab.models import ModelInfo


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.3", [0.3]),
        (" 0.3 ", [0.3]),
        ("0", [0.0]),
        ("1e-3", [0.001]),
        ("0,0.1,0.2,0.3", [0.0, 0.1, 0.2, 0.3]),
        ("0:0.3:0.05", [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]),  # inclusive end, no float drift
        ("0:0.3:0.1", [0.0, 0.1, 0.2, 0.3]),  # 3 * 0.1 != 0.3 in floats; the end is still there
        ("0.1:0.1:0.05", [0.1]),
        ("0:0.25:0.1", [0.0, 0.1, 0.2]),  # the end is not on the grid: stop before it
        ("8/255", [8 / 255]),
        ("0,2/255,8/255", [0.0, 2 / 255, 8 / 255]),
        ("0:8/255:2/255", [0.0, 2 / 255, 4 / 255, 6 / 255, 8 / 255]),  # the same floats as written out
        ("0.5/255", [0.5 / 255]),
        ("0, 0:0.2:0.1, 8/255", [0.0, 0.0, 0.1, 0.2, 8 / 255]),  # order kept; check_eps sorts
        ("-0.1", [-0.1]),  # syntactically fine: check_eps refuses it
    ],
)
def test_parse_eps_good(text: str, expected: list[float]) -> None:
    assert parse_eps(text) == expected  # exact equality, not approx


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("abc", "epsilon 'abc' is not a number; use e.g. 0.3, 8/255 or 0:0.3:0.05"),
        ("", "no epsilon given"),
        ("0,,0.1", "has an empty entry"),
        ("0.1,x", "epsilon 'x' in '0.1,x' is not a number"),
        ("nan", "is not a number"),
        ("inf", "is not a number"),
        ("8/0", "divides by zero"),
        ("8/2/1", "is not a number"),
        ("0:0.3", "must be start:stop:step"),
        ("0:0.3:0", "needs a step > 0"),
        ("0:0.3:-0.1", "needs a step > 0"),
        ("0.3:0:0.1", "ends below its start"),
        ("0:1:1e-9", "at most 1000"),
        ("1e400", "too large"),
    ],
)
def test_parse_eps_bad(text: str, fragment: str) -> None:
    with pytest.raises(LabError, match=None) as err:
        parse_eps(text)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("text", "norm"), [("-0.1", "linf"), ("2", "linf"), ("0,1.5", "linf"), ("-1", "l2")])
def test_out_of_range_eps_is_refused_by_check_eps(text: str, norm: str) -> None:
    with pytest.raises(LabError):
        check_eps(parse_eps(text), norm)


@pytest.mark.parametrize(
    ("value", "style", "label"),
    [
        (0.0, "auto", "0"),
        (0.3, "auto", "0.3"),
        (0.05, "auto", "0.05"),
        (0.2, "auto", "0.2"),  # 0.2 = 51/255, but a short decimal reads better
        (8 / 255, "auto", "8/255"),
        (2 / 255, "auto", "2/255"),
        (0.1234567, "auto", "0.1235"),
        (1.5, "auto", "1.5"),
        (0.2, "255", "51/255"),
        (8 / 255, "255", "8/255"),
        (0.0, "255", "0"),
        (0.5, "255", "0.5"),  # 127.5/255 is not a whole level
        (8 / 255, "decimal", "0.03137"),
        (0.3, "decimal", "0.3"),
    ],
)
def test_format_eps(value: float, style: str, label: str) -> None:
    assert format_eps(value, style) == label


def test_parse_number() -> None:
    assert parse_number("2/255") == 2 / 255
    with pytest.raises(LabError, match="alpha 'fast' is not a number"):
        parse_number("fast", what="alpha")


def _info(shape: tuple[int, int, int]) -> ModelInfo:
    c = shape[0]
    return ModelInfo("m", "d", shape, ("a", "b"), (0.5,) * c, (0.5,) * c)


@pytest.mark.parametrize(
    ("shape", "norm", "eps"),
    [((1, 28, 28), "linf", 0.3), ((1, 28, 28), "l2", 1.5), ((3, 32, 32), "linf", 8 / 255), ((3, 32, 32), "l2", 0.5)],
)
def test_default_eps(shape: tuple[int, int, int], norm: str, eps: float) -> None:
    assert default_eps(_info(shape), norm) == eps
    check_eps([eps], norm)
