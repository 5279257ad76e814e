"""Rules that relate several fields of a valid spec; each finding keeps its own position."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator

from mlops_compiler.spec.estimator_params import ESTIMATOR_PARAMS
from mlops_compiler.spec.estimators import KNOWN_ESTIMATORS
from mlops_compiler.spec.metrics import HIGHER_IS_BETTER, METRICS_BY_TASK, UNIT_INTERVAL
from mlops_compiler.spec.model import RollbackTrigger, Spec
from mlops_compiler.spec.scalars import parse_threshold
from mlops_compiler.spec.triggers import as_trigger

Finding = tuple[tuple[str | int, ...], str]

NUMERIC_TYPES = {"int", "float", "bool"}
CATEGORICAL_TYPES = {"category", "str", "bool"}


def close_match(word: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: str, options: list[str]) -> str:
    close = close_match(word, options)
    return f" (did you mean {close!r}?)" if close else ""


def task_of(spec: Spec) -> str:
    """The declared task, else the known estimator's task."""
    if spec.model.task:
        return spec.model.task
    return KNOWN_ESTIMATORS.get(spec.model.estimator, "classification")


def check(spec: Spec) -> list[Finding]:
    return [
        *_columns(spec),
        *_features(spec),
        *_estimator(spec),
        *_gate(spec),
        *_operations(spec),
        *_rollback(spec),
        *_monitors(spec),
        *_batch(spec),
        *(_retrain(spec) if "retrain" in spec.model_fields_set else ()),
    ]


def _columns(spec: Spec) -> Iterator[Finding]:
    columns = spec.data.contract.columns
    names = list(columns)
    if spec.data.target not in columns:
        yield (
            ("data", "target"),
            f"target {spec.data.target!r} is not a contract column{suggest(spec.data.target, names)}",
        )
    for name, col in columns.items():
        loc: tuple[str | int, ...] = ("data", "contract", "columns", name)
        if col.min is not None and col.max is not None and col.min > col.max:
            yield (*loc, "min"), f"min {col.min} is greater than max {col.max}"
        if (col.min is not None or col.max is not None) and col.type not in {"int", "float"}:
            yield loc, f"min/max apply to int and float columns, not {col.type}"
        if col.values is not None:
            if col.type not in {"category", "str"}:
                yield (
                    (*loc, "values"),
                    f"allowed values apply to category/str columns, not {col.type}",
                )
            elif len({repr(v) for v in col.values}) != len(col.values):
                yield (*loc, "values"), "allowed values must be distinct"
        if col.max_null_fraction is not None and not col.nullable and col.max_null_fraction > 0:
            yield (*loc, "max_null_fraction"), "max_null_fraction > 0 needs nullable: true"


def declares_columns(spec: Spec) -> bool:
    """Whether the spec groups its feature columns itself (else they come from the contract)."""
    groups = {"numeric", "categorical", "passthrough"}
    return spec.features is not None and bool(spec.features.model_fields_set & groups)


def _features(spec: Spec) -> Iterator[Finding]:
    if spec.features is None or not declares_columns(spec):
        return
    columns = spec.data.contract.columns
    names = list(columns)
    seen: dict[str, str] = {}
    groups = (
        ("numeric", spec.features.numeric.columns, NUMERIC_TYPES),
        ("categorical", spec.features.categorical.columns, CATEGORICAL_TYPES),
        ("passthrough", spec.features.passthrough, NUMERIC_TYPES),
    )
    for group, cols, types in groups:
        for i, col in enumerate(cols):
            loc: tuple[str | int, ...] = (
                ("features", group, i)
                if group == "passthrough"
                else ("features", group, "columns", i)
            )
            if col not in columns:
                yield loc, f"{col!r} is not a contract column{suggest(col, names)}"
                continue
            if col == spec.data.target:
                yield loc, f"{col!r} is the target; it cannot also be a feature"
            elif col in seen:
                yield loc, f"{col!r} is already a {seen[col]} feature"
            elif columns[col].type not in types:
                yield (
                    loc,
                    f"{col!r} is a {columns[col].type} column; {group} features take {'/'.join(sorted(types))}",
                )
            seen[col] = group
    if not seen:
        yield ("features",), "no feature columns declared"


