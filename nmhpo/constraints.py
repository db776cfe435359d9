"""Outcome constraints such as ``area_mm2 <= 2.0``: parsed strictly, scored the Optuna way.

A constraint comes from a study file or the command line, so its text is untrusted: it is
matched against one regular expression (a metric name, an operator, a finite number) and
never evaluated. ``Constraint.violation`` returns the value Optuna expects from
``trial.set_constraint``: zero or less means feasible, and larger means further off.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, cast

from nmhpo.errors import ConfigError

Operator = Literal["<=", ">=", "<", ">"]

OPERATORS: tuple[Operator, ...] = ("<=", ">=", "<", ">")

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
# Two-character operators come first in the alternation so "<=" is never read as "<" + "=".
_CONSTRAINT = re.compile(
    rf"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op><=|>=|<|>)\s*(?P<bound>{_NUMBER})\s*",
    re.ASCII,  # no Unicode digits or spaces: the text means what it shows
)
_EXPECTED = "expected '<metric> <op> <number>' with <op> one of <=, >=, <, >"


@dataclass(frozen=True)
class Constraint:
    """One bound on one metric, e.g. ``Constraint("area_mm2", "<=", 2.0, "area_mm2 <= 2.0")``.

    ``text`` is the canonical spelling (``"<metric> <op> <number>"`` as written) for reports.
    """

    metric: str
    op: Operator
    bound: float
    text: str

    def violation(self, metrics: Mapping[str, float]) -> float:
        """How far ``metrics`` is from satisfying the constraint (<= 0: feasible).

        ``value - bound`` for ``<=`` and ``bound - value`` for ``>=``, in the metric's unit, so
        Optuna's constrained samplers can tell a near miss from a far one. A strict operator
        measures against the nearest float inside the bound (``np.nextafter``), so a value equal
        to the bound gets a tiny positive violation instead of counting as feasible. A NaN metric
        (a broken measurement) is infinitely infeasible: Optuna rejects NaN constraint values.

        Raises:
            ConfigError: ``metrics`` has no value for this constraint's metric.
        """
        if self.metric not in metrics:
            known = ", ".join(sorted(metrics)) or "none"
            raise ConfigError(
                f"constraint {self.text!r}: the trial recorded no metric {self.metric!r}; "
                f"it has {known}"
            )
        value = float(metrics[self.metric])
        if math.isnan(value):
            return math.inf
        if self.op == "<=":
            return value - self.bound
        if self.op == "<":
            return value - math.nextafter(self.bound, -math.inf)
        if self.op == ">=":
            return self.bound - value
        return math.nextafter(self.bound, math.inf) - value

    def __str__(self) -> str:
        return self.text


def parse_constraint(text: str, allowed_metrics: Collection[str]) -> Constraint:
    """Parse ``"<metric> <op> <number>"`` (e.g. ``"area_mm2 <= 2.0"``, ``"accuracy >= 9e-1"``).

    Only a regular expression reads the text; nothing is evaluated, so a hostile string can do
    no more than fail to parse.

    Args:
        text: The constraint as the user wrote it.
        allowed_metrics: Metric names the study records (e.g. ``nmhpo.registry.METRICS`` plus
            the task's metrics).

    Raises:
        ConfigError: The text is not exactly one metric, one operator and one finite number,
            or names a metric outside ``allowed_metrics``.
    """
    if not isinstance(text, str):
        raise ConfigError(f"constraint: {_EXPECTED}; got {type(text).__name__} {text!r}")
    match = _CONSTRAINT.fullmatch(text)  # fullmatch: no trailing newline slips past
    if match is None:
        raise ConfigError(f"constraint {text!r}: {_EXPECTED}, e.g. 'area_mm2 <= 2.0'")
    metric, op, bound_text = match["metric"], match["op"], match["bound"]
    if metric not in allowed_metrics:
        known = ", ".join(sorted(allowed_metrics)) or "none"
        raise ConfigError(
            f"constraint {text!r}: expected a metric the study records ({known}); got {metric!r}"
        )
    bound = float(bound_text)
    if not math.isfinite(bound):  # e.g. 1e999 overflows to inf
        raise ConfigError(f"constraint {text!r}: expected a finite bound; got {bound_text}")
    return Constraint(
        metric=metric,
        op=cast(Operator, op),  # the regex admits only OPERATORS
        bound=bound,
        text=f"{metric} {op} {bound_text}",
    )


def parse_constraints(texts: Iterable[str], allowed_metrics: Collection[str]) -> list[Constraint]:
    """Parse each text with `parse_constraint`; the first malformed one raises."""
    return [parse_constraint(text, allowed_metrics) for text in texts]


def violations(constraints: Iterable[Constraint], metrics: Mapping[str, float]) -> list[float]:
    """Each constraint's violation for one trial's metrics, in order (for ``set_constraint``)."""
    return [c.violation(metrics) for c in constraints]
