"""config.json typed (mlops_runtime/config.py) and its published JSON Schema
(schema/config.schema.json): every generated config.json reads into the types exactly and
validates against the schema, the schema names every field of the types, and it is current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mlops_runtime.config import ProjectConfig, config_schema
from mlops_runtime.json_records import Record, RecordError
from mlops_runtime.project import Project, ProjectError, load_project

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schema" / "config.schema.json"
CONFIGS = sorted((REPO / "generated").glob("*/config.json"))


def records(root: type[Record]) -> dict[str, type[Record]]:
    """Every record class reachable from `root`'s fields, by name."""
    seen: dict[str, type[Record]] = {}

    def walk(cls: type[Record]) -> None:
        seen[cls.__name__] = cls
        for _, _, hint in cls.json_fields():
            for arg in (hint, *getattr(hint, "__args__", ())):
                for inner in (arg, *getattr(arg, "__args__", ())):
                    record = isinstance(inner, type) and issubclass(inner, Record)
                    if record and inner.__name__ not in seen:
                        walk(inner)

    walk(root)
    return seen


def extras(record: Any, path: str = "") -> list[str]:
    """Keys of the document that no field of the types names."""
    if isinstance(record, list):
        return [e for i, item in enumerate(record) for e in extras(item, f"{path}[{i}]")]
    if isinstance(record, dict):
        return [e for k, item in record.items() for e in extras(item, f"{path}.{k}")]
    if not isinstance(record, Record):
        return []
    found = [f"{path}.{k}" for k in record.json_extra]
    for f, name, _ in record.json_fields():
        found += extras(getattr(record, f.name), f"{path}.{name}")
    return found


def test_the_committed_schema_is_current() -> None:
    committed = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert committed == config_schema(), "run python scripts/regenerate.py"
    assert (
        SCHEMA.read_text(encoding="utf-8")
        == json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"
    )


@pytest.mark.parametrize("path", CONFIGS, ids=[p.parent.name for p in CONFIGS])
def test_every_generated_config_validates_and_reads_exactly(path: Path) -> None:
    document = json.loads(path.read_bytes())
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_bytes())).validate(document)
    config = ProjectConfig.from_json(document)
    assert config.to_json() == document
    assert extras(config) == [], "a key of config.json that the types do not name"
    project = load_project(path.parent)
    assert project.settings == config and project.settings is project.settings


def test_the_schema_names_every_field_of_the_types() -> None:
    schema = json.loads(SCHEMA.read_bytes())
    definitions = {"ProjectConfig": schema, **schema["$defs"]}
    classes = records(ProjectConfig)
    assert set(definitions) == set(classes)
    for name, cls in classes.items():
        keys = {key for _, key, _ in cls.json_fields()}
        assert set(definitions[name]["properties"]) == keys, name
        assert definitions[name]["additionalProperties"] is False


def test_a_setting_the_compiler_always_writes_is_required() -> None:
    document = json.loads(CONFIGS[0].read_bytes())
    del document["monitor"]["min_rows"]
    with pytest.raises(RecordError, match=r"^monitor\.min_rows is missing$"):
        ProjectConfig.from_json(document)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json.loads(SCHEMA.read_bytes()))
    document = json.loads(CONFIGS[0].read_bytes())
    document["rollback"]["triggers"] = [{"on": "latency"}]
    with pytest.raises(RecordError, match=r"rollback\.triggers\[0\]\.metric is missing"):
        ProjectConfig.from_json(document)
    document["rollback"]["triggers"] = []
    document["rollback"]["grace_samples"] = "many"
    with pytest.raises(RecordError, match=r"rollback\.grace_samples must be a number"):
        ProjectConfig.from_json(document)


def test_a_project_with_an_incomplete_config_is_refused_when_read(tmp_path: Path) -> None:
    project = Project(tmp_path, {"name": "p", "level": 1}, {})
    with pytest.raises(ProjectError, match=r"config\.json: spec_sha256 is missing: rebuild"):
        _ = project.settings


def test_sections_the_compiler_writes_for_some_projects_only_may_be_absent() -> None:
    by_level = {json.loads(p.read_bytes())["level"]: p for p in CONFIGS}
    low = ProjectConfig.from_json(json.loads(by_level[0].read_bytes()))
    assert low.image is None and low.feature_store is None and low.monitor.alerting is None
    assert low.monitor.drift is None and low.serving.ab_test is None
