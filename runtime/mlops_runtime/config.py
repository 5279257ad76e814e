"""config.json, typed: one frozen dataclass per section, read once by `Project.settings`.

The compiler writes config.json complete, every section and every setting at every level
(the compiler's spec models, its spec/model.py, hold each default; the level table decides the
rest), and a project runs only on the runtime of the compiler's own version
(project.check_version; docs/upgrading.md rebuilds every project on an upgrade). So every
field here that the compiler always writes is required, with no default of the runtime's own:
a config.json without it is refused with the field's path. The few fields with a default are
the ones the compiler writes only for some projects (`image` from level 2, `feature_store` with
a feature store, `monitor.alerting` at level 3), and their default is "absent".

schema/config.schema.json is generated from these classes (scripts/regenerate.py); a test
checks that every generated config.json validates against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_runtime.json_records import Record, json_key, json_schema


@dataclass(frozen=True)
class Split(Record):
    test_size: float
    seed: int
    stratify: bool


@dataclass(frozen=True)
class DataConfig(Record):
    path: str  # relative to the project folder, the cwd of every stage
    path_env: str  # the environment variable that overrides `path`
    target: str
    split: Split


@dataclass(frozen=True)
class NumericFeatures(Record):
    columns: list[str]
    impute: str  # "median" | "mean" | "none"
    scale: str  # "standard" | "minmax" | "robust" | "none"


@dataclass(frozen=True)
class CategoricalFeatures(Record):
    columns: list[str]
    impute: str  # "most_frequent" | "none"
    encode: str  # "onehot" | "ordinal"


@dataclass(frozen=True)
class FeaturesConfig(Record):
    numeric: NumericFeatures
    categorical: CategoricalFeatures
    passthrough: list[str]


@dataclass(frozen=True)
class ModelConfig(Record):
    task: str  # "classification" | "regression"
    estimator: str
    params: Mapping[str, Any]
    serialization: str


@dataclass(frozen=True)
class GateRule(Record):
    metric: str
    op: str
    value: float


@dataclass(frozen=True)
class GateConfig(Record):
    absolute: list[GateRule]
    vs_champion: list[GateRule]  # on candidate - champion
    promote: str  # "auto" | "manual"


@dataclass(frozen=True)
class TrackingConfig(Record):
    uri: str
    experiment: str
    registered_model: str


@dataclass(frozen=True)
class ProfileConfig(Record):
    sample_size: int
    bins: int


@dataclass(frozen=True)
class TrainingConfig(Record):
    tracking: bool  # tracked (MLflow) or plain (level 0) training


@dataclass(frozen=True)
class Batching(Record):
    max_batch_size: int
    max_wait_ms: float


@dataclass(frozen=True)
class AbTest(Record):
    challenger_weight: float
    sticky_key: str | None


@dataclass(frozen=True)
class PredictionLogConfig(Record):
    dir: str
    rotate_mb: float
    keep_files: int


@dataclass(frozen=True)
class ExampleRequest(Record):
    protocol: str
    endpoint: str
    file: str


@dataclass(frozen=True)
class ServingLimits(Record):
    header_s: float
    body_s: float
    model_s: float
    drain_s: float
    unready_after_failures: int


@dataclass(frozen=True)
class ServingConfig(Record):
    host: str
    port: int
    model_alias: str
    batching: Batching
    ab_test: AbTest | None
    reload_interval_s: float
    max_body_bytes: int
    limits: ServingLimits
    unknown_categories: str
    prediction_log: PredictionLogConfig
    workers: int
    example_requests: list[ExampleRequest]
    model_source: str  # "file" (level 0) | "registry"


@dataclass(frozen=True)
class MonitorWindow(Record):
    duration_s: float
    records: int | None


@dataclass(frozen=True)
class ColumnDrift(Record):
    method: str | None
    threshold: float | None


@dataclass(frozen=True)
class DriftConfig(Record):
    method: str  # "auto" | "ks" | "chi2" | "psi" | "wasserstein" | "jensenshannon"
    threshold: float | None
    drift_share: float
    columns: Mapping[str, ColumnDrift]


@dataclass(frozen=True)
class LabelsConfig(Record):
    path: str
    join_key: str


@dataclass(frozen=True)
class PerformanceConfig(Record):
    metric: str
    min: float | None
    max: float | None
    min_samples: int


@dataclass(frozen=True)
class LatencyConfig(Record):
    p99_ms: float


@dataclass(frozen=True)
class ErrorRateConfig(Record):
    max: float


@dataclass(frozen=True)
class KpiConfig(Record):
    name: str
    kind: str  # "prediction_share" | "prediction_mean" | "outcome_mean" | "outcome_sum"
    class_: str | None = field(metadata=json_key("class"))
    column: str | None
    min: float | None
    max: float | None


@dataclass(frozen=True)
class MonitorConfig(Record):
    schedule: str
    window: MonitorWindow
    min_rows: int
    drift: DriftConfig | None
    labels: LabelsConfig | None
    performance: PerformanceConfig | None
    latency: LatencyConfig | None
    error_rate: ErrorRateConfig | None
    kpis: list[KpiConfig]
    reports_dir: str
    textfile: str
    reference: bool
    alerting: bool | None = None  # level 3 only


@dataclass(frozen=True)
class RetrainWindows(Record):
    k: int
    n: int


@dataclass(frozen=True)
class RetrainConfig(Record):
    enabled: bool
    on: list[str]
    cooldown_s: float
    windows: RetrainWindows
    data: str | None
    audit_log: str


@dataclass(frozen=True)
class RollbackTrigger(Record):
    on: str  # "performance" | "error_rate" | "latency" | "drift" | "kpi"
    metric: str | None
    min: float | None
    max: float | None
    kpi: str | None
    min_samples: int
    k: int
    n: int


@dataclass(frozen=True)
class RollbackConfig(Record):
    keep_versions: int
    automatic: bool
    grace_samples: int
    history: str
    triggers: list[RollbackTrigger]


@dataclass(frozen=True)
class AlertReceiver(Record):
    kind: str
    url_env: str
    name: str
    min_severity: str


@dataclass(frozen=True)
class AlertingConfig(Record):
    cooldown_s: float


@dataclass(frozen=True)
class ImageConfig(Record):
    repository: str
    engine: str
    base_image: str


@dataclass(frozen=True)
class ProjectConfig(Record):
    name: str
    level: int
    spec_sha256: str
    compiler_version: str
    data: DataConfig
    features: FeaturesConfig
    model: ModelConfig
    gate: GateConfig
    tracking: TrackingConfig
    profile: ProfileConfig
    serving: ServingConfig
    monitor: MonitorConfig
    retrain: RetrainConfig
    rollback: RollbackConfig
    alerts: list[AlertReceiver]
    alerting: AlertingConfig
    stages: list[str]
    training: TrainingConfig
    image: ImageConfig | None = None  # from level 2 (the image stage)
    # The feature store (features.store): views, entities, transforms; read by features/store.
    feature_store: Mapping[str, Any] | None = None


def config_schema() -> dict[str, Any]:
    """The JSON Schema of config.json, committed as schema/config.schema.json."""
    return json_schema(
        ProjectConfig,
        "config.json of a project generated by mlops-compiler",
        "Everything the spec decides but the data contract (contract.json), as the "
        "mlops-runtime reads it (docs/runtime-config.md). Generated from "
        "mlops_runtime/config.py by scripts/regenerate.py.",
    )