def _estimator(spec: Spec) -> Iterator[Finding]:
    model = spec.model
    known = KNOWN_ESTIMATORS.get(model.estimator)
    if known is None and not model.custom_estimator:
        yield (
            ("model", "estimator"),
            f"unknown estimator {model.estimator!r}{suggest(model.estimator, list(KNOWN_ESTIMATORS))}; "
            "set custom_estimator: true to use your own",
        )
    if known and model.task and model.task != known:
        yield ("model", "task"), f"{model.estimator} is a {known} estimator, not {model.task}"
    if known and not model.custom_estimator:
        # Caught here, a misspelt parameter fails in seconds instead of after loading the data.
        accepted = ESTIMATOR_PARAMS[model.estimator]
        for name in model.params:
            if name not in accepted:
                yield (
                    ("model", "params", name),
                    f"unknown parameter {name!r} for {model.estimator}"
                    f"{suggest(name, list(accepted))}",
                )
    if known is None and model.custom_estimator and model.task is None:
        yield ("model", "task"), "a custom estimator needs an explicit task"
    target = spec.data.contract.columns.get(spec.data.target)
    task = task_of(spec)
    if target is not None:
        if task == "regression" and target.type not in {"int", "float"}:
            yield ("data", "target"), f"regression needs a numeric target, not {target.type}"
        if task == "classification" and target.type == "float":
            yield ("data", "target"), "classification needs a discrete target, not float"
        if target.nullable:
            yield ("data", "target"), "the target column cannot be nullable"
    if spec.data.split.stratify and task == "regression":
        yield ("data", "split", "stratify"), "stratified splits apply to classification only"


def _gate(spec: Spec) -> Iterator[Finding]:
    task = task_of(spec)
    allowed = list(METRICS_BY_TASK[task])
    for section in ("metrics", "vs_champion"):
        for metric, text in getattr(spec.model.gate, section).items():
            loc: tuple[str | int, ...] = ("model", "gate", section, metric)
            if metric not in allowed:
                yield loc, f"{metric} is not a {task} metric; use one of {', '.join(allowed)}"
                continue
            threshold = parse_threshold(text)
            higher = HIGHER_IS_BETTER[metric]
            if section == "metrics" and metric in UNIT_INTERVAL and not 0 <= threshold.value <= 1:
                yield loc, f"{metric} lies in [0, 1]; {threshold.value} can never be met"
            if section == "vs_champion" and (threshold.op.startswith(">") != higher):
                better = "higher" if higher else "lower"
                want = ">=" if higher else "<="
                yield loc, f"{metric} is {better}-is-better: bound the change with {want}"
    perf = spec.monitors.performance
    if perf is not None and perf.metric not in allowed:
        yield (
            ("monitors", "performance", "metric"),
            f"{perf.metric} is not a {task} metric; use one of {', '.join(allowed)}",
        )
    elif perf is not None:
        want, other = ("min", "max") if HIGHER_IS_BETTER[perf.metric] else ("max", "min")
        if getattr(perf, want) is None or getattr(perf, other) is not None:
            better = "higher" if want == "min" else "lower"
            yield (
                ("monitors", "performance", "metric"),
                f"{perf.metric} is {better}-is-better: bound it with {want} (and not {other})",
            )


def _operations(spec: Spec) -> Iterator[Finding]:
    deploy = spec.deploy
    auto = deploy.autoscale
    if auto is not None and auto.min > auto.max:
        yield ("deploy", "autoscale", "min"), f"min {auto.min} is greater than max {auto.max}"
    if deploy.target != "kubernetes":
        # These run on a cluster; one machine has no autoscaler, KServe or pipeline engine.
        for field, value in (
            ("autoscale", auto is not None),
            ("kserve", deploy.kserve),
            ("pipeline", deploy.pipeline is not None),
        ):
            if value:
                yield ("deploy", field), f"needs target: kubernetes (target is {deploy.target})"
    for section, names in (("ci", spec.ci.secrets), ("deploy", deploy.secrets)):
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                yield (section, "secrets", i), f"{name} is listed twice"
            seen.add(name)


