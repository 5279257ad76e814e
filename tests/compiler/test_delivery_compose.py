"""The one-machine compose stack (deploy/compose/): compose.yaml passes the compose-spec schema
and docker-compose's own check, prometheus.yml passes promtool with the rules it loads, and the
services are wired to each other and to the project's files.

The golden penguins project is level 2; a level-3 variant of breast-cancer (compose instead of
Kubernetes) exercises the alert rules and the dashboard.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.compiler.conftest import REPO, SPECS, run_mlops
from tests.system_programs import require

GOLDEN = REPO / "generated" / "penguins"
SECRET_VALUES = {
    "A_TOKEN": "s3cr3t-value",
    "MLFLOW_TRACKING_URI": "s3cr3t-tracking-uri",
    "ALERT_WEBHOOK_URL": "s3cr3t-webhook-url",
}


def level3_compose_spec() -> str:
    """breast-cancer's spec with `deploy: {target: compose}`: no KServe, pipeline, autoscale
    (cluster-only) and no CI."""
    text = (SPECS / "breast-cancer.mlops.yaml").read_text(encoding="utf-8")
    head, ci, tail = text.partition("\nci:")
    assert ci and "\ndeploy:" not in head, "breast-cancer's spec ends with its ci and deploy"
    # Its batch scoring kept: the stack's score service.
    batch = "\n" + tail[tail.index("batch:") :]
    deploy = "\ndeploy:\n  target: compose\n  secrets: [MLFLOW_TRACKING_URI, A_TOKEN]"
    return head + deploy + batch


@pytest.fixture(scope="module")
def level3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compose-level3")
    shutil.copytree(SPECS, root / "specs")
    (root / "specs" / "breast-cancer.mlops.yaml").write_text(level3_compose_spec())
    result = run_mlops("build", "specs/breast-cancer.mlops.yaml", cwd=root, env=SECRET_VALUES)
    assert result.returncode == 0, result.stderr
    return root / "generated" / "breast-cancer"


@pytest.fixture(params=["penguins", "level3"])
def project(request: pytest.FixtureRequest) -> Path:
    return GOLDEN if request.param == "penguins" else request.getfixturevalue("level3")


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is a test dependency (pyproject, [test])"
    return found


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def compose(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / "deploy/compose/compose.yaml").read_text())


def config(project: Path) -> dict[str, Any]:
    return json.loads((project / "config.json").read_text())


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume, or a path relative to deploy/compose/)."""
    out = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            out[volume["target"]] = volume["source"]
        else:
            source, target, *_ = volume.split(":")
            out[target] = source
    return out


def test_compose_passes_the_compose_spec_schema_and_docker_compose(project: Path) -> None:
    folder = project / "deploy/compose"
    validator = tool("check-jsonschema")
    schema = run(validator, "--builtin-schema", "vendor.compose-spec", "compose.yaml", cwd=folder)
    assert schema.returncode == 0 and not schema.stderr, schema.stdout + schema.stderr
    checked = run(require("docker-compose"), "-f", "compose.yaml", "config", "-q", cwd=folder)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == "" and checked.stdout == ""


def test_the_serve_only_override_leaves_out_the_observability_services(project: Path) -> None:
    """compose.serve-only.yaml, added with a second -f, puts node-exporter, Prometheus and
    Grafana in a profile, so `up` starts only what runs from the project's image."""
    folder = project / "deploy/compose"
    validator = tool("check-jsonschema")
    schema = run(
        validator, "--builtin-schema", "vendor.compose-spec", "compose.serve-only.yaml", cwd=folder
    )
    assert schema.returncode == 0 and not schema.stderr, schema.stdout + schema.stderr
    files = ("-f", "compose.yaml", "-f", "compose.serve-only.yaml")
    merged = run(require("docker-compose"), *files, "config", cwd=folder)
    assert merged.returncode == 0 and merged.stderr == "", merged.stderr
    services = yaml.safe_load(merged.stdout)["services"]
    observability = {"node-exporter", "prometheus", "grafana"}
    assert {n for n, s in services.items() if s.get("profiles") == ["observability"]} == (
        observability
    )
    default = {n for n, s in services.items() if not s.get("profiles")}
    assert default == set(services) - observability - {"monitor", "score"}
    image = compose(project)["services"]["serve"]["image"]
    assert all(services[n]["image"] == image for n in default), "all from the project's image"
    readme = (project / "README.md").read_text()
    assert "`-f compose.yaml -f compose.serve-only.yaml` before `up` and `down`" in readme


