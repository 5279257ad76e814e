"""Generated projects are the spec's data plus infrastructure files, pinned to the runtime."""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import yaml
from packaging.requirements import Requirement

import mlops_runtime
from mlops_compiler import __version__
from mlops_compiler.plan.levels import COMPONENTS, RUNTIME, STAGE_ORDER
from mlops_compiler.write.stamp import STAMP
from tests.compiler.conftest import MINIMAL, REPO, run_mlops

GENERATED = REPO / "generated"
PROJECT_FILES = {".gitignore", "README.md", "config.json", "contract.json", "requirements.txt"}
# One example request per protocol, made from the contract (data, one line each).
REQUEST_FILES = {"requests/predict.json", "requests/invocations.json", "requests/v2-infer.json"}
CONTAINER_FILES = {".dockerignore", "Dockerfile"}
ALERTING_FILES = {
    "monitoring/alert-rules.yml",
    "monitoring/alert-rules.test.yml",
    "monitoring/grafana-dashboard.json",
    "monitoring/grafana-provisioning.yml",
}
KUBERNETES = {
    f"deploy/kubernetes/{name}.yaml"
    for name in (
        "kustomization",
        "configmap",
        "deployment",
        "service",
        "pdb",
        "train-job",
        "monitor-cronjob",
    )
}
KSERVE = {"deploy/kserve/kustomization.yaml", "deploy/kserve/inferenceservice.yaml"}
COMPOSE = {
    "deploy/compose/compose.yaml",
    "deploy/compose/compose.serve-only.yaml",
    "deploy/compose/prometheus.yml",
}
KUBEFLOW = {"pipelines/kubeflow-pipeline.yaml"}
# Feast reads definitions from Python only; this file holds declarations, no logic (checked).
FEATURE_STORE = {"feature_repo/feature_store.yaml", "feature_repo/definitions.py"}
FEAST_DEFINITIONS = {"Entity", "FeatureView", "Field", "FileSource", "timedelta"}
# Where a team deploys and stores features: manifests, stacks, pipeline definitions and the
# Feast repository, reviewed like any infrastructure file; budgeted apart from the spec's data
# and the monitoring files.
DELIVERY_DIRS = ("deploy/", "pipelines/", "feature_repo/")
# Lines of data, README and monitoring files per example project, on average.
LINES_PER_EXAMPLE = 500


def delivery_files(spec: dict[str, object], level: int) -> set[str]:
    deploy = spec.get("deploy")
    if level < 2 or not isinstance(deploy, dict):
        return set()
    if deploy.get("target", "kubernetes") == "compose":
        return set(COMPOSE)
    files = KUBERNETES | ({"deploy/kubernetes/hpa.yaml"} if deploy.get("autoscale") else set())
    files |= {"deploy/kubernetes/score-cronjob.yaml"} if spec.get("batch") else set()
    files |= KSERVE if deploy.get("kserve") else set()
    return files | (KUBEFLOW if deploy.get("pipeline") == "kubeflow" else set())


def files_of(project: Path) -> dict[str, str]:
    return {
        p.relative_to(project).as_posix(): p.read_text(encoding="utf-8")
        for p in project.rglob("*")
        if p.is_file() and p.name != STAMP  # the build's local cache, ignored by git
    }


def test_projects_hold_data_and_infrastructure_only() -> None:
    for project in sorted(GENERATED.iterdir()):
        level = json.loads((project / "config.json").read_text())["level"]
        expected = PROJECT_FILES | REQUEST_FILES | {"mlops-manifest.json"}
        if level >= 2:
            expected |= CONTAINER_FILES
        if level >= 3:
            expected |= ALERTING_FILES
        spec = yaml.safe_load((REPO / "specs" / f"{project.name}.mlops.yaml").read_text())
        expected |= delivery_files(spec, level)
        if level >= 2 and "store" in (spec.get("features") or {}):
            expected |= FEATURE_STORE
        assert set(files_of(project)) == expected, project.name
        python = [p.relative_to(project).as_posix() for p in project.rglob("*.py")]
        assert set(python) <= {"feature_repo/definitions.py"}, "no runtime logic in a project"


