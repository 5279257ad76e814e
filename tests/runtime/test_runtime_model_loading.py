"""Loading a served model safely: the recorded sha256 first, then skops with the recorded
trusted types, pickle only when the spec opts in; MLFLOW_ALLOW_PICKLE_DESERIALIZATION is never
needed and never set. Real training runs, a real MLflow SQLite store in a temporary folder.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from mlops_runtime.data import load_table
from mlops_runtime.features.pipeline import model_frame
from mlops_runtime.serve.core import ServingCore
from mlops_runtime.serve.model_source import LocalSource, RegistrySource
from mlops_runtime.tracking.lineage import lineage, render
from mlops_runtime.tracking.store import (
    MODEL_SHA256_TAG,
    SERIALIZATION_TAG,
    ModelLoadRefused,
)
from mlops_runtime.train import plain
from mlops_runtime.train.stage import EXIT_OK, run_training

pytestmark = pytest.mark.slow

SWITCH = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
NAME = "penguins"
Config = tuple[dict[str, Any], dict[str, Any]]


class Payload:
    """Unpickling this creates a directory: proof that a file was (or was not) deserialised."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


@pytest.fixture(autouse=True)
def _no_switch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Other tests in the same worker process set it; these must start without it.
    monkeypatch.delenv(SWITCH, raising=False)
    yield


