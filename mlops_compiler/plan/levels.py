"""The level gating table: which component each level emits, its files, the runtime extras and
stages it brings, the configuration it decides and the spec sections it consumes.

This is the one place that decides what a level means; `mlops plan` prints it. The logic of
every stage lives in the `mlops_runtime` library, so a component's files are only the
project's data and infrastructure; what a component changes in the runtime's behaviour it says
through `settings`, written into config.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A condition's expected value meaning "the user wrote this section", whatever its value.
DECLARED = "<declared>"
# (dotted spec path, expected value): a component or file is emitted only where its spec
# matches, e.g. ("deploy.target", "kubernetes"), ("deploy.autoscale", DECLARED).
Condition = tuple[str, Any]


PROJECT = "project"
# Files a host reads only at the top of the repository (CI workflows), written there rather
# than into the project folder; their paths may contain {name}, the spec's name.
REPOSITORY = "repository"
# Where repository files may go: nothing else outside a project folder is ever written.
REPOSITORY_DIRS = (".github/workflows", ".gitlab")


@dataclass(frozen=True)
class Emit:
    path: str  # relative to the project folder (or the repository root: scope REPOSITORY)
    template: str  # relative to templates/; "*.jinja" is rendered, anything else copied
    when: tuple[Condition, ...] = ()
    scope: str = PROJECT


@dataclass(frozen=True)
class Component:
    name: str
    min_level: int
    max_level: int
    summary: str
    files: tuple[Emit, ...] = ()
    # Library ranges; each is also in the runtime's extra of the same name (a test keeps
    # the two in step), so requirements.txt shows what a level installs.
    requirements: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    # Dotted config.json keys this component sets: how a level changes the runtime's behaviour.
    settings: tuple[tuple[str, Any], ...] = ()
    # Spec sections (dotted) this component turns into output; a section the user declared
    # that no emitted component consumes draws a warning.
    consumes: tuple[str, ...] = ()
    # What the spec must say for this component to be emitted at all (see Condition).
    when: tuple[Condition, ...] = ()

    def emitted_at(self, level: int) -> bool:
        return self.min_level <= level <= self.max_level


RUNTIME = "mlops-runtime"
# The order stages are run in, which is the order the README and `mlops plan` list them.
STAGE_ORDER = (
    "features-apply",
    "features-materialize",
    "check-data",
    "train",
    "lineage",
    "serve",
    "predict",
    "score",
    "monitor",
    "rollback",
    "history",
    "image",
)


def stage_command(stage: str) -> tuple[str, ...]:
    return ("python", "-m", "mlops_runtime", stage)


COMPONENTS: tuple[Component, ...] = (
    Component(
        "project",
        0,
        3,
        "README, requirements pinning the runtime, config.json and the data contract",
        (
            Emit(".gitignore", "project/gitignore.jinja"),
            Emit("README.md", "project/README.md.jinja"),
            Emit("config.json", "project/config.json.jinja"),
            Emit("contract.json", "project/contract.json.jinja"),
            Emit("requirements.txt", "project/requirements.txt.jinja"),
        ),
        (
            "joblib>=1.3,<2",
            "numpy>=1.26,<3",
            "pandas>=2.2,<4",
            "pyarrow>=15,<30",
            "scikit-learn>=1.5,<2",
            "scipy>=1.11,<2",
            "skops>=0.10,<1",
        ),
        consumes=("data", "features", "model", "profile"),
    ),
    Component(
        "training-plain",
        0,
        0,
        "plain training: fit, print metrics, save model/model.skops; no tracking",
        stages=("train",),
        settings=(("training.tracking", False), ("serving.model_source", "file")),
    ),
    Component(
        "training",
        1,
        3,
        "contract gate (pandera), tracked training on MLflow, registry aliases, lineage, "
        "reference profile",
        requirements=("mlflow>=3.1,<4", "pandera>=0.24,<1"),
        extras=("train",),
        stages=("check-data", "lineage", "train"),
        settings=(("training.tracking", True), ("serving.model_source", "registry")),
        consumes=("model.gate", "tracking"),
    ),
    Component(
        "serving",
        0,
        3,
        "ASGI app: /predict, Open Inference Protocol, MLflow scoring protocol, /metrics, "
        "contract at the door, prediction log, micro-batching, hot reload; requests/ with an "
        "example request per protocol, and a predict stage that sends a file's rows",
        requirements=(
            "httptools>=0.6,<1",
            "orjson>=3.8,<4",
            "prometheus-client>=0.20,<1",
            "uvicorn>=0.30,<1",
            'uvloop>=0.19,<1; sys_platform != "win32"',
        ),
        files=(
            Emit("requests/predict.json", "project/requests/predict.json.jinja"),
            Emit("requests/invocations.json", "project/requests/invocations.json.jinja"),
            Emit("requests/v2-infer.json", "project/requests/v2-infer.json.jinja"),
        ),
        extras=("serve",),
        stages=("serve", "predict", "score"),
        consumes=("serving",),
    ),
    Component(
        "monitoring",
        0,
        3,
        "monitor stage: prediction distribution, volume, latency, errors and KPIs from the "
        "prediction log; JSON report, HTML dashboard, Prometheus textfile gauges",
        stages=("monitor",),
        settings=(("monitor.reference", False),),
        consumes=(
            "monitors.schedule",
            "monitors.window",
            "monitors.window_records",
            "monitors.min_rows",
            "monitors.labels",
            "monitors.latency",
            "monitors.error_rate",
            "monitors.kpis",
        ),
    ),
    Component(
        "drift-monitoring",
        1,
        3,
        "the monitor compares the window with the champion's reference profile: data and "
        "prediction drift, data quality, concept drift from late labels",
        # Needs the reference profile, which tracked training (level 1) makes.
        settings=(("monitor.reference", True),),
        consumes=("monitors.drift", "monitors.performance"),
    ),
    Component(
        "rollback",
        0,
        3,
        "manual rollback to the previous good model and the serving history (every change of "
        "who serves: from, to, why, by whom)",
        stages=("rollback", "history"),
        settings=(("rollback.automatic", False),),
        consumes=("rollback.keep_versions",),
    ),
    Component(
        "automatic-rollback",
        2,
        3,
        "the monitor rolls the champion back (and drops a failing A/B challenger) on declared "
        "triggers, k of the last n windows, after a grace period of labelled samples",
        settings=(("rollback.automatic", True),),
        consumes=(
            "rollback.when",
            "rollback.grace_samples",
            "rollback.min_samples",
            "rollback.windows",
        ),
    ),
    Component(
        "alerting",
        3,
        3,
        "Prometheus alerting rules with their promtool tests, a Grafana dashboard and its "
        "provisioning, webhook alerts from the monitor",
        (
            Emit(
                "monitoring/alert-rules.test.yml", "project/monitoring/alert-rules.test.yml.jinja"
            ),
            Emit("monitoring/alert-rules.yml", "project/monitoring/alert-rules.yml.jinja"),
            Emit(
                "monitoring/grafana-dashboard.json",
                "project/monitoring/grafana-dashboard.json.jinja",
            ),
            Emit(
                "monitoring/grafana-provisioning.yml",
                "project/monitoring/grafana-provisioning.yml.jinja",
            ),
        ),
        settings=(("monitor.alerting", True),),
        consumes=("alerts", "monitors.alert_cooldown"),
    ),
    Component(
        "retraining",
        3,
        3,
        "the monitor retrains on declared triggers (k of the last n windows, a cooldown, a "
        "lock), gates the challenger against the champion and logs every step",
        settings=(("retrain.enabled", True),),
        consumes=("retrain",),
    ),
    Component(
        "ab-test",
        2,
        3,
        "A/B split of live traffic between the champion and a challenger version",
        # A/B needs two registered versions, which only the automated deployment of level 2
        # and above produces.
        consumes=("serving.ab_test",),
    ),
    Component(
        "container",
        2,
        3,
        "Dockerfile and .dockerignore of the serving image, and a stage that builds it",
        (
            Emit(".dockerignore", "project/dockerignore.jinja"),
            Emit("Dockerfile", "project/Dockerfile.jinja"),
        ),
        # The image stage drives the engine's CLI: nothing to install, in or out of the image.
        stages=("image",),
    ),
    Component(
        "feature-store",
        2,
        3,
        "Feast repository (local provider: SQLite online store, Parquet offline store), "
        "stages that apply and materialise it; training joins it point-in-time, serving "
        "looks features up by entity key",
        (
            Emit(
                "feature_repo/feature_store.yaml", "project/feature_repo/feature_store.yaml.jinja"
            ),
            Emit("feature_repo/definitions.py", "project/feature_repo/definitions.py.jinja"),
        ),
        ("feast>=0.67,<0.68",),
        extras=("features",),
        stages=("features-apply", "features-materialize"),
        consumes=("features.store",),
        when=(("features.store", DECLARED),),
    ),
)

_DEPLOY_ON_KUBERNETES: tuple[Condition, ...] = (
    ("deploy", DECLARED),
    ("deploy.target", "kubernetes"),
)


def _kubernetes_file(name: str, *when: Condition) -> Emit:
    return Emit(f"deploy/kubernetes/{name}", f"project/deploy/kubernetes/{name}.jinja", when)


_CI_ON = (("ci", DECLARED),)


def _workflow(purpose: str) -> Emit:
    return Emit(
        f".github/workflows/mlops-{{name}}-{purpose}.yml",
        f"ci/github/{purpose}.yml.jinja",
        scope=REPOSITORY,
    )


DELIVERY: tuple[Component, ...] = (
    Component(
        "github-ci",
        2,
        3,
        "GitHub Actions workflows at the repository's top: on pull request the spec, the "
        "build, the data contract and the tests; on main train, gate, register, build and "
        "push the image, deploy to staging, then production",
        (_workflow("ci"), _workflow("cd")),
        consumes=("ci",),
        when=(*_CI_ON, ("ci.provider", "github")),
    ),
    Component(
        "github-operations",
        3,
        3,
        "a scheduled GitHub Actions monitor (which may retrain and roll back) and a manual "
        "rollback workflow",
        (_workflow("monitor"), _workflow("rollback")),
        when=(*_CI_ON, ("ci.provider", "github")),
    ),
    Component(
        "github-batch",
        2,
        3,
        "a GitHub Actions workflow that runs the spec's batch scoring on dispatch",
        (_workflow("score"),),
        when=(*_CI_ON, ("ci.provider", "github"), ("batch", DECLARED), ("deploy", DECLARED)),
    ),
    Component(
        "gitlab-ci",
        2,
        3,
        "a GitLab CI file (.gitlab/, included by the repository's .gitlab-ci.yml): the same "
        "jobs, production behind a manual, protected environment",
        (
            Emit(
                ".gitlab/mlops-{name}.gitlab-ci.yml",
                "ci/gitlab/pipeline.gitlab-ci.yml.jinja",
                scope=REPOSITORY,
            ),
        ),
        consumes=("ci",),
        when=(*_CI_ON, ("ci.provider", "gitlab")),
    ),
    Component(
        "kubernetes",
        2,
        3,
        "Kubernetes manifests under deploy/kubernetes/ (Deployment with Pod Security "
        "restricted, Service, HorizontalPodAutoscaler, PodDisruptionBudget, ConfigMap, a Job "
        "for training, a CronJob for the monitor), applied with kustomize",
        (
            _kubernetes_file("kustomization.yaml"),
            _kubernetes_file("configmap.yaml"),
            _kubernetes_file("deployment.yaml"),
            _kubernetes_file("service.yaml"),
            _kubernetes_file("hpa.yaml", ("deploy.autoscale", DECLARED)),
            _kubernetes_file("pdb.yaml"),
            _kubernetes_file("train-job.yaml"),
            _kubernetes_file("monitor-cronjob.yaml"),
            _kubernetes_file("features-cronjob.yaml", ("features.store", DECLARED)),
        ),
        consumes=("deploy",),
        when=_DEPLOY_ON_KUBERNETES,
    ),
    Component(
        "batch-scoring",
        2,
        3,
        "the spec's batch scoring on its schedule: a CronJob (or a compose service) running "
        "the score stage in the project's image, from the data volume to the scored volume",
        (_kubernetes_file("score-cronjob.yaml", *_DEPLOY_ON_KUBERNETES),),
        consumes=("batch",),
        when=(("batch", DECLARED), ("deploy", DECLARED)),
    ),
    Component(
        "kserve",
        2,
        3,
        "a KServe InferenceService of the serving image (deploy/kserve/), the A/B split as "
        "canary traffic",
        (
            Emit(
                "deploy/kserve/kustomization.yaml",
                "project/deploy/kserve/kustomization.yaml.jinja",
            ),
            Emit(
                "deploy/kserve/inferenceservice.yaml",
                "project/deploy/kserve/inferenceservice.yaml.jinja",
            ),
        ),
        consumes=("deploy.kserve",),
        when=(*_DEPLOY_ON_KUBERNETES, ("deploy.kserve", True)),
    ),
    Component(
        "compose",
        2,
        3,
        "a compose stack on one machine (deploy/compose/): the serving app, Prometheus "
        "scraping it (with the alert rules at level 3) and Grafana (with the dashboard at "
        "level 3)",
        (
            Emit("deploy/compose/compose.yaml", "project/deploy/compose/compose.yaml.jinja"),
            Emit("deploy/compose/prometheus.yml", "project/deploy/compose/prometheus.yml.jinja"),
            Emit(
                "deploy/compose/compose.serve-only.yaml",
                "project/deploy/compose/compose.serve-only.yaml.jinja",
            ),
        ),
        consumes=("deploy",),
        when=(("deploy", DECLARED), ("deploy.target", "compose")),
    ),
    Component(
        "kubeflow",
        2,
        3,
        "the training pipeline as a Kubeflow Pipelines v2 definition "
        "(pipelines/kubeflow-pipeline.yaml): train, gate, register (and monitor at level 3) "
        "in the project's image",
        (
            Emit(
                "pipelines/kubeflow-pipeline.yaml",
                "project/pipelines/kubeflow-pipeline.yaml.jinja",
            ),
        ),
        consumes=("deploy.pipeline",),
        when=(*_DEPLOY_ON_KUBERNETES, ("deploy.pipeline", "kubeflow")),
    ),
)
COMPONENTS = COMPONENTS + DELIVERY

# Top-level spec sections no component consumes yet: declaring one draws a warning until a
# component that emits it lands in the table above.
PENDING_SECTIONS: tuple[str, ...] = ()