def _rollback(spec: Spec) -> Iterator[Finding]:
    windows = spec.rollback.windows
    if windows.k > windows.n:
        yield ("rollback", "windows", "k"), f"k {windows.k} is greater than n {windows.n}"
    for i, item in enumerate(spec.rollback.when):
        loc: tuple[str | int, ...] = ("rollback", "when", i)
        try:
            trigger = as_trigger(item)
        except ValueError as exc:
            yield loc, str(exc)
            continue
        yield from _trigger(spec, trigger, loc, mapping=not isinstance(item, str))


def _trigger(
    spec: Spec, trigger: RollbackTrigger, loc: tuple[str | int, ...], *, mapping: bool
) -> Iterator[Finding]:
    """One trigger, in either form; a mapping's findings point at the field at fault."""

    def at(field: str) -> tuple[str | int, ...]:
        return (*loc, field) if mapping and field in trigger.model_fields_set else loc

    monitors = spec.monitors
    on = trigger.on
    if trigger.windows is not None and trigger.windows.k > trigger.windows.n:
        w = trigger.windows
        yield (*loc, "windows", "k"), f"k {w.k} is greater than n {w.n}"
    if on != "kpi" and trigger.kpi is not None:
        yield at("kpi"), "kpi names the KPI of an `on: kpi` trigger only"
    if on in {"error_rate", "latency", "drift"} and trigger.min is not None:
        yield at("min"), f"{on} fires above a bound: give max ('{on} > X'), not min"
    if on == "performance":
        yield from _performance_trigger(spec, trigger, loc, at)
    elif on == "error_rate":
        bound = trigger.max
        if bound is None and trigger.min is None and monitors.error_rate is None:
            yield loc, "error_rate needs a bound: 'error_rate > 0.05' or monitors.error_rate.max"
        elif bound is not None and not 0 < bound <= 1:
            yield at("max"), f"error_rate is a share of requests: {bound} is not in (0, 1]"
    elif on == "latency":
        if trigger.max is None and trigger.min is None and monitors.latency is None:
            yield loc, "latency needs a bound: 'latency > 80' (p99 ms) or monitors.latency"
        elif trigger.max is not None and trigger.max <= 0:
            yield at("max"), f"the p99 bound must be positive, not {trigger.max}"
    elif on == "drift":
        if trigger.max is not None and not 0 < trigger.max <= 1:
            yield at("max"), f"drift is a share of features: {trigger.max} is not in (0, 1]"
    elif trigger.kpi is None:
        yield loc, "an `on: kpi` trigger needs kpi: the name of a monitors.kpis entry"
    else:
        kpis = {k.name: k for k in monitors.kpis}
        kpi = kpis.get(trigger.kpi)
        if kpi is None:
            yield (
                at("kpi"),
                f"{trigger.kpi!r} is not a KPI of monitors.kpis{suggest(trigger.kpi, list(kpis))}",
            )
            return
        # The trigger's own bounds replace the KPI's one by one.
        low = kpi.min if trigger.min is None else trigger.min
        high = kpi.max if trigger.max is None else trigger.max
        if low is not None and high is not None and low > high:
            field = "min" if trigger.min is not None else "max"
            yield at(field), f"min {low} is greater than max {high}"


def _performance_trigger(
    spec: Spec,
    trigger: RollbackTrigger,
    loc: tuple[str | int, ...],
    at: Callable[[str], tuple[str | int, ...]],
) -> Iterator[Finding]:
    perf = spec.monitors.performance
    missing = [
        name
        for name, value in (
            ("monitors.performance", perf),
            ("monitors.labels", spec.monitors.labels),
        )
        if value is None
    ]
    if missing:
        yield (
            loc,
            f"a performance trigger needs {' and '.join(missing)}: the live metric is computed "
            "from late labels",
        )
    if perf is None:
        return
    metric = perf.metric
    higher = HIGHER_IS_BETTER[metric]
    want, other = ("min", "max") if higher else ("max", "min")
    if getattr(trigger, other) is not None:
        better, op = ("higher", "<") if higher else ("lower", ">")
        yield (
            at(other),
            f"{metric} is {better}-is-better: bound it with {want} ('performance {op} X')",
        )
    bound = getattr(trigger, want)
    if bound is not None and metric in UNIT_INTERVAL and not 0 <= bound <= 1:
        yield at(want), f"{metric} lies in [0, 1], not {bound}"


