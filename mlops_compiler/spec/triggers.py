"""The short string form of a rollback trigger (`error_rate > 0.05`), read into its mapping."""

from __future__ import annotations

import math
import re

from mlops_compiler.spec.model import RollbackTrigger

FORMS = (
    "performance, error_rate, latency or drift, each with an optional bound "
    "('performance < 0.85', 'error_rate > 0.05', 'latency > 80', 'drift > 0.3'), 'kpi NAME', "
    "or a mapping such as {on: performance, min: 0.9}"
)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_BOUNDED = re.compile(rf"^(performance|error_rate|latency|drift)(?:\s*([<>])\s*({_NUMBER}))?$")
_KPI = re.compile(r"^kpi\s+(\S{1,63})$")


def parse_trigger(text: str) -> RollbackTrigger:
    """`latency > 80` -> {on: latency, max: 80}; `<` gives min. Whether the bound's side fits
    the signal is a rule of its own, so a wrong side is reported with its reason."""
    text = text.strip()
    kpi = _KPI.match(text)
    if kpi:
        return RollbackTrigger(on="kpi", kpi=kpi.group(1))
    match = _BOUNDED.match(text)
    if not match:
        raise ValueError(f"unknown trigger {text!r}; use {FORMS}")
    on, op, value = match.groups()
    fields: dict[str, object] = {"on": on}
    if op is not None:
        bound = float(value)
        if not math.isfinite(bound):
            raise ValueError(f"the bound of {text!r} is not a finite number")
        fields["min" if op == "<" else "max"] = bound
    return RollbackTrigger.model_validate(fields)


def as_trigger(item: str | RollbackTrigger) -> RollbackTrigger:
    return parse_trigger(item) if isinstance(item, str) else item
