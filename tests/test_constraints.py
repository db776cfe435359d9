"""Outcome constraints: strict parsing (never eval) and Optuna-style violations."""

from __future__ import annotations

import math

import pytest

from nmhpo.constraints import Constraint, parse_constraint, parse_constraints, violations
from nmhpo.errors import ConfigError

ALLOWED = ("area_mm2", "accuracy", "energy_uj", "latency_ns")


@pytest.mark.parametrize(
    ("text", "metric", "op", "bound"),
    [
        ("area_mm2 <= 2.0", "area_mm2", "<=", 2.0),
        ("accuracy>=0.9", "accuracy", ">=", 0.9),
        ("  energy_uj < 1e-3 ", "energy_uj", "<", 1e-3),
        ("latency_ns > -2.5E+2", "latency_ns", ">", -250.0),
        ("area_mm2 <= .5", "area_mm2", "<=", 0.5),
        ("area_mm2 <= 5.", "area_mm2", "<=", 5.0),
        ("area_mm2 <= +3", "area_mm2", "<=", 3.0),
    ],
)
def test_parse_valid(text: str, metric: str, op: str, bound: float) -> None:
    c = parse_constraint(text, ALLOWED)
    assert (c.metric, c.op, c.bound) == (metric, op, bound)
    assert c.text == f"{metric} {op} {text.split(op)[1].strip()}"
    assert str(c) == c.text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "area_mm2",
        "area_mm2 <=",
        "<= 2",
        "area_mm2 == 2",
        "area_mm2 = 2",
        "area_mm2 =< 2",
        "area_mm2 <== 2",
        "area_mm2 != 2",
        "area_mm2 <= __import__('os')",
        "__import__('os').system('touch /tmp/pwned') <= 1",
        "area_mm2 <= 2; import os",
        "area_mm2 <= 2 or True",
        "area_mm2 <= 2 <= 3",
        "area_mm2 <= 2 junk",
        "area_mm2 <= 2\nimport os",
        "1 <= 2",
        "area_mm2 <= nan",
        "area_mm2 <= inf",
        "area_mm2 <= -inf",
        "area_mm2 <= 1e999",
        "area_mm2 <= 1_000",
        "area_mm2 <= 0x10",
        "area_mm2 <= 2e",
        "area_mm2 <= \u0662",  # an Arabic-Indic digit two: float() would accept it
        "area mm2 <= 2",
        "unknown_metric <= 2",
        "Area_mm2 <= 2",
    ],
)
def test_parse_rejects_with_one_line_that_says_what_was_expected(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_constraint(text, ALLOWED)
    message = str(info.value)
    assert "\n" not in message
    assert "expected" in message and repr(text) in message


def test_unknown_metric_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"area_mm2, energy_uj, latency_ns\); got 'foo'"):
        parse_constraint("foo <= 1", ALLOWED)


def test_non_string_is_rejected() -> None:
    with pytest.raises(ConfigError, match="expected"):
        parse_constraint(None, ALLOWED)  # type: ignore[arg-type]


def test_violation_follows_optuna_sign_convention() -> None:
    upper = parse_constraint("area_mm2 <= 2.0", ALLOWED)
    assert upper.violation({"area_mm2": 2.5}) == pytest.approx(0.5)
    assert upper.violation({"area_mm2": 1.5}) == pytest.approx(-0.5)
    assert upper.violation({"area_mm2": 2.0}) == 0.0  # on the bound: feasible
    lower = parse_constraint("accuracy >= 0.9", ALLOWED)
    assert lower.violation({"accuracy": 0.85}) == pytest.approx(0.05)
    assert lower.violation({"accuracy": 0.95}) == pytest.approx(-0.05)


def test_strict_operators_exclude_the_bound() -> None:
    below = parse_constraint("area_mm2 < 2", ALLOWED)
    assert below.violation({"area_mm2": 2.0}) > 0
    assert below.violation({"area_mm2": math.nextafter(2.0, 0.0)}) <= 0
    above = parse_constraint("accuracy > 0.5", ALLOWED)
    assert above.violation({"accuracy": 0.5}) > 0
    assert above.violation({"accuracy": math.nextafter(0.5, 1.0)}) <= 0


def test_nan_metric_is_infeasible_and_missing_metric_is_an_error() -> None:
    c = Constraint("area_mm2", "<=", 2.0, "area_mm2 <= 2.0")
    assert c.violation({"area_mm2": float("nan")}) == math.inf
    with pytest.raises(ConfigError, match="no metric 'area_mm2'; it has accuracy"):
        c.violation({"accuracy": 0.9})


def test_parse_constraints_and_violations_keep_order() -> None:
    cs = parse_constraints(["area_mm2 <= 2", "accuracy >= 0.9"], ALLOWED)
    assert [c.metric for c in cs] == ["area_mm2", "accuracy"]
    assert violations(cs, {"area_mm2": 3.0, "accuracy": 0.95}) == pytest.approx([1.0, -0.05])
    with pytest.raises(ConfigError, match="'accuracy == 1'"):
        parse_constraints(["area_mm2 <= 2", "accuracy == 1"], ALLOWED)
    assert parse_constraints([], ALLOWED) == []