def _monitors(spec: Spec) -> Iterator[Finding]:
    monitors = spec.monitors
    features = _feature_names(spec)
    task = task_of(spec)
    if monitors.drift is not None:
        for name in monitors.drift.columns:
            if name not in features:
                yield (
                    ("monitors", "drift", "columns", name),
                    f"{name!r} is not a feature{suggest(name, sorted(features))}",
                )
    if monitors.performance is not None and monitors.labels is None:
        yield ("monitors", "performance"), "needs monitors.labels: where the late labels arrive"
    seen: set[str] = set()
    target = spec.data.contract.columns.get(spec.data.target)
    for i, kpi in enumerate(monitors.kpis):
        loc: tuple[str | int, ...] = ("monitors", "kpis", i)
        if kpi.name in seen:
            yield (*loc, "name"), f"KPI {kpi.name!r} is declared twice"
        seen.add(kpi.name)
        if kpi.min is None and kpi.max is None:
            yield loc, "a KPI needs a min, a max or both"
        elif kpi.min is not None and kpi.max is not None and kpi.min > kpi.max:
            yield (*loc, "min"), f"min {kpi.min} is greater than max {kpi.max}"
        if kpi.kind == "prediction_share":
            if task != "classification":
                yield (*loc, "kind"), "prediction_share needs a classification model"
            elif kpi.class_ is None:
                yield loc, "prediction_share needs `class`: the predicted class to count"
            elif target is not None and target.values is not None:
                known = [str(v) for v in target.values]
                if str(kpi.class_) not in known:
                    yield (
                        (*loc, "class"),
                        f"{kpi.class_!r} is not a value of {spec.data.target!r}; "
                        f"known: {', '.join(known)}",
                    )
        elif kpi.kind == "prediction_mean" and task != "regression":
            yield (*loc, "kind"), "prediction_mean needs a regression model"
        elif kpi.kind.startswith("outcome_"):
            if kpi.column is None:
                yield loc, f"{kpi.kind} needs `column`: the outcome column of the labels file"
            if monitors.labels is None:
                yield loc, f"{kpi.kind} needs monitors.labels: the file holding the outcome"


def _batch(spec: Spec) -> Iterator[Finding]:
    batch = spec.batch
    if batch is None:
        return
    if spec.level >= 2 and "deploy" not in spec.model_fields_set:
        # Below level 2 the section is only warned about (nothing is emitted there).
        yield ("batch",), "needs deploy: the schedule runs in the deployed image"
    if batch.engine == "spark":
        yield (
            ("batch", "engine"),
            "spark is not supported in generated deployments yet; use engine: local",
        )
    if spec.features is not None and spec.features.store is not None:
        # The score stage reads every feature from its input: a store's rows are completed by
        # the server, so the runtime refuses to score them.
        yield ("batch",), "not with features.store: score reads every feature from its input"
    columns = spec.data.contract.columns
    if batch.key is not None and batch.key not in columns:
        yield (
            ("batch", "key"),
            f"{batch.key!r} is not a contract column{suggest(batch.key, sorted(columns))}",
        )


def _retrain(spec: Spec) -> Iterator[Finding]:
    windows = spec.retrain.windows
    if windows.k > windows.n:
        yield ("retrain", "windows", "k"), f"k {windows.k} is greater than n {windows.n}"
    if "performance" in spec.retrain.on and spec.monitors.performance is None:
        yield (
            ("retrain", "on"),
            "retraining on performance needs monitors.performance (and monitors.labels)",
        )
    if "drift" in spec.retrain.on and spec.monitors.drift is None:
        yield ("retrain", "on"), "retraining on drift needs monitors.drift"


def _feature_names(spec: Spec) -> set[str]:
    if spec.features is None or not declares_columns(spec):
        return set(spec.data.contract.columns) - {spec.data.target}
    f = spec.features
    return {*f.numeric.columns, *f.categorical.columns, *f.passthrough}