def test_feast_definitions_are_declarations_only() -> None:
    """Module-level assignments of Feast objects built from literals: nothing that runs."""
    import ast

    found = list(GENERATED.glob("*/feature_repo/definitions.py"))
    assert found, "an example declares a feature store"
    for path in found:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                assert (node.module if isinstance(node, ast.ImportFrom) else "") in {
                    "datetime",
                    "feast",
                    "feast.types",
                }, ast.dump(node)
                continue
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # the docstring
            assert isinstance(node, ast.Assign), ast.dump(node)
            for call in ast.walk(node.value):
                if isinstance(call, ast.Call):
                    assert isinstance(call.func, ast.Name), ast.dump(call)
                    assert call.func.id in FEAST_DEFINITIONS, call.func.id
                assert not isinstance(call, ast.Lambda | ast.Attribute) or (
                    isinstance(call, ast.Attribute)
                    and isinstance(call.value, ast.Name)
                    and call.value.id == "ValueType"
                ), ast.dump(call)


def test_golden_record_is_small() -> None:
    lines = {
        (p.name, path): text.count("\n")
        for p in GENERATED.iterdir()
        for path, text in files_of(p).items()
    }
    delivery = sum(n for (_, path), n in lines.items() if path.startswith(DELIVERY_DIRS))
    total = sum(lines.values()) - delivery
    # The CI files the examples put at the repository's top are delivery files too.
    ci = [*REPO.glob(".github/workflows/mlops-*"), *REPO.glob(".gitlab/mlops-*")]
    assert ci, "the examples declare CI"
    delivery += sum(p.read_text(encoding="utf-8").count("\n") for p in ci)
    examples = len(list(GENERATED.iterdir()))
    assert 0 < total <= LINES_PER_EXAMPLE * examples, total
    assert 0 < delivery <= 1500, delivery


def test_requirements_pin_the_runtime_to_the_compiler_version() -> None:
    assert mlops_runtime.__version__ == __version__
    assert importlib.metadata.version("mlops-runtime") == __version__
    assert importlib.metadata.version("mlops-compiler") == __version__
    for project in sorted(GENERATED.iterdir()):
        config = json.loads((project / "config.json").read_text())
        lines = [
            ln for ln in (project / "requirements.txt").read_text().splitlines() if ln[:1] != "#"
        ]
        pin = Requirement(lines[0])
        assert pin.name == RUNTIME and str(pin.specifier) == f"=={__version__}"
        wanted = {
            e
            for c in COMPONENTS
            if c.emitted_at(config["level"]) and (not c.when or "feature_store" in config)
            for e in c.extras
        }
        assert pin.extras == wanted, project.name
        assert config["compiler_version"] == __version__


def key(requirement: Requirement) -> tuple[str, frozenset[str]]:
    return requirement.name, frozenset(str(s) for s in requirement.specifier)


def test_level_table_ranges_are_the_runtime_extras() -> None:
    """requirements.txt shows the ranges of the table; installing the runtime's extras must
    give the same ones."""
    declared = [Requirement(r) for r in importlib.metadata.requires("mlops-runtime") or []]
    for component in COMPONENTS:
        for extra in component.extras:
            in_extra = {
                key(r)
                for r in declared
                if r.marker is not None and r.marker.evaluate({"extra": extra})
            }
            table = {key(Requirement(r)) for r in component.requirements}
            assert table == in_extra, (component.name, extra)
    base = {key(r) for r in declared if r.marker is None}
    project = next(c for c in COMPONENTS if c.name == "project")
    assert base == {key(Requirement(r)) for r in project.requirements}


def test_stages_run_through_the_runtime_in_run_order() -> None:
    for project in sorted(GENERATED.iterdir()):
        manifest = json.loads((project / "mlops-manifest.json").read_text())
        config = json.loads((project / "config.json").read_text())
        assert config["stages"] == sorted(config["stages"], key=STAGE_ORDER.index)
        assert set(manifest["commands"]) == set(config["stages"])
        for stage, argv in manifest["commands"].items():
            assert argv == ["python", "-m", "mlops_runtime", stage]
        readme = (project / "README.md").read_text().splitlines()
        (at,) = [i for i, ln in enumerate(readme) if ln.startswith("In the order they are run")]
        assert "`python -m mlops_runtime STAGE`" in readme[at]
        shown = re.findall(r"`([a-z-]+)`", readme[at + 1])
        assert shown == config["stages"], "README lists stages in the order they are run"