@pytest.fixture
def deserialised(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the deserialisers called: lets a test show that nothing was loaded."""
    import cloudpickle
    import skops.io

    calls: list[str] = []

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(skops.io, "loads", spy("skops", skops.io.loads))
    monkeypatch.setattr(skops.io, "load", spy("skops", skops.io.load))
    monkeypatch.setattr(cloudpickle, "loads", spy("cloudpickle", cloudpickle.loads))
    monkeypatch.setattr(pickle, "loads", spy("pickle", pickle.loads))
    return calls


def client_for(workdir: Path) -> MlflowClient:
    uri = f"sqlite:///{workdir / 'mlruns.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def train(config: dict[str, Any], contract: dict[str, Any]) -> str:
    result = run_training(config, contract)
    assert result.exit_code == EXIT_OK, result.message
    assert result.version is not None
    return result.version


def artifact_dir(client: MlflowClient, version: str) -> Path:
    """Where the local store keeps a version's model files."""
    uri = client.get_model_version_download_uri(NAME, version)
    return Path(url2pathname(urlparse(uri).path))


def expected_digest(folder: Path, data_name: str) -> str:
    """The digest as documented, computed here independently of the runtime's code."""
    lines = [
        f"{name}\0{hashlib.sha256((folder / name).read_bytes()).hexdigest()}\n"
        for name in sorted(["MLmodel", data_name])
    ]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def test_registered_model_loads_without_the_pickle_switch(
    dataset_config: Callable[[str], Config], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, contract = dataset_config(NAME)
    train(config, contract)
    client = client_for(workdir)
    version = client.get_model_version(NAME, "1")
    folder = artifact_dir(client, "1")
    assert version.tags[SERIALIZATION_TAG] == "skops"
    assert version.tags[MODEL_SHA256_TAG] == expected_digest(folder, "model.skops")

    source = RegistrySource(config)
    ref = source.lookup("champion")
    assert ref is not None and ref.version == "1"
    model = source.load(ref)
    assert SWITCH not in os.environ

    # MLflow's own loader is gated by the switch; ours does not go through it at all.
    monkeypatch.setenv(SWITCH, "false")
    again = source.load(ref)
    assert os.environ[SWITCH] == "false"

    typed = load_table(Path(config["data"]["path"]), contract)
    frame = model_frame(typed.head(20), config)
    monkeypatch.setenv(SWITCH, "true")
    mlflow.set_registry_uri(client.tracking_uri)
    reference = mlflow.sklearn.load_model(f"models:/{NAME}/1")
    np.testing.assert_array_equal(model.predict(frame), reference.predict(frame))
    np.testing.assert_array_equal(again.predict_proba(frame), reference.predict_proba(frame))

    info = lineage(client, NAME)
    assert info["model_sha256"] == version.tags[MODEL_SHA256_TAG]
    assert info["serialization"] == "skops"
    assert f"sha256 {info['model_sha256']} (skops)" in render(info)


def test_tampered_artifact_is_refused_and_the_old_version_keeps_serving(
    dataset_config: Callable[[str], Config], workdir: Path, deserialised: list[str]
) -> None:
    config, contract = dataset_config(NAME)
    train(config, contract)
    core = ServingCore(config, contract, source=RegistrySource(config))
    try:
        core.install(core.refresh())
        assert core.champion is not None and core.champion.model.version == "1"

        assert train(config, contract) == "2"  # auto-promoted: the next reload picks it up
        client = client_for(workdir)
        data = artifact_dir(client, "2") / "model.skops"
        data.write_bytes(data.read_bytes() + b"\0")
        del deserialised[:]
        with pytest.raises(ModelLoadRefused, match="sha256 mismatch") as refused:
            core.install(core.refresh())  # what the reload loop does, inside its try
        assert "version 2" in str(refused.value)
        assert client.get_model_version(NAME, "2").tags[MODEL_SHA256_TAG] in str(refused.value)
        assert deserialised == []
        assert core.champion.model.version == "1"
    finally:
        core.batch_executor.shutdown(wait=False)


def test_trusted_types_outside_the_allowed_packages_are_refused_even_if_registered(
    dataset_config: Callable[[str], Config], workdir: Path, deserialised: list[str]
) -> None:
    # Someone able to write both the artifact store and the registry tags: the hash matches,
    # but the MLmodel file trusts a type no model of this spec may contain.
    config, contract = dataset_config(NAME)
    train(config, contract)
    client = client_for(workdir)
    folder = artifact_dir(client, "1")
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"]["skops_trusted_types"].append("builtins.eval")
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    client.set_model_version_tag(
        NAME, "1", MODEL_SHA256_TAG, expected_digest(folder, "model.skops")
    )
    source = RegistrySource(config)
    ref = source.lookup("champion")
    assert ref is not None
    with pytest.raises(ModelLoadRefused, match=r"builtins\.eval"):
        source.load(ref)
    assert deserialised == []


def test_version_without_a_recorded_hash_is_refused(
    dataset_config: Callable[[str], Config], workdir: Path, deserialised: list[str]
) -> None:
    config, contract = dataset_config(NAME)
    train(config, contract)
    client = client_for(workdir)
    client.delete_model_version_tag(NAME, "1", MODEL_SHA256_TAG)
    source = RegistrySource(config)
    ref = source.lookup("champion")
    assert ref is not None
    with pytest.raises(ModelLoadRefused, match=f"no {MODEL_SHA256_TAG} tag"):
        source.load(ref)
    assert deserialised == []
    assert "servers refuse to load it" in render(lineage(client, NAME))


def test_pickle_opt_in_round_trips_and_is_still_hash_checked(
    dataset_config: Callable[[str], Config],
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    deserialised: list[str],
) -> None:
    config, contract = dataset_config(NAME)
    config["model"]["serialization"] = "pickle"
    train(config, contract)
    client = client_for(workdir)
    folder = artifact_dir(client, "1")
    version = client.get_model_version(NAME, "1")
    assert version.tags[SERIALIZATION_TAG] == "pickle"
    assert version.tags[MODEL_SHA256_TAG] == expected_digest(folder, "model.pkl")
    assert not (folder / "model.skops").exists()

    source = RegistrySource(config)
    ref = source.lookup("champion")
    assert ref is not None
    model = source.load(ref)
    assert deserialised == ["cloudpickle"]
    assert SWITCH not in os.environ
    typed = load_table(Path(config["data"]["path"]), contract)
    assert len(model.predict(model_frame(typed.head(5), config))) == 5

    # A server whose spec no longer opts in refuses the pickled version.
    del deserialised[:]
    skops_only = {**config, "model": {**config["model"], "serialization": "skops"}}
    with pytest.raises(ModelLoadRefused, match="arbitrary code"):
        RegistrySource(skops_only).load(ref)
    # So does one whose operator switched MLflow's unpickling off.
    monkeypatch.setenv(SWITCH, "false")
    with pytest.raises(ModelLoadRefused, match=SWITCH):
        source.load(ref)
    monkeypatch.delenv(SWITCH)
    assert deserialised == []

    # A replaced pickle is refused before it is unpickled: the payload never runs.
    marker = workdir / "payload-ran"
    (folder / "model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ModelLoadRefused, match="sha256 mismatch"):
        source.load(ref)
    assert not marker.exists()
    assert deserialised == []


def test_level_0_model_file_is_checked_against_its_digest(
    dataset_config: Callable[[str], Config], workdir: Path, deserialised: list[str]
) -> None:
    config, contract = dataset_config(NAME)
    path = workdir / "model" / "model.skops"
    plain.train(config, contract, model_path=path)
    digest_file = workdir / "model" / "model.skops.sha256"
    recorded = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest_file.read_text() == f"{recorded}  model.skops\n"  # `sha256sum -c` reads it

    source = LocalSource(config, path)
    ref = source.lookup("champion")
    assert ref is not None and ref.version == f"local-{recorded[:12]}"
    typed = load_table(Path(config["data"]["path"]), contract)
    assert len(source.load(ref).predict(model_frame(typed.head(5), config))) == 5
    assert deserialised == ["skops"]

    marker = workdir / "payload-ran"
    path.write_bytes(pickle.dumps(Payload(marker)))
    ref = source.lookup("champion")
    assert ref is not None
    with pytest.raises(ModelLoadRefused, match="sha256 mismatch"):
        source.load(ref)
    assert not marker.exists()

    digest_file.unlink()
    with pytest.raises(ModelLoadRefused, match=r"model\.skops\.sha256 is missing"):
        source.load(ref)
    assert not marker.exists()
    assert deserialised == ["skops"]


def rewrite_digest(path: Path) -> None:
    """What someone who can write to the model folder does: the digest follows the file."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")


def test_level_0_refuses_a_replaced_model_even_with_its_digest_rewritten(
    dataset_config: Callable[[str], Config], workdir: Path, deserialised: list[str]
) -> None:
    """The red-team's finding: model file and digest replaced together ran the attacker's
    pickle on the next hot reload. skops restores only the estimator's packages' types."""
    import skops.io

    config, contract = dataset_config(NAME)
    path = workdir / "model" / "model.skops"
    plain.train(config, contract, model_path=path)
    source = LocalSource(config, path)
    marker = workdir / "payload-ran"

    path.write_bytes(pickle.dumps(Payload(marker)))
    rewrite_digest(path)
    ref = source.lookup("champion")
    assert ref is not None
    with pytest.raises(ModelLoadRefused, match="is not a skops file"):
        source.load(ref)

    # A real skops file naming a type outside sklearn/numpy/scipy is refused before loading.
    skops.io.dump({"payload": Payload(marker)}, path)
    rewrite_digest(path)
    ref = source.lookup("champion")
    assert ref is not None
    with pytest.raises(ModelLoadRefused, match=r"names types outside .*Payload"):
        source.load(ref)
    assert not marker.exists()
    assert deserialised == []


def test_level_0_pickle_only_where_the_spec_opted_in(
    dataset_config: Callable[[str], Config], workdir: Path
) -> None:
    config, contract = dataset_config(NAME)
    pickled = {**config, "model": {**config["model"], "serialization": "pickle"}}
    path = workdir / "model" / "model.joblib"
    plain.train(pickled, contract, model_path=path)
    ref = LocalSource(pickled, path).lookup("champion")
    assert ref is not None
    typed = load_table(Path(config["data"]["path"]), contract)
    rows = model_frame(typed.head(5), config)
    assert len(LocalSource(pickled, path).load(ref).predict(rows)) == 5
    with pytest.raises(ModelLoadRefused, match="is not a skops file"):
        LocalSource(config, path).load(ref)  # the same joblib file, the spec's default
