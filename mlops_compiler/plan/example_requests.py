"""A valid request for each protocol the server speaks, made from the contract alone (never
from the data, which may not be here when CI checks the build): the generated README shows
them, `requests/*.json` holds them for `curl -d @…`, and the serve stage prints one."""

from __future__ import annotations

from typing import Any

from mlops_compiler.spec.model import Column, Spec

# The Open Inference Protocol's tensor datatypes, as the server's model metadata lists them.
V2_DATATYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES", "str": "BYTES"}
# protocol → (endpoint, file under the project folder); {name} is the model's name.
FILES = (
    ("predict", "/predict", "requests/predict.json"),
    ("invocations", "/invocations", "requests/invocations.json"),
    ("v2", "/v2/models/{name}/infer", "requests/v2-infer.json"),
)


def example_value(column: Column) -> Any:
    """A value the contract accepts: the middle of its bounds, just above a lower bound alone,
    the first declared category."""
    if column.values:
        return column.values[0]
    if column.type == "bool":
        return False
    if column.type == "str":
        return "example"
    low, high = column.min, column.max
    if low is not None and high is not None:
        value = (low + high) / 2
    elif low is not None:
        value = low + 1
    elif high is not None:
        value = high - 1
    else:
        value = 1.0
    return int(value) if column.type == "int" else float(value)


def example_record(spec: Spec, feature_store: dict[str, Any] | None) -> dict[str, Any]:
    """One record in contract order; with a feature store, the entity keys and the request-time
    features only (the server looks the rest up)."""
    columns = spec.data.contract.columns
    if feature_store is None:
        return {n: example_value(c) for n, c in columns.items() if n != spec.data.target}
    record: dict[str, Any] = {
        e["join_key"]: 1 if e["type"] == "int" else "1" for e in feature_store["entities"]
    }
    record.update({n: example_value(columns[n]) for n in feature_store["request"]})
    return record


def example_bodies(spec: Spec, record: dict[str, Any]) -> dict[str, Any]:
    """The record as each protocol's body: native, MLflow's dataframe_records, V2 tensors."""
    columns = spec.data.contract.columns
    kinds = {n: columns[n].type if n in columns else _key_type(v) for n, v in record.items()}
    return {
        "predict": record,
        "invocations": {"dataframe_records": [record]},
        "v2": {
            "inputs": [
                {
                    "name": n,
                    "datatype": V2_DATATYPE[kinds[n]],
                    "shape": [1],
                    # BYTES tensors carry text: a category of integers is sent as "0".
                    "data": [str(v) if V2_DATATYPE[kinds[n]] == "BYTES" else v],
                }
                for n, v in record.items()
            ]
        },
    }


def _key_type(value: Any) -> str:
    return "int" if isinstance(value, int) else "str"


def example_files(name: str) -> list[dict[str, str]]:
    """What config.json tells the serve stage: each protocol's endpoint and its request file."""
    return [
        {"protocol": p, "endpoint": endpoint.format(name=name), "file": path}
        for p, endpoint, path in FILES
    ]
