"""The level-3 example's Kubernetes manifests, rendered by kustomize through an overlay as a
user deploys them, run with `podman kube play` against the image the project's image stage
builds: the serving pod starts as the manifest's user with its securityContext honoured,
writes its volumes, answers as the local serve stage does, and the train Job's, the monitor
CronJob's and the batch-scoring CronJob's pod templates, played as pods, run to completion
beside it.

What podman 4.3's `kube play` makes of the manifests (found by running them here):
  - kinds: Deployment (one pod, `<name>-pod-0`; no replicas beyond it), ConfigMap, Secret
    and PersistentVolumeClaim are played; Service, HorizontalPodAutoscaler,
    PodDisruptionBudget, Job and CronJob are passed over without a word, so the batch pod
    templates are played as Pods here. The namespace is ignored.
  - it has no --publish, and a containerPort without a hostPort is published on 0.0.0.0 with
    the same number, so the overlay gives the serving port a hostPort on 127.0.0.1.
  - the livenessProbe becomes the container's healthcheck (its period the interval), run as
    `curl` inside the container, which the image does not have, against the port by number
    only (the named port `http` becomes 0); there are no systemd timers here to run it
    either. startupProbe and readinessProbe are ignored. So /health and /ready are asked
    directly.
  - securityContext: runAsUser/runAsGroup, readOnlyRootFilesystem, capabilities.drop and
    allowPrivilegeEscalation are honoured, seccomp RuntimeDefault is podman's default
    filter; fsGroup adds no supplementary group. A new volume takes the owner of the
    image's folder it is mounted on (the Dockerfile gives prediction_log and reports to the
    app's user; /tmp stays root's, mode 1777). resources.limits become cgroup limits.
  - an emptyDir is a volume named after the pod's volume (`tmp`), so pods played at the same
    time share it; it goes with the last pod using it. A claim is a named volume, kept; a
    claim whose volume exists already fails the play.
  - a Secret document is stored as YAML but read back, when a secretKeyRef is resolved, as a
    JSON map of base64 values, so a played Secret never resolves: the test puts the rendered
    Secret's data into podman's store itself.
  - the pod's pause container is built locally around catatonit (scripts/container-engine
    installs it).
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from tests.e2e.images import (
    APP_USER,
    Engine,
    engine,
    example_requests,
    free_port,
    local_serve,
    open_to_the_app_user,
    post,
    project_image,
    trained_project,
    wait_ready,
    without_ids,
)
from tests.system_programs import require

# One worker holds the module's pods (its tests share them, in this order).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kube-play")]

NAME = "breast-cancer"
# Requests sent from the training data's own rows, so their labels are known.
LABELLED = 60
# Rows of the training data (target left out) the score CronJob scores from the data volume.
SCORED = 80
# The volumes the overlay makes claims (the docs' overlay): the serving log, the reference
# profiles training writes, the monitor's reports and history, the score runs' folders.
CLAIMS = ("prediction-log", "reports", "scored")


def overlay(root: Path, project: Path, image: str, port: int, shared: bool) -> Path:
    """What a user's overlay of the generated base sets (the image CI built, the Secret and,
    when `shared`, the volumes the pods share as claims), plus what only this machine needs,
    marked below."""
    folder = root / f"overlay-{port}"
    folder.mkdir()
    repository, tag = image.rsplit(":", 1)
    serving_port = json.loads((project / "config.json").read_text())["serving"]["port"]
    resources = [f"../generated/{NAME}/deploy/kubernetes"]
    claims = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
        for claim in CLAIMS
    ]
    if shared:
        (folder / "claims.yaml").write_text(yaml.safe_dump_all(claims))
        resources.append("claims.yaml")

    def pod(container: str) -> dict[str, Any]:
        volumes: list[dict[str, Any]] = [
            # One claim each, shared by every pod that mounts the volume (the docs' overlay).
            {"name": v, "emptyDir": None, "persistentVolumeClaim": {"claimName": v}}
            for v in CLAIMS
            if shared and (v != "scored" or container == "score")
        ]
        # This machine only: there is no tracking server, so MLFLOW_TRACKING_URI is the
        # project's SQLite registry, and the project folder is bound at the same path so the
        # artifact locations the registry records resolve inside the pods.
        volumes.append({"name": "project", "hostPath": {"path": str(project), "type": "Directory"}})
        mounts = [{"name": "project", "mountPath": str(project)}]
        if container != "serve":
            # This machine only: the `data` volume (the training data and late labels) is a
            # host folder, where a cluster would have a claim or an init container.
            volumes.append(
                {
                    "name": "data",
                    "emptyDir": None,
                    "hostPath": {"path": str(root / "data"), "type": "Directory"},
                }
            )
        body: dict[str, Any] = {"name": container, "volumeMounts": mounts}
        if container == "serve":
            # This machine only: podman publishes the serving port; on 127.0.0.1, a free one.
            body["ports"] = [
                {"containerPort": serving_port, "hostPort": port, "hostIP": "127.0.0.1"}
            ]
        return {"spec": {"containers": [body], "volumes": volumes}}

    def patch(api: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        document = {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}
        return {"patch": yaml.safe_dump(document)}

    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # The base's namespace for the overlay's own Secret and claims too: kustomize renames
        # a reference (the hashed Secret, the suffixed claims) only within one namespace.
        "namespace": NAME,
        "resources": resources,
        # Names of their own, so the run's pods, claims and Secret are nobody else's.
        "nameSuffix": f"-{port}",
        "images": [{"name": "ghcr.io/acme/breast-cancer", "newName": repository, "newTag": tag}],
        "secretGenerator": [
            {
                "name": f"{NAME}-secrets",
                "literals": [f"MLFLOW_TRACKING_URI=sqlite:///{project}/mlruns.db"],
            }
        ],
        "patches": [
            patch("apps/v1", "Deployment", NAME, {"template": pod("serve")}),
            patch("batch/v1", "Job", f"{NAME}-train", {"template": pod("train")}),
            *(
                patch(
                    "batch/v1",
                    "CronJob",
                    f"{NAME}-{stage}",
                    {"jobTemplate": {"spec": {"template": pod(stage)}}},
                )
                for stage in ("monitor", "score")
            ),
        ],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return folder


def render(folder: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` of `folder`: the documents `kubectl apply -k` would send."""
    done = subprocess.run(
        [require("kubectl"), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    """The one document of `kind` (of that component label, where several are)."""
    (doc,) = [
        d
        for d in docs
        if d["kind"] == kind
        and component in (None, d["metadata"].get("labels", {}).get("app.kubernetes.io/component"))
    ]
    return doc


def as_pod(doc: dict[str, Any]) -> dict[str, Any]:
    """A Job's or a CronJob's pod template as the Pod the Job controller would make of it."""
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    template = spec["template"]
    metadata = {"name": doc["metadata"]["name"], "labels": template["metadata"]["labels"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


@dataclass
class Played:
    podman: Engine
    root: Path
    project: Path
    port: int
    base: str
    docs: list[dict[str, Any]]
    # What the played files made, for `podman kube down`, and what to remove after them.
    files: list[Path]
    secrets: list[str]
    claims: list[str]

    def play(self, docs: list[dict[str, Any]], name: str) -> str:
        """`podman kube play` of `docs`, given to it as JSON documents (see the module doc)."""
        path = self.root / f"{name}.json"
        path.write_text("".join(f"---\n{json.dumps(doc)}\n" for doc in docs))
        self.files.append(path)
        done = self.podman.run("kube", "play", str(path))
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def pod_names(self) -> set[str]:
        listed = self.podman.run("pod", "ls", "--format", "{{.Name}}").stdout.split()
        return {
            name for name in listed if name.endswith(f"-{self.port}") or f"-{self.port}-" in name
        }

    def inspect(self, container: str) -> dict[str, Any]:
        done = self.podman.run("inspect", container)
        assert done.returncode == 0, done.stderr
        (info,) = json.loads(done.stdout)
        inspected: dict[str, Any] = info
        return inspected

    def claim(self, name: str) -> Path:
        done = self.podman.run("volume", "inspect", "--format", "{{.Mountpoint}}", name)
        assert done.returncode == 0, done.stderr
        return Path(done.stdout.strip())

    def run_to_completion(
        self, kind: str, component: str | None = None, timeout: float = 600
    ) -> tuple[int, str]:
        """The pod template of the `kind` (Job, CronJob; of `component`, where several are)
        played as a Pod: its container's exit code and output once it stopped."""
        workload = of_kind(self.docs, kind, component)
        pod = as_pod(workload)
        self.play([of_kind(self.docs, "ConfigMap"), pod], pod["metadata"]["name"])
        (container,) = pod["spec"]["containers"]
        name = f"{pod['metadata']['name']}-{container['name']}"
        waited = self.podman.run("wait", name, timeout=timeout)
        assert waited.returncode == 0, waited.stderr
        logs = self.podman.run("logs", name)
        return int(waited.stdout.strip()), logs.stdout + logs.stderr


SERVE = "serve"


@contextlib.contextmanager
def deployed(
    podman: Engine, root: Path, project: Path, image: str, shared: bool
) -> Iterator[Played]:
    """The overlay's render played as `kubectl apply -k` would send it, the serving pod ready;
    everything it made removed after."""
    port = free_port()
    docs = render(overlay(root, project, image, port, shared))
    state = Played(podman, root, project, port, f"http://127.0.0.1:{port}", docs, [], [], [])
    try:
        # podman 4.3 stores a Secret document as YAML and reads it back as a JSON map of
        # base64 values when it resolves a secretKeyRef (so a played Secret never resolves):
        # the rendered Secret goes into podman's store in the form it reads.
        secret = of_kind(docs, "Secret")
        with_data = root / f"secret-{port}.json"
        with_data.write_text(json.dumps(secret["data"]))
        created = podman.run("secret", "create", secret["metadata"]["name"], str(with_data))
        assert created.returncode == 0, created.stderr
        state.secrets.append(secret["metadata"]["name"])
        state.claims += [
            d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"
        ]
        state.play([d for d in docs if d["kind"] != "Secret"], f"rendered-{port}")
        try:
            wait_ready(
                state.base,
                lambda: state.inspect(serving(state))["State"]["Running"] is True,
                timeout=180,
            )
        except AssertionError:
            logs = podman.run("logs", serving(state))
            raise AssertionError(logs.stdout[-3000:] + logs.stderr[-3000:]) from None
        yield state
    finally:
        for path in reversed(state.files):
            podman.run("kube", "down", str(path))
        for name in state.secrets:
            podman.run("secret", "rm", name)
        for name in state.claims:
            podman.run("volume", "rm", "--force", name)


@dataclass(frozen=True)
class Built:
    podman: Engine
    root: Path
    project: Path
    image: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    podman = engine()
    root = tmp_path_factory.mktemp("kube")
    project = trained_project(NAME, root)
    image = project_image(podman, project)
    data = root / "data"
    data.mkdir()
    (data / "breast_cancer.csv").write_bytes((root / "specs/data/breast_cancer.csv").read_bytes())
    # The host folders the pods bind: the app's user (10001) writes the registry and reads
    # the data.
    open_to_the_app_user(project, data)
    return Built(podman, root, project, image.tag)


@pytest.fixture(scope="module")
def played(built: Built) -> Iterator[Played]:
    with deployed(built.podman, built.root, built.project, built.image, shared=True) as state:
        yield state


def serving(played: Played) -> str:
    return f"{NAME}-{played.port}-pod-0-{SERVE}"


@pytest.fixture(scope="module")
def local(played: Played) -> Iterator[str]:
    with local_serve(played.project) as base:
        yield base


def test_the_generated_emptydirs_take_the_app_users_writes(built: Built) -> None:
    """The base's volumes as generated (no claims): podman's emptyDirs, which the pod's
    non-root user must write (the class of bug this module exists for), and the prediction
    log lands in its own."""
    with deployed(built.podman, built.root, built.project, built.image, shared=False) as plain:
        pod = of_kind(plain.docs, "Deployment")["spec"]["template"]["spec"]
        empty = {v["name"] for v in pod["volumes"] if v.get("emptyDir") == {}}
        assert empty == {"prediction-log", "reports", "tmp"}
        (container,) = pod["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        endpoint, body = example_requests(plain.project)["predict"]
        status, answer = post(plain.base + endpoint, body)
        assert status == 200, answer
        info = plain.inspect(serving(plain))
        on_volumes = {m["Destination"] for m in info["Mounts"] if m["Type"] == "volume"}
        assert {mounts[name] for name in empty} <= on_volumes, info["Mounts"]
        for name in empty:
            probe = f"{mounts[name]}/.written-by-the-app-user"
            done = plain.podman.run("exec", serving(plain), "touch", probe)
            assert done.returncode == 0, (name, done.stderr)
        uid, gid = APP_USER.split(":")
        deadline = time.monotonic() + 30
        while True:
            listed = plain.podman.run(
                "exec", serving(plain), "find", mounts["prediction-log"], "-name", "*.jsonl",
                "-size", "+0", "-user", uid, "-group", gid,
            ).stdout.split()  # fmt: skip
            if listed:
                break
            assert time.monotonic() < deadline, "no prediction log of the app user's"
            time.sleep(0.5)


def test_the_rendered_manifests_play_as_one_serving_pod(played: Played) -> None:
    """Of the render, podman plays the Deployment (one pod) and the claims; the Job and the
    CronJob make no pod (they are played from their templates below)."""
    assert played.pod_names() == {f"{NAME}-{played.port}-pod-0"}
    for claim in played.claims:
        assert played.claim(claim).is_dir(), claim
    assert set(played.claims) == {f"{claim}-{played.port}" for claim in CLAIMS}


def test_the_pod_runs_as_the_manifest_user_with_its_security_context(played: Played) -> None:
    deployment = of_kind(played.docs, "Deployment")
    pod_spec = deployment["spec"]["template"]["spec"]
    user = pod_spec["securityContext"]["runAsUser"]
    group = pod_spec["securityContext"]["runAsGroup"]
    assert f"{user}:{group}" == APP_USER
    info = played.inspect(serving(played))
    assert info["Config"]["User"] == f"{user}:{group}"
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert "no-new-privileges" in info["HostConfig"]["SecurityOpt"]
    assert not info["EffectiveCaps"]
    # The limits of `resources` become the container's cgroup limits.
    assert info["HostConfig"]["Memory"] == 1024**3
    assert info["HostConfig"]["CpuQuota"] == info["HostConfig"]["CpuPeriod"]
    # From inside: the process's ids, its capability sets, no-new-privileges and seccomp.
    status = played.podman.run("exec", serving(played), "cat", "/proc/1/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == str(user) and fields["Gid"].split()[0] == str(group)
    assert int(fields["CapEff"], 16) == int(fields["CapBnd"], 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"  # a filter: RuntimeDefault
    root = played.podman.run("exec", serving(played), "touch", "/app/written")
    assert root.returncode != 0 and "Read-only file system" in root.stderr


def test_the_app_user_writes_every_volume_it_mounts(played: Played) -> None:
    """The class of bug this module exists for: a non-root user that cannot write its own
    volumes (the claims, and /tmp, the emptyDir left as generated)."""
    (container,) = of_kind(played.docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    writable = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert {"/app/prediction_log", "/app/reports", "/tmp"} <= set(writable)
    for folder in writable:
        probe = f"{folder}/.written-by-the-app-user"
        done = played.podman.run("exec", serving(played), "touch", probe)
        assert done.returncode == 0, (folder, done.stderr)
        played.podman.run("exec", serving(played), "rm", probe)


def test_the_probes_podman_keeps_and_what_they_ask(played: Played) -> None:
    (container,) = of_kind(played.docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    liveness = container["livenessProbe"]
    health = played.inspect(serving(played))["Config"]["Healthcheck"]
    # podman runs the livenessProbe as a healthcheck at its period (it cannot pass here: it
    # is curl, which the image lacks, on the port by number, a named one becoming 0).
    assert health["Interval"] == liveness["periodSeconds"] * 10**9
    assert any(liveness["httpGet"]["path"] in part for part in health["Test"]), health
    # What the kubelet would ask, asked directly: alive, then ready with a model.
    for probe in ("livenessProbe", "startupProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        with urllib.request.urlopen(played.base + path, timeout=5) as response:
            assert response.status == 200, (probe, path)
    with urllib.request.urlopen(f"{played.base}/ready", timeout=5) as response:
        assert response.headers["X-Model-Version"] == "1"


def test_it_answers_as_the_local_serve_stage(played: Played, local: str) -> None:
    for protocol, (endpoint, body) in example_requests(played.project).items():
        status, answer = post(played.base + endpoint, body)
        expected_status, expected = post(local + endpoint, body)
        assert status == expected_status == 200, (protocol, answer)
        assert without_ids(answer) == without_ids(expected), protocol


@pytest.fixture(scope="module")
def labelled(played: Played) -> int:
    """Requests from the training data's own rows, and their labels written late into the
    data volume, where the monitor's --labels reads them: how many."""
    with (played.root / "specs/data/breast_cancer.csv").open() as rows:
        records = list(csv.DictReader(rows))[:LABELLED]
    labels = []
    for record in records:
        label = record.pop("malignant")
        status, answer = post(f"{played.base}/predict", {k: float(v) for k, v in record.items()})
        assert status == 200, answer
        labels.append({"request_id": answer["request_id"], "malignant": label})
    path = played.root / "data/breast_cancer_labels.csv"
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, ["request_id", "malignant"])
        writer.writeheader()
        writer.writerows(labels)
    open_to_the_app_user(path.parent)
    return len(labels)


def test_the_prediction_log_lands_on_its_claim_as_the_app_user(
    played: Played, labelled: int
) -> None:
    # Every request the pod answered: the examples sent before the labelled rows, too (the
    # monitor Job counts them all).
    logged = labelled + len(example_requests(played.project))
    folder = played.claim(f"prediction-log-{played.port}")
    deadline = time.monotonic() + 30
    while True:
        files = [p for p in folder.rglob("*.jsonl") if p.stat().st_size]
        lines = sum(len(p.read_text().splitlines()) for p in files)
        if lines >= logged:
            break
        assert time.monotonic() < deadline, f"{lines} lines in the prediction log's claim"
        time.sleep(0.5)
    uid, gid = map(int, APP_USER.split(":"))
    for path in files:
        assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid), path


def serving_version(base: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{base}/ready", timeout=5) as response:
            version: str | None = response.headers.get("X-Model-Version")
            return version
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_the_train_job_trains_in_its_pod_and_the_serving_pod_follows(
    played: Played, labelled: int
) -> None:
    """The Job's pod template, played as a Pod: it trains on the data volume, registers
    version 2 (the spec promotes on its gate) and writes its reference profile to the reports
    claim; the serving pod moves to it without a restart."""
    started = played.inspect(serving(played))["State"]["StartedAt"]
    code, output = played.run_to_completion("Job")
    assert code == 0, output[-3000:]
    assert "registered version 2 as champion" in output, output[-3000:]
    run = output.split("run: ")[-1].split()[0]
    reference = played.claim(f"reports-{played.port}") / "reference" / f"{run}.json"
    assert reference.is_file(), sorted(reference.parent.parent.rglob("*"))
    deadline = time.monotonic() + 60
    while (seen := serving_version(played.base)) != "2":
        assert time.monotonic() < deadline, f"still serving version {seen}, not 2"
        time.sleep(0.5)
    info = played.inspect(serving(played))
    assert info["State"]["StartedAt"] == started and info["RestartCount"] == 0


def test_the_monitor_job_runs_over_the_serving_pods_log(played: Played, labelled: int) -> None:
    """The CronJob's pod template, played as a Pod: it reads the serving pod's prediction log
    from the shared claim and the late labels from the data volume, and writes its report to
    the reports claim; it exits with one of its documented codes (0 ok, 1 warning, 3 alert)."""
    code, output = played.run_to_completion("CronJob", "monitor")
    assert code in (0, 1, 3), output[-3000:]
    latest = played.claim(f"reports-{played.port}") / "monitor/latest.json"
    assert latest.is_file(), output[-3000:]
    report = json.loads(latest.read_text())
    assert report["exit_code"] == code
    # Every request the serving pod logged: the examples (3 protocols, 1 row each) and the
    # labelled rows; the labels all joined; the train Job's reference profile found.
    examples = len(example_requests(played.project))
    folder = played.claim(f"prediction-log-{played.port}")
    assert report["traffic"]["requests"] == labelled + examples, (
        report["traffic"],
        report.get("problems"),
        report.get("window"),
        {p.name: (p.stat().st_mtime, p.read_text()[:600]) for p in folder.iterdir()},
    )
    assert report["reference"]["status"] == "ok", report["reference"]
    # The live metric from the late labels, every one joined.
    performance = report["performance"]
    assert performance["labelled"] == labelled and performance["status"] == "ok", performance
    assert (latest.parent / "dashboard.html").is_file()


def test_the_score_cronjob_scores_the_data_volumes_input_onto_its_claim(played: Played) -> None:
    """The batch-scoring CronJob's pod template, played as a Pod (after the monitor, whose
    counts its logged rows would change): it reads the spec's batch.input from the data
    volume, scores every row with the registry's champion (the train Job's version 2, unless
    the monitor Job's automatic rollback moved it back), exactly as the serving pod answers
    them, and renames its complete output folder into place on the `scored` claim; exit 0,
    every row scored."""
    cron = of_kind(played.docs, "CronJob", "score")
    (container,) = as_pod(cron)["spec"]["containers"]
    args = container["args"]
    inside = PurePosixPath(args[args.index("--input") + 1]).relative_to("/app/data")
    with (played.root / "specs/data/breast_cancer.csv").open() as rows:
        records = list(csv.DictReader(rows))[:SCORED]
    for record in records:
        record.pop("malignant")
    folder = played.root / "data" / inside
    folder.mkdir(parents=True)
    with (folder / "part-0.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    open_to_the_app_user(folder)
    code, output = played.run_to_completion("CronJob", "score")
    assert code == 0, output[-3000:]
    claim = played.claim(f"scored-{played.port}")
    (run,) = [p for p in claim.iterdir() if not p.name.startswith(".")]
    # {date}-{time} of the run's UTC start, and nothing half-written left beside it.
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{6}", run.name), run.name
    summary = json.loads((run / "_summary.json").read_text())
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (SCORED, SCORED, 0)
    scored = pq.read_table(run / "predictions").to_pylist()
    assert [r["row"] for r in scored] == list(range(SCORED))
    (champion,) = {r["model_version"] for r in scored}
    assert champion in ("1", "2"), champion
    # The serving pod follows the registry within its reload interval: by now it answers with
    # the champion the score pod resolved.
    deadline = time.monotonic() + 30
    while serving_version(played.base) != champion:
        assert time.monotonic() < deadline, (
            f"serving {serving_version(played.base)}, not {champion}"
        )
        time.sleep(0.5)
    status, answer = post(
        f"{played.base}/predict", [{k: float(v) for k, v in r.items()} for r in records]
    )
    assert status == 200 and answer["model_version"] == champion, answer
    assert [str(r["prediction"]) for r in scored] == [str(p) for p in answer["predictions"]]
    uid, gid = map(int, APP_USER.split(":"))
    assert (run.stat().st_uid, run.stat().st_gid) == (uid, gid)


def test_the_serving_pod_stops_cleanly_on_sigterm(played: Played) -> None:
    """Last: it stops the serving pod. What the kubelet sends on a rollout or a drain, within
    the pod's grace period (Kubernetes' default, 30 s, since the manifest sets none)."""
    pod = of_kind(played.docs, "Deployment")["spec"]["template"]["spec"]
    grace = pod.get("terminationGracePeriodSeconds", 30)
    started = time.monotonic()
    stopped = played.podman.run("stop", "--time", str(grace), serving(played))
    assert stopped.returncode == 0, stopped.stderr
    assert time.monotonic() - started < grace
    assert played.inspect(serving(played))["State"]["ExitCode"] == 0
