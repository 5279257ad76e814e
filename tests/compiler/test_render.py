"""Escaping per target language, strict templates, and template errors that say where."""

from __future__ import annotations

import ast
import json
import shlex
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_compiler.errors import RenderError
from mlops_compiler.load.yaml_positions import load_spec
from mlops_compiler.plan import make_plan
from mlops_compiler.plan.artifacts import Artifact
from mlops_compiler.render.environment import UnescapedValue, make_environment
from mlops_compiler.render.filters import (
    json_document,
    json_value,
    line,
    markdown,
    pyrepr,
    shell_words,
    yaml_value,
)
from mlops_compiler.render.render import render_artifact, render_plan
from mlops_compiler.spec.validate import validate
from tests.compiler.conftest import MINIMAL

text = st.text(max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


@given(values)
def test_pyrepr_reads_back_as_the_same_value(value: object) -> None:
    assert ast.literal_eval(pyrepr(value)) == value


@given(values)
def test_json_value_reads_back(value: object) -> None:
    assert json.loads(json_value(value)) == value


@given(values)
def test_yaml_value_reads_back(value: object) -> None:
    document = f"key: {yaml_value(value)}\n"
    assert yaml.safe_load(document) == {"key": value}


@given(st.lists(text, min_size=1, max_size=5))
def test_shell_words_split_back(words: list[str]) -> None:
    assert shlex.split(shell_words(words)) == words


@given(text)
def test_line_cannot_start_a_new_line(value: str) -> None:
    assert "\n" not in line(value) and "\r" not in line(value)


def test_a_value_without_a_filter_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t.txt.jinja").write_text("name = {{ name }}\n")
    env = make_environment(tmp_path)
    with pytest.raises(UnescapedValue, match="without an escape filter"):
        env.get_template("t.txt.jinja").render(name="x")


def test_undefined_variables_fail_instead_of_printing_nothing(tmp_path: Path) -> None:
    (tmp_path / "t.txt.jinja").write_text("{{ nme | line }}\n")
    env = make_environment(tmp_path)
    with pytest.raises(Exception, match="nme"):
        env.get_template("t.txt.jinja").render(name="x")


def test_trailing_newline_is_kept(tmp_path: Path) -> None:
    (tmp_path / "t.txt.jinja").write_text("a\n")
    assert make_environment(tmp_path).get_template("t.txt.jinja").render() == "a\n"


def test_template_error_names_template_line_and_artifact(
    minimal_spec: Path, tmp_path: Path
) -> None:
    (tmp_path / "broken.py.jinja").write_text("ok = 1\n\nvalue = {{ missing_thing | pyrepr }}\n")
    loaded = load_spec(minimal_spec)
    plan = make_plan(validate(loaded), loaded, tmp_path / "out")
    artifact = Artifact("tools/broken.py", "broken.py.jinja", "project", 0)
    with pytest.raises(RenderError) as err:
        render_artifact(make_environment(tmp_path), plan, artifact)
    message = str(err.value)
    assert "templates/broken.py.jinja:3" in message
    assert "tools/broken.py" in message and "missing_thing" in message


FREE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(description=FREE_TEXT, tag=FREE_TEXT, category=FREE_TEXT, column=FREE_TEXT)
def test_arbitrary_unicode_in_free_text_fields_cannot_break_out(
    tmp_path: Path, description: str, tag: str, category: str, column: str
) -> None:
    spec = yaml.safe_load(MINIMAL)
    spec["level"] = 3
    spec["description"] = description
    spec["tags"] = {tag: description}
    columns = spec["data"]["contract"]["columns"]
    columns["plan"]["values"] = ["basic", category] if category != "basic" else ["basic"]
    columns[column if column not in columns else column + "_x"] = {
        "type": "float",
        "description": description,
    }
    path = tmp_path / "mlops.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=False))
    loaded = load_spec(path)
    plan = make_plan(validate(loaded), loaded, tmp_path / "out")
    files = render_plan(plan)
    for name, data in files.items():
        body = data.decode("utf-8")
        if name.endswith(".py"):
            tree = ast.parse(body)
            assert tree is not None
        elif name.endswith((".yaml", ".yml")):
            yaml.safe_load(body)
        elif name.endswith(".json"):
            json.loads(body)
    read_back = json.loads(files["contract.json"])
    assert category in read_back["columns"]["plan"]["values"]
    assert any(c in read_back["columns"] for c in (column, column + "_x"))
    assert json.loads(files["config.json"])["name"] == "churn"
    assert markdown(description) in files["README.md"].decode()


def test_markdown_text_reads_as_written_and_cannot_open_markup() -> None:
    said = markdown('The "churn" model\'s v2: 5% < 10% & <b>bold</b> *not* [link](x)')
    assert '"churn"' in said and "model's" in said and "&quot;" not in said and "&#" not in said
    assert "\\<b\\>" in said and "\\&" in said and "\\*not\\*" in said and "\\[link\\]" in said


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    )
)
def test_json_documents_read_back_unchanged(value: object) -> None:
    assert json.loads(json_document(value)) == value


def test_json_tables_keep_a_row_a_line() -> None:
    rows = [{"on": "latency", "metric": None, "max": 50.0, "note": "x" * 90}, {"on": "drift"}]
    document = {"triggers": rows, "nested": [{"a": [1]}, {"b": "y" * 120}]}
    lines = str(json_document(document)).splitlines()
    assert (
        lines[2]
        == '    {"on": "latency", "metric": null, "max": 50.0, "note": "' + "x" * 90 + '"},'
    )
    assert lines[3] == '    {"on": "drift"}'
    # A list holding anything but flat mappings is laid out item by item, as before.
    assert '    {"a": [1]},' in lines and '      "b": "' + "y" * 120 + '"' in lines
    assert json.loads(json_document(document)) == document
