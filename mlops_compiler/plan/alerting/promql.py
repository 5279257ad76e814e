"""The languages spec values land in: PromQL string literals (label matchers) and Prometheus's
Go templates (alert labels and annotations, which Prometheus expands); the numbers both print;
and the text templates of the alert tables, read once into parts so that a rule's annotation
and its test's expected expansion come from the same parts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from string import Formatter
from typing import Any

# The endpoint labels of the server's prediction requests (the runtime's
# _PREDICTION_ENDPOINTS: /predict, /invocations, /v2/models/{name}/infer). The live error rate
# and latency are the predictions', as the monitor's are: the scrapes of /metrics and the
# probes of /ready, /ping and /health are not predictions, and a not-ready server's 503s to
# its probes must not page (nor its fast 200s dilute a real error rate or p99).
PREDICTION_ENDPOINTS = "/predict|/invocations|/v2/models/.+/infer"


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal: nothing in `value` can end the label matcher."""
    out = []
    for ch in value:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def matcher(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f"{k}={promql_string(v)}" for k, v in labels.items()) + "}"


def _predictions(name: str, status: str) -> str:
    """The selector of the prediction requests of job `name` whose status matches `status`
    (a label matcher's operator and value, e.g. `=~"5.."`)."""
    return (
        "{job=" + promql_string(name) + ",endpoint=~" + promql_string(PREDICTION_ENDPOINTS)
        + ",status" + status + "}"
    )  # fmt: skip


def vocabulary(name: str) -> dict[str, str]:
    """What every template of the tables may name: the project and its series' selectors."""
    return {
        "name": name,
        "model": matcher({"model": name}),  # the monitor's gauges
        "job": matcher({"job": name}),  # the server's /metrics, by scrape job
        "server_errors": _predictions(name, '=~"5.."'),
        # The error rate's denominator: prediction requests less client errors (4xx), as the
        # monitor's error_rate: a flood of bad requests neither raises nor dilutes it.
        "answered": _predictions(name, '!~"4.."'),
        # The latency's requests: answered predictions (a 4xx or 5xx says nothing of how long
        # the model takes, and a not-ready server's 503s are fast).
        "served": _predictions(name, '="200"'),
    }


def template_literal(text: str) -> str:
    """Text for a Prometheus (Go) template that expands to itself: only `{{` opens an action,
    so each one is printed by an action of its own."""
    return text.replace("{{", '{{ "{{" }}')


def bound(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"alert bound {value!r} is not a finite number")
    return float(value)


def number(value: float) -> str:
    """A number as PromQL, the series notation and readers of the annotations write it."""
    value = bound(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class _Value:
    """`$value` formatted by printf; Go and Python round these verbs alike."""

    verb: str


@dataclass(frozen=True)
class _Label:
    """A label of the alerting series, e.g. the drifted feature."""

    name: str


Part = str | _Value | _Label


def parts(text: str, facts: Mapping[str, str]) -> list[Part]:
    """`text` with `{fact}` filled in and `{$value:<printf verb>}`, `{$labels.<label>}` kept
    for Prometheus. Each fact is a part of its own, escaped on its own as the literal text
    around it is."""
    out: list[Part] = []
    for literal, field, verb, _ in Formatter().parse(text):
        if literal:
            out.append(literal)
        if field is None:
            continue
        if field == "$value":
            out.append(_Value(verb or ""))
        elif field.startswith("$labels."):
            out.append(_Label(field.removeprefix("$labels.")))
        else:
            out.append(facts[field])
    return out


def template(text: Sequence[Part]) -> str:
    """The Prometheus template of an annotation or label."""
    out = []
    for part in text:
        if isinstance(part, _Value):
            out.append(f'{{{{ $value | printf "{part.verb}" }}}}')
        elif isinstance(part, _Label):
            out.append(f"{{{{ $labels.{part.name} }}}}")
        else:
            out.append(template_literal(part))
    return "".join(out)


def expanded(text: Sequence[Part], value: float, labels: Mapping[str, str]) -> str:
    """What Prometheus expands `template(text)` to for an alert of `value` and `labels`."""
    out = []
    for part in text:
        if isinstance(part, _Value):
            out.append(part.verb % value)
        elif isinstance(part, _Label):
            out.append(labels[part.name])
        else:
            out.append(part)
    return "".join(out)