def test_the_host_port_is_mlops_port_or_the_serving_port(project: Path) -> None:
    folder = project / "deploy/compose"
    port = config(project)["serving"]["port"]
    for environment, published in (({}, port), ({"MLOPS_PORT": "18081"}, 18081)):
        merged = subprocess.run(
            [require("docker-compose"), "-f", "compose.yaml", "config"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
            env={k: v for k, v in os.environ.items() if k != "MLOPS_PORT"} | environment,
        )
        assert merged.returncode == 0, merged.stderr
        (ports,) = yaml.safe_load(merged.stdout)["services"]["serve"]["ports"]
        assert ports == f"127.0.0.1:{published}:{port}/tcp", ports


def test_prometheus_config_passes_promtool_with_its_mounted_files(
    project: Path, tmp_path: Path
) -> None:
    """The files compose mounts into the Prometheus container, laid out as it sees them:
    promtool checks the configuration and every rule file it loads."""
    folder = project / "deploy/compose"
    prometheus = compose(project)["services"]["prometheus"]
    for target, source in mounts(prometheus).items():
        if source.startswith("."):
            copy = tmp_path / target.lstrip("/")
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / source, copy)
    checked = run(
        require("promtool"), "check", "config", "etc/prometheus/prometheus.yml", cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = yaml.safe_load((folder / "prometheus.yml").read_text()).get("rule_files")
    if config(project)["level"] >= 3:
        assert rules == ["alert-rules.yml"]
        assert "SUCCESS" in checked.stdout and " rules found" in checked.stdout, checked.stdout
        copied = (tmp_path / "etc/prometheus/alert-rules.yml").read_bytes()
        assert copied == (project / "monitoring/alert-rules.yml").read_bytes()
    else:
        assert rules is None and not (project / "monitoring").exists()


def test_prometheus_scrapes_the_server_as_the_rules_expect(project: Path) -> None:
    stack = compose(project)
    port = config(project)["serving"]["port"]
    scrape = yaml.safe_load((project / "deploy/compose/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    server = jobs[project.name]  # the rules and the dashboard select {job="<name>"}
    assert server["metrics_path"] == "/metrics"
    assert server["static_configs"] == [{"targets": [f"serve:{port}"]}]
    assert f"PORT={port}" in stack["services"]["serve"]["environment"]
    exporter = jobs[f"{project.name}-monitor"]["static_configs"][0]["targets"]
    assert exporter == ["node-exporter:9100"] and "node-exporter" in stack["services"]
    if config(project)["level"] >= 3:
        rules = (project / "monitoring/alert-rules.yml").read_text()
        assert f'{{job="{project.name}"' in rules


def test_node_exporter_reads_the_monitor_textfile(project: Path) -> None:
    services = compose(project)["services"]
    textfile = PurePosixPath("/app") / config(project)["monitor"]["textfile"]
    flag = "--collector.textfile.directory="
    directory = next(a for a in services["node-exporter"]["command"] if a.startswith(flag))
    assert directory == flag + str(textfile.parent)
    reports = mounts(services["monitor"])["/app/reports"]
    assert mounts(services["node-exporter"])["/app/reports"] == reports == "reports"
    assert services["node-exporter"]["volumes"] == ["reports:/app/reports:ro"]


def test_grafana_provisions_the_datasource_and_the_dashboard(project: Path) -> None:
    grafana = compose(project)["services"]["grafana"]
    script = grafana["entrypoint"][-1]
    body = script.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    (source,) = yaml.safe_load(body)["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert script.split("<<'EOF'")[0].startswith("cat > /etc/grafana/provisioning/datasources/")
    assert grafana["tmpfs"] == ["/etc/grafana/provisioning/datasources"]
    assert script.rstrip().endswith("exec /run.sh")  # the image's own entrypoint
    bound = mounts(grafana)
    if config(project)["level"] < 3:
        assert set(bound) == {"/var/lib/grafana"}
        return
    provisioning = yaml.safe_load((project / "monitoring/grafana-provisioning.yml").read_text())
    path = provisioning["providers"][0]["options"]["path"]
    assert bound[f"{path}/grafana-dashboard.json"] == "../../monitoring/grafana-dashboard.json"
    provider = next(t for t, s in bound.items() if s.endswith("grafana-provisioning.yml"))
    assert PurePosixPath(provider).parent == PurePosixPath("/etc/grafana/provisioning/dashboards")
    for source in bound.values():
        if source.startswith("."):
            assert (project / "deploy/compose" / source).is_file(), source


def test_serving_runs_the_serve_stage_hardened_on_its_port(project: Path) -> None:
    manifest = json.loads((project / "mlops-manifest.json").read_text())
    port = config(project)["serving"]["port"]
    serve = compose(project)["services"]["serve"]
    assert serve["command"] == manifest["commands"]["serve"]
    cmd = (project / "Dockerfile").read_text().split("\nCMD ", 1)[1].splitlines()[0]
    assert json.loads(cmd) == serve["command"], "the same command as the image's CMD"
    assert serve["build"] == {"context": "../..", "dockerfile": "Dockerfile"}
    assert serve["image"] == f"localhost:5000/{project.name}:latest"
    assert serve["ports"] == [f"127.0.0.1:${{MLOPS_PORT:-{port}}}:{port}"]
    assert serve["user"] == "10001:10001" and serve["read_only"] is True
    assert serve["tmpfs"] == ["/tmp"] and serve["cap_drop"] == ["ALL"]
    assert mounts(serve) == {"/app/prediction_log": "prediction-log", "/app/reports": "reports"}
    assert {"prediction-log", "reports"} <= set(compose(project)["volumes"])
    assert f"{port}/ready'" in serve["healthcheck"]["test"][-1]
    # Named volumes start owned by root: the one-shot chown runs first.
    chown = compose(project)["services"]["chown-volumes"]
    owned = ["/app/prediction_log", "/app/reports"]
    owned += ["/app/scored"] if "score" in compose(project)["services"] else []  # batch:
    assert chown["command"] == ["chown", "10001:10001", *owned]
    assert serve["depends_on"] == {"chown-volumes": {"condition": "service_completed_successfully"}}


def test_the_monitor_runs_on_demand_with_its_inputs(project: Path) -> None:
    cfg = config(project)
    manifest = json.loads((project / "mlops-manifest.json").read_text())
    monitor = compose(project)["services"]["monitor"]
    assert monitor["profiles"] == ["monitor"], "not started by `up`: cron runs it"
    assert monitor["command"][:4] == manifest["commands"]["monitor"]
    bound = mounts(monitor)
    assert "prediction-log:/app/prediction_log:ro" in monitor["volumes"]
    folder = project / "deploy/compose"

    def host_path(container: str) -> Path:
        """Where a container path of the monitor is on the host (bound folders)."""
        inside = PurePosixPath(container)
        target = next(t for t in bound if PurePosixPath(t) in (inside, *inside.parents))
        return (folder / bound[target] / inside.relative_to(target)).resolve()

    if cfg["level"] >= 3:
        labels = monitor["command"][monitor["command"].index("--labels") + 1]
        assert host_path(labels) == (project / cfg["monitor"]["labels"]["path"]).resolve()
        data = next(e for e in monitor["environment"] if e.startswith("MLOPS_TRAIN_DATA="))
        assert host_path(data.split("=", 1)[1]) == (project / cfg["data"]["path"]).resolve()
        assert host_path(data.split("=", 1)[1]).is_file(), "the spec's training data"
        assert "ALERT_WEBHOOK_URL" in monitor["environment"]
    else:
        assert monitor["command"] == manifest["commands"]["monitor"]
    readme = (project / "README.md").read_text()
    # podman-compose drops a service whose profile is not asked for, even the one named.
    assert "docker-compose --profile monitor run --rm monitor" in readme


def test_secrets_are_passed_by_name_and_never_written(level3: Path) -> None:
    services = compose(level3)["services"]
    for name in ("serve", "monitor"):
        environment = services[name]["environment"]
        for secret in ("A_TOKEN", "MLFLOW_TRACKING_URI"):
            assert environment.count(secret) == 1, (name, environment)
            assert not any(e.startswith(secret + "=") for e in environment), name
    root = level3.parent.parent  # the build folder, repository files included
    for path in root.rglob("*"):
        if path.is_file() and "specs" not in path.relative_to(root).parts:
            text = path.read_text(errors="replace")
            for secret, value in SECRET_VALUES.items():
                assert value not in text, f"{path} holds the value of {secret}"
    golden = compose(GOLDEN)["services"]["serve"]["environment"]
    assert "MLFLOW_TRACKING_URI" in golden and not any("=" in e for e in golden[3:])