def test_level_decides_model_source_tracking_and_ab(tmp_path: Path) -> None:
    spec = yaml.safe_load(MINIMAL)
    spec["serving"] = {"ab_test": {"challenger_weight": 0.2}}
    (tmp_path / "mlops.yaml").write_text(yaml.safe_dump(spec))
    seen = {}
    for level in (0, 1, 2):
        assert run_mlops("build", "mlops.yaml", "--level", str(level), cwd=tmp_path).returncode == 0
        seen[level] = json.loads((tmp_path / "generated/churn/config.json").read_text())
    assert seen[0]["training"] == {"tracking": False}
    assert seen[0]["serving"]["model_source"] == "file"
    assert seen[1]["training"] == {"tracking": True}
    assert seen[1]["serving"]["model_source"] == "registry"
    assert seen[1]["serving"]["ab_test"] is None
    assert seen[2]["serving"]["ab_test"]["challenger_weight"] == 0.2


def test_declared_sections_a_level_does_not_emit_are_warned_about(tmp_path: Path) -> None:
    spec = yaml.safe_load(MINIMAL)
    spec["serving"] = {"ab_test": {"challenger_weight": 0.2}}
    # Manual rollback works at every level; its triggers act from level 2.
    spec["rollback"] = {"keep_versions": 3, "when": ["error_rate > 0.05"]}
    spec["ci"] = {"provider": "github"}
    (tmp_path / "mlops.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (tmp_path / "churn.csv").write_text("tenure,plan,churned\n")  # no data.train warning
    text = (tmp_path / "mlops.yaml").read_text().splitlines()
    at = {key: n + 1 for n, ln in enumerate(text) for key in ("ci:", "  when:", "  ab_test:") if ln.startswith(key)}  # fmt: skip
    for command in ("plan", "build"):
        result = run_mlops(command, "mlops.yaml", "--level", "1", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        warnings = [ln for ln in result.stderr.splitlines() if "warning:" in ln]
        assert warnings == [
            f"mlops.yaml:{at['  ab_test:']}:3: serving.ab_test: warning: declared, but level 1 "
            "does not emit it (ab-test: levels 2-3)",
            f"mlops.yaml:{at['  when:']}:3: rollback.when: warning: declared, but level 1 "
            "does not emit it (automatic-rollback: levels 2-3)",
            f"mlops.yaml:{at['ci:']}:1: ci: warning: declared, but level 1 does not emit it "
            "(github-ci: levels 2-3)",
        ]
    at_two = run_mlops("build", "mlops.yaml", "--level", "2", cwd=tmp_path)
    assert at_two.returncode == 0, at_two.stderr
    assert "warning" not in at_two.stderr
    # Monitoring runs at every level; comparing with a reference needs level 1.
    spec["monitors"] = {"latency": {"p99_ms": 50}, "drift": {"drift_share": 0.3}}
    (tmp_path / "mlops.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    at_zero = run_mlops("build", "mlops.yaml", "--level", "0", cwd=tmp_path).stderr
    assert "monitors.drift: warning: declared, but level 0 does not emit it" in at_zero
    assert "latency" not in at_zero
    # Undeclared sections keep quiet even though the schema fills in their defaults.
    (tmp_path / "mlops.yaml").write_text(MINIMAL)
    assert "warning" not in run_mlops("plan", "mlops.yaml", cwd=tmp_path).stderr


def test_check_fails_when_the_runtime_pin_differs(tmp_path: Path) -> None:
    (tmp_path / "mlops.yaml").write_text(MINIMAL)
    assert run_mlops("build", "mlops.yaml", cwd=tmp_path).returncode == 0
    assert run_mlops("build", "--check", "mlops.yaml", cwd=tmp_path).returncode == 0
    requirements = tmp_path / "generated/churn/requirements.txt"
    requirements.write_text(requirements.read_text().replace(f"=={__version__}", "==0.0.1"))
    checked = run_mlops("build", "--check", "mlops.yaml", cwd=tmp_path)
    assert checked.returncode == 1
    assert f"pins mlops-runtime 0.0.1, but this is mlops-compiler {__version__}" in checked.stderr


def test_score_is_a_stage_of_every_project_but_those_completed_from_a_feature_store() -> None:
    """Scoring reads every feature from its input file; a feature-store project's rows are
    completed by the server, so it has no score stage to refuse them with."""
    for project in sorted(GENERATED.iterdir()):
        config = json.loads((project / "config.json").read_text())
        assert ("score" in config["stages"]) == (not config.get("feature_store")), project.name
