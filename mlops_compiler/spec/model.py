"""The mlops.yaml schema (apiVersion mlops/v1): pydantic models at the boundary only.

Field-level syntax is checked here; rules that relate several fields live in `rules.py` so
that every problem can be reported at once with its own position.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
)

from mlops_compiler.spec import scalars
from mlops_compiler.spec.metrics import HIGHER_IS_BETTER


def _threshold(text: str) -> str:
    scalars.parse_threshold(text)
    return text


def _duration(text: str) -> str:
    scalars.parse_duration(text)
    return text


def _cron(text: str) -> str:
    scalars.check_cron(text)
    return text


def _metric(name: str) -> str:
    if name not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(sorted(HIGHER_IS_BETTER))}")
    return name


def _inside_project(text: str) -> str:
    """A folder the generated server writes to: relative, and inside the project folder (the
    one place every deployment mounts writable); a volume mounted there serves any other."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("holds a control character")
    parts = text.replace("\\", "/").split("/")
    if text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":"):
        raise ValueError("must be relative to the project folder, not absolute")
    if ".." in parts:
        raise ValueError("must stay inside the project folder (no '..')")
    if not any(part not in ("", ".") for part in parts):
        raise ValueError("must name a folder inside the project folder")
    return text


def _on_volume(text: str) -> str:
    """A path on a volume the batch pods mount (data in, scored out): relative to its folder
    and inside it, so an overlay's claim holds whatever the spec names."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("holds a control character")
    parts = text.replace("\\", "/").split("/")
    if text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":"):
        raise ValueError("must be relative to its volume's folder, not absolute")
    if ".." in parts:
        raise ValueError("must stay inside its volume's folder (no '..')")
    if not any(part not in ("", ".") for part in parts):
        raise ValueError("must name a file or folder inside its volume's folder")
    return text


def _no_secret(text: str) -> str:
    kind = scalars.looks_secret(text)
    if kind:
        raise ValueError(f"looks like {kind}; keep secrets in environment variables (*_env)")
    return text


Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"),
    Field(description="Lower-case DNS-style name (a-z, 0-9, '-'), at most 40 characters."),
]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
EnvName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]*$"),
    Field(description="Name of an environment variable that holds the secret."),
]
Threshold = Annotated[str, AfterValidator(_threshold), Field(examples=[">= 0.8"])]
Duration = Annotated[str, AfterValidator(_duration), Field(examples=["30s", "1h", "7d"])]
Cron = Annotated[str, AfterValidator(_cron), Field(examples=["0 * * * *"])]
Metric = Annotated[str, AfterValidator(_metric)]
FreeText = Annotated[str, StringConstraints(max_length=10_000)]
ProjectFolder = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_inside_project),
    Field(description="A folder relative to the project folder, inside it."),
]
VolumePath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_on_volume),
    Field(description="A path relative to the folder of the volume it is on, inside it."),
]
Scalar = str | int | float | bool
ParamValue = Scalar | None | list[Scalar | None]


class Strict(BaseModel):
    # defer_build: each model's own validator is built on first use, not at import; a build
    # validates through Spec alone, whose schema holds the nested ones.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


class Split(Strict):
    test_size: float = Field(0.2, gt=0, lt=1)
    seed: int = Field(42, ge=0, le=2**32 - 1)
    stratify: bool | None = Field(None, description="Default: true for classification.")


class Column(Strict):
    type: Literal["int", "float", "bool", "category", "str"]
    description: FreeText = ""
    nullable: bool = False
    max_null_fraction: float | None = Field(None, ge=0, le=1)
    min: float | None = None
    max: float | None = None
    values: list[Scalar] | None = Field(None, min_length=1)
    unique: bool = False


class Contract(Strict):
    min_rows: int = Field(1, ge=0)
    extra_columns: Literal["ignore", "forbid"] = "ignore"
    columns: dict[ColumnName, Column] = Field(min_length=1)


class Data(Strict):
    train: Annotated[str, StringConstraints(pattern=r"(?i)\.(csv|parquet|pq)$")] = Field(
        description="CSV or Parquet file, relative to the spec."
    )
    target: ColumnName
    split: Split = Split()
    contract: Contract


class NumericFeatures(Strict):
    columns: list[ColumnName] = []
    impute: Literal["median", "mean", "none"] = "median"
    scale: Literal["standard", "minmax", "robust", "none"] = "standard"


class CategoricalFeatures(Strict):
    columns: list[ColumnName] = []
    impute: Literal["most_frequent", "none"] = "most_frequent"
    encode: Literal["onehot", "ordinal"] = "onehot"


StoreName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$"),
    Field(description="Lower-case identifier (a-z, 0-9, '_'): a Feast object name."),
]
SourceFile = Annotated[
    str,
    StringConstraints(pattern=r"(?i)\.(csv|parquet|pq)$"),
    Field(description="CSV or Parquet file, relative to the spec."),
]


class Entity(Strict):
    name: StoreName
    join_key: ColumnName = Field(description="The key column in sources, entity rows and requests.")
    type: Literal["int", "str"] = "int"


class FeatureView(Strict):
    name: StoreName
    entity: StoreName
    source: SourceFile
    timestamp: ColumnName = Field(
        "event_timestamp", description="The source column holding each value's event time."
    )
    ttl: Duration = Field(
        description=(
            "How long a value stays valid: older values are not joined to a training row "
            "and are stale online."
        )
    )
    features: list[ColumnName] = Field(
        min_length=1, description="Source columns served by this view; each is a contract column."
    )
    max_age: Duration | None = Field(
        None,
        description=(
            "Freshness bound: the monitor alerts when the newest materialised value is older. "
            "Default: ttl."
        ),
    )


Transform = Literal["ratio", "difference", "log1p", "bucketize", "days_since"]


class DerivedFeature(Strict):
    transform: Transform = Field(
        description=(
            "ratio: a / b (null when b is 0); difference: a - b; log1p: log(1 + a) (null below "
            "-1); bucketize: the index of the bucket a falls in, by `boundaries`; days_since: "
            "days from the timestamp a to the row's event time (the view's, or the request's)."
        )
    )
    inputs: list[ColumnName] = Field(
        min_length=1,
        max_length=2,
        description="Contract columns, view source columns or other derived features.",
    )
    boundaries: list[float] | None = Field(
        None, min_length=1, description="Ascending bucket edges (bucketize only)."
    )


class FeatureStore(Strict):
    entities: list[Entity] = Field(min_length=1)
    views: list[FeatureView] = Field(min_length=1)
    derived: dict[ColumnName, DerivedFeature] = Field(
        {},
        description=(
            "Features computed by named transforms. One whose inputs all come from one view is "
            "computed before materialisation and served by that view; any other is computed "
            "on demand, after the lookup, in training and serving alike. Each is a contract "
            "column."
        ),
    )
    entity_timestamp: ColumnName | None = Field(
        None,
        description=(
            "The column of data.train holding each row's event time. data.train is then an "
            "entity dataframe (entity keys, event times, the target and request-time features) "
            "and training joins the views to it point-in-time. Without it data.train holds "
            "every feature itself."
        ),
    )
    stale: Literal["reject", "serve"] = Field(
        "reject",
        description=(
            "A request whose looked-up values are older than their view's ttl: reject (409 "
            "naming the view) or serve them with the stale views named in the response and log."
        ),
    )
    materialize_schedule: Cron = Field(
        "0 * * * *",
        description=(
            "When a deployment loads the online store (features-materialize, incrementally up "
            "to now): the Kubernetes CronJob's schedule, the compose stack's cron line."
        ),
    )


class Features(Strict):
    numeric: NumericFeatures = NumericFeatures()
    categorical: CategoricalFeatures = CategoricalFeatures()
    passthrough: list[ColumnName] = []
    store: FeatureStore | None = Field(
        None,
        description=(
            "A Feast feature store (level >= 2): features looked up by entity key online and "
            "joined point-in-time for training."
        ),
    )


class Gate(Strict):
    metrics: dict[Metric, Threshold] = Field({}, description="Absolute thresholds.")
    vs_champion: dict[Metric, Threshold] = Field(
        {}, description="Bounds on candidate minus champion."
    )
    promote: Literal["auto", "manual"] = "auto"


class Model(Strict):
    task: Literal["classification", "regression"] | None = Field(
        None, description="Default: the known estimator's task."
    )
    estimator: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+$")]
    custom_estimator: bool = Field(False, description="Allow an estimator not in the known table.")
    params: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]\w*$")], ParamValue] = {}
    serialization: Literal["skops", "pickle"] = Field(
        "skops",
        description=(
            "How the model is stored. 'skops' restores only types of the packages the "
            "estimator allows (a registered model: exactly the types recorded when it was "
            "logged; level 0: model/model.skops). 'pickle' (MLflow's cloudpickle format; "
            "model/model.joblib at level 0) runs arbitrary code when the model is loaded: use "
            "it only for estimators skops cannot represent, such as functions or classes not "
            "defined at a module's top level. Either way the server checks the model's sha256 "
            "before loading it."
        ),
    )
    gate: Gate = Gate()


class Tracking(Strict):
    uri: Annotated[str, AfterValidator(_no_secret)] = "sqlite:///mlruns.db"
    experiment: Name | None = None


class Profile(Strict):
    sample_size: int = Field(1000, ge=0, le=100_000)
    bins: int = Field(20, ge=2, le=200)


class Batching(Strict):
    max_batch_size: int = Field(32, ge=1, le=4096)
    max_wait_ms: float = Field(2, ge=0, le=1000)


class ABTest(Strict):
    challenger_weight: float = Field(gt=0, lt=1)
    sticky_key: ColumnName | None = None


class PredictionLog(Strict):
    dir: ProjectFolder = "prediction_log"
    rotate_mb: int = Field(64, ge=1, le=10_000)
    keep_files: int = Field(
        32, ge=1, le=100_000, description="Oldest files beyond this many are deleted."
    )


class ServingTimeouts(Strict):
    header: Duration = Field(
        "5s",
        description=(
            "A client must send a request's line and headers within this long of its first "
            "byte (or of connecting), else the connection is closed: slow clients hold no "
            "connection open."
        ),
    )
    body: Duration = Field(
        "10s",
        description="A request's body must arrive within this long of its headers, else 408.",
    )
    model: Duration = Field(
        "10s",
        description=(
            "A model call that takes longer fails its requests with 504 (a late answer is not "
            "sent as good) and counts as a failed call."
        ),
    )
    drain: Duration = Field(
        "20s",
        description=(
            "On SIGTERM the server finishes the requests in flight for at most this long, "
            "then stops; keep it under the orchestrator's grace period."
        ),
    )


class Serving(Strict):
    batching: Batching = Batching()
    ab_test: ABTest | None = None
    reload_interval: Duration = Field(
        "2s",
        description=(
            "How often the server looks up the registry alias it serves; a rollback reaches "
            "the first response within about this long after the alias moves."
        ),
    )
    max_body_bytes: int = Field(
        1_000_000,
        ge=1_000,
        le=1_000_000_000,
        description="Larger requests get 413; raise it for big batches (about 800 bytes a record).",
    )
    timeouts: ServingTimeouts = ServingTimeouts()
    unready_after_failures: int = Field(
        5,
        ge=1,
        le=100_000,
        description=(
            "After this many model calls in a row fail (raise, answer NaN or the wrong shape, "
            "time out), the served version's server reports not ready until a call succeeds "
            "or another version (a rollback's) is installed; each failed call answers 500 or "
            "504 to its own requests only."
        ),
    )
    unknown_categories: Literal["reject", "allow"] = "reject"
    prediction_log: PredictionLog = PredictionLog()
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "Server processes sharing the port, each with its own interpreter, model copy, "
            "micro-batcher and prediction log file; WEB_CONCURRENCY overrides it."
        ),
    )


DriftMethod = Literal["auto", "ks", "chi2", "wasserstein", "jensenshannon", "psi"]


class DriftColumn(Strict):
    method: DriftMethod = "auto"
    threshold: float | None = Field(None, gt=0, description="Default: the method's own.")


class Drift(Strict):
    method: DriftMethod = Field(
        "auto",
        description=(
            "auto: KS (numeric) or chi-square (categorical) p-values for references of at most "
            "1000 rows, Wasserstein distance / reference std (numeric) or Jensen-Shannon "
            "distance (categorical) above that; see docs/monitoring-drift.md."
        ),
    )
    threshold: float | None = Field(
        None, gt=0, description="Default: the method's (p < 0.05 for ks/chi2, >= 0.1 otherwise)."
    )
    drift_share: float = Field(
        0.5, gt=0, le=1, description="Share of drifted features that makes the dataset drift."
    )
    columns: dict[ColumnName, DriftColumn] = Field({}, description="Per-feature overrides.")


class Labels(Strict):
    file: Annotated[str, StringConstraints(pattern=r"(?i)\.(csv|parquet|pq)$")] = Field(
        description=(
            "CSV or Parquet file of late labels, relative to the spec: the join key column and "
            "the target under its contract name (plus any outcome columns KPIs use)."
        )
    )
    join_key: ColumnName = Field("request_id", description="The id the server returns and logs.")


class Performance(Strict):
    metric: Metric
    min: float | None = Field(None, description="Bound of a higher-is-better metric.")
    max: float | None = Field(None, description="Bound of a lower-is-better metric (rmse, ...).")
    min_samples: int = Field(100, ge=1, description="Labelled predictions needed for a verdict.")


class Latency(Strict):
    p99_ms: float = Field(gt=0)


class ErrorRate(Strict):
    max: float = Field(
        gt=0,
        le=1,
        description=(
            "Share of server errors (5xx) among the prediction requests that were not client "
            "errors (4xx), in the monitor's window (from the prediction log); the level-3 live "
            "alert computes the same share from the server's metrics."
        ),
    )


class KPI(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    kind: Literal["prediction_share", "prediction_mean", "outcome_mean", "outcome_sum"] = Field(
        description=(
            "prediction_share: share of predictions equal to `class`; prediction_mean: mean "
            "predicted value (regression); outcome_mean / outcome_sum: of `column` in the labels "
            "file, joined to the window's requests."
        )
    )
    class_: Scalar | None = Field(None, alias="class")
    column: ColumnName | None = None
    min: float | None = None
    max: float | None = None


class Monitors(Strict):
    schedule: Cron = "0 * * * *"
    window: Duration = Field("1h", description="The last duration of the prediction log.")
    window_records: int | None = Field(
        None, ge=1, description="The last N records instead of a duration."
    )
    min_rows: int = Field(100, ge=1, description="Window rows needed for drift verdicts.")
    drift: Drift | None = None
    labels: Labels | None = None
    performance: Performance | None = None
    latency: Latency | None = None
    error_rate: ErrorRate | None = None
    kpis: list[KPI] = []
    alert_cooldown: Duration = Field(
        "1h", description="The same alert is not sent again sooner (level 3 webhooks)."
    )


class Alert(Strict):
    kind: Literal["webhook", "slack"]
    url_env: EnvName
    name: FreeText = ""
    min_severity: Literal["warning", "alert"] = Field(
        "alert", description="Send alert reports only, or warnings too."
    )


class Windows(Strict):
    k: int = Field(1, ge=1, le=100, description="Windows out of the last n a trigger must fire in.")
    n: int = Field(1, ge=1, le=100)


class RollbackTrigger(Strict):
    on: Literal["performance", "error_rate", "latency", "drift", "kpi"] = Field(
        description=(
            "performance: the live metric of monitors.performance on late labels; error_rate: "
            "the share of failed requests; latency: p99 in ms; drift: the share of drifted "
            "features; kpi: a business KPI of monitors.kpis."
        )
    )
    min: float | None = Field(
        None,
        description=(
            "Fire below this bound: a higher-is-better performance metric, or a KPI. "
            "Default: the bound of the monitor it refers to."
        ),
    )
    max: float | None = Field(
        None,
        description=(
            "Fire above this bound: a lower-is-better performance metric (rmse, ...), "
            "error_rate (a share), latency (p99 ms), drift (a share), or a KPI. "
            "Default: the bound of the monitor it refers to."
        ),
    )
    kpi: Annotated[str, StringConstraints(min_length=1, max_length=63)] | None = Field(
        None, description="The name of a monitors.kpis entry (on: kpi only)."
    )
    min_samples: int | None = Field(
        None,
        ge=1,
        description=(
            "Samples the window needs before the trigger may fire. Default: rollback.min_samples."
        ),
    )
    windows: Windows | None = Field(
        None, description="Fire in k of the last n monitor windows. Default: rollback.windows."
    )


TriggerText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    Field(
        description=(
            "performance, error_rate, latency (p99 ms) or drift, each with an optional bound "
            "('performance < 0.85', '>' for a lower-is-better metric; 'error_rate > 0.05'), "
            "or 'kpi NAME'. Without a bound, the one of the monitor it refers to."
        ),
        examples=["performance", "error_rate > 0.05", "latency > 80", "kpi malignant_share"],
    ),
]


def _trigger_form(value: object) -> str:
    return "text" if isinstance(value, str) else "mapping"


# The tag keeps a mapping's errors to the mapping: without it a bad mapping would also be
# reported as "not a valid string".
Trigger = Annotated[
    Annotated[TriggerText, Tag("text")] | Annotated[RollbackTrigger, Tag("mapping")],
    Discriminator(_trigger_form),
]


class Rollback(Strict):
    when: list[Trigger] = Field(
        [],
        description=(
            "Triggers of the automatic rollback (level >= 2): the monitor serves the previous "
            "good champion again when one fires. Below level 2 rollback is by hand only."
        ),
    )
    keep_versions: int = Field(
        5, ge=1, le=100, description="Past champions that stay eligible for a rollback."
    )
    grace_samples: int = Field(
        200,
        ge=0,
        le=10_000_000,
        description=(
            "Labelled predictions (served ones when there are no labels) a new champion must "
            "have answered before its triggers may roll it back."
        ),
    )
    min_samples: int = Field(
        100, ge=1, le=10_000_000, description="Default minimum sample count of every trigger."
    )
    windows: Windows = Field(
        Windows(), description="Default: fire in k of the last n monitor windows."
    )


class Retrain(Strict):
    on: list[Literal["drift", "performance", "schedule"]] = Field(
        ["drift"],
        min_length=1,
        description=(
            "drift: the dataset drifted; performance: the live metric passed its bound; "
            "schedule: every monitor run (subject to the cooldown)."
        ),
    )
    cooldown: Duration = Field("24h", description="No retraining sooner after the last one.")
    windows: Windows = Windows()
    data: Annotated[str, StringConstraints(pattern=r"(?i)\.(csv|parquet|pq)$")] | None = Field(
        None, description="Fresh training data, relative to the spec. Default: data.train."
    )


class CI(Strict):
    provider: Literal["github", "gitlab"] = Field(
        "github",
        description=(
            "github: workflows in the repository's .github/workflows/; gitlab: a file in "
            ".gitlab/ that the repository's .gitlab-ci.yml includes."
        ),
    )
    python: Annotated[str, StringConstraints(pattern=r"^3\.(1[1-9])$")] = Field(
        "3.11", description="Python version the jobs run on."
    )
    secrets: list[EnvName] = Field(
        [],
        description=(
            "Names of CI secrets the jobs receive as environment variables of the same name "
            "(e.g. MLFLOW_TRACKING_URI of a shared registry); never their values."
        ),
    )


class Autoscale(Strict):
    min: int = Field(1, ge=1)
    max: int = Field(ge=1, le=1000)
    cpu_percent: int = Field(70, ge=1, le=100)


Quantity = Annotated[
    str,
    StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"),
    Field(examples=["250m", "1", "512Mi"]),
]
ImageRepository = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$",
        max_length=255,
    ),
    Field(examples=["ghcr.io/acme/churn", "registry.example.com:5000/ml/churn"]),
]
K8sName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
# An image reference the engine resolves: [registry[:port]/]path[:tag][@sha256:digest].
ImageReference = Annotated[
    str,
    StringConstraints(
        pattern=(
            r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
            r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
        ),
        max_length=255,
    ),
    Field(examples=["python:3.11.11-slim-bookworm", "registry.example.com/base/python:3.11"]),
]


class Resources(Strict):
    cpu: Quantity = Field("250m", description="CPU request of the serving container.")
    memory: Quantity = Field("512Mi", description="Memory request of the serving container.")
    cpu_limit: Quantity = "1"
    memory_limit: Quantity = "1Gi"


class Deploy(Strict):
    target: Literal["kubernetes", "compose"] = Field(
        "kubernetes",
        description="kubernetes: manifests under deploy/kubernetes/; compose: one machine.",
    )
    replicas: int = Field(2, ge=1, le=1000)
    autoscale: Autoscale | None = None
    image: ImageRepository | None = Field(
        None,
        description=(
            "Repository of the serving image, without a tag (CI tags it with the model "
            "version). Default: localhost:5000/<name>."
        ),
    )
    namespace: K8sName | None = Field(None, description="Kubernetes namespace. Default: <name>.")
    resources: Resources = Resources()
    kserve: bool = Field(
        False,
        description=(
            "Also emit a KServe InferenceService (deploy/kserve/) with the A/B split as "
            "canary traffic."
        ),
    )
    pipeline: Literal["kubeflow"] | None = Field(
        None, description="kubeflow: the training pipeline as a Kubeflow Pipelines v2 definition."
    )
    secrets: list[EnvName] = Field(
        [],
        description=(
            "Environment variables the serving and batch containers take from the Kubernetes "
            "Secret <name>-secrets (or the compose environment), by name only."
        ),
    )
    engine: Literal["auto", "docker", "podman"] = Field(
        "auto",
        description=(
            "The engine the image stage builds with: auto takes docker, else podman "
            "(MLOPS_CONTAINER_ENGINE overrides it)."
        ),
    )
    base_image: ImageReference | None = Field(
        None,
        description=(
            "The Python 3.11 image the serving image is built FROM (the Dockerfile's "
            "BASE_IMAGE): the official python image or a Debian one with python3 and "
            "python3-venv. Default: the pinned official python image."
        ),
    )


class Batch(Strict):
    """Scheduled batch scoring (level 2 and above): the score stage in the project's image."""

    input: VolumePath = Field(
        description=(
            "A CSV or Parquet file, or a folder of parts, relative to the `data` volume the "
            "batch pods read (/app/data)."
        )
    )
    output: VolumePath = Field(
        "{date}-{time}",
        description=(
            "The folder each run writes, relative to the `scored` volume (/app/scored); "
            "{date} and {time} are the run's UTC start, so each run gets its own."
        ),
    )
    schedule: Cron = Field(description="When the CronJob runs (UTC).")
    engine: Literal["local", "spark"] = Field(
        "local", description="local: in the pod's own process (spark is not generated yet)."
    )
    model: Annotated[str, StringConstraints(pattern=r"^(champion|challenger|[1-9][0-9]*)$")] = (
        Field("champion", description="champion, challenger or a registered version number.")
    )
    format: Literal["parquet", "csv"] = "parquet"
    key: ColumnName | None = Field(
        None, description="A contract column copied to each prediction (an id)."
    )


class Spec(Strict):
    """An mlops.yaml document."""

    apiVersion: Literal["mlops/v1"]  # noqa: N815 - the key users write
    name: Name
    description: FreeText = ""
    level: int = Field(1, ge=0, le=3)
    tags: dict[Annotated[str, StringConstraints(min_length=1, max_length=200)], FreeText] = {}
    data: Data
    features: Features | None = Field(None, description="Default: derived from the contract.")
    model: Model
    tracking: Tracking = Tracking()
    profile: Profile = Profile()
    serving: Serving = Serving()
    monitors: Monitors = Monitors()
    alerts: list[Alert] = []
    rollback: Rollback = Rollback()
    retrain: Retrain = Retrain()
    ci: CI = CI()
    deploy: Deploy = Deploy()
    batch: Batch | None = Field(None, description="Scheduled batch scoring (level 2 and above).")
