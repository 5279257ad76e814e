"""The OpenAPI 3.1 document served at /openapi.json, derived from CONTRACT.

The app is plain ASGI (no framework on the hot path), so the document is written out here
rather than inferred from handler signatures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_runtime.contract.rules import (
    JSON_TYPES,
    bounds,
    category_number,
    forbids_extra_columns,
    is_nullable,
)
from mlops_runtime.serve.labels import label_schema

_JSON_BOUNDS = {"min": "minimum", "max": "maximum"}
_CONTRACT_422 = "Data-contract violations, one entry per field at fault"


def column_schema(rule: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON values a column takes, as far as JSON Schema can say it.

    The door reads more than this admits (numeric text for numbers, 0/1 and "yes" for booleans),
    and less in two corners JSON Schema cannot draw: it refuses non-finite numbers, and it reads
    a category number by its text, so 2.0 is not the category "2" though JSON Schema's enum
    holds 2 == 2.0.
    """
    kind = rule["type"]
    values = rule.get("values")
    schema: dict[str, Any] = {"type": JSON_TYPES[kind]}
    if kind == "category":
        # A category may be sent as a number read as text (rules.contract_category_text).
        if values is None:
            schema["type"] = ["string", "number"]
        else:
            numbers = [n for n in map(category_number, values) if n is not None]
            if numbers:
                schema["type"] = ["string", "number"]
            values = [*values, *numbers]
    for check, bound, _ in bounds(rule):
        schema[_JSON_BOUNDS[check]] = bound
    if values is not None:
        schema["enum"] = list(values)
    if is_nullable(rule):
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def record_schema(config: Mapping[str, Any], contract: Mapping[str, Any]) -> dict[str, Any]:
    """One input record: every contract column but the target, typed and bounded."""
    from mlops_runtime.serve.ab import sticky_field

    target = config["data"]["target"]
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, rule in contract.get("columns", {}).items():
        if name == target:
            continue
        properties[name] = column_schema(rule)
        required.append(name)
    sticky = sticky_field(config)
    if sticky is not None and sticky not in properties:
        properties[sticky] = {
            "type": "string",
            "description": "A/B sticky key: requests with the same key reach the same model.",
        }
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": not forbids_extra_columns(contract),
    }
    store = config.get("feature_store")
    if store:
        _by_entity_key(schema, store)
    return schema


def _by_entity_key(schema: dict[str, Any], store: Mapping[str, Any]) -> None:
    """With a feature store a record may leave out what the store supplies: each view's
    features when it carries the view's join key, and the on-demand features always."""
    kinds = {e["join_key"]: e["type"] for e in store["entities"]}
    supplied = set(store["on_demand"])
    either = []
    for view in store["views"]:
        key = view["join_key"]
        supplied.update(view["features"])
        schema["properties"].setdefault(
            key,
            {
                "type": "integer" if kinds[key] == "int" else "string",
                "description": f"Entity key: the features of view {view['name']} that the "
                "record leaves out are looked up by it in the online store.",
            },
        )
        features = [f for f in view["features"] if f in schema["properties"]]
        either.append({"anyOf": [{"required": [key]}, {"required": features}]})
    schema["required"] = [name for name in schema["required"] if name not in supplied]
    schema["allOf"] = either


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _responses(ok: dict[str, Any], *codes: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": ok}}}
    }
    texts = {
        "400": "Malformed JSON or a body of the wrong shape",
        "404": "No such model or version",
        "413": "Body larger than serving.max_body_bytes",
        "415": "Only application/json bodies are accepted",
        "422": _CONTRACT_422,
        "503": "No model loaded yet",
    }
    for code in codes:
        out[code] = {
            "description": texts[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


def _store_responses(config: Mapping[str, Any], responses: dict[str, Any]) -> dict[str, Any]:
    """A prediction endpoint's answers when a feature store completes its records."""
    store = config.get("feature_store")
    if not store:
        return responses
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    out = dict(responses)
    known = out.get("404", {}).get("description")
    entity = "No online features for a record's entity key (`missing` lists them)"
    out["404"] = {"description": f"{known}, or: {entity}" if known else entity, "content": error}
    out["422"] = {
        "description": _CONTRACT_422 + "; a record without every feature lacks its entity key",
        "content": error,
    }
    if store.get("stale") == "reject":
        out["409"] = {
            "description": "Features older than their view's ttl (`stale` lists them)",
            "content": error,
        }
    return out


def build_openapi(config: Mapping[str, Any], contract: Mapping[str, Any]) -> dict[str, Any]:
    record = {"$ref": "#/components/schemas/Record"}
    label = {"$ref": "#/components/schemas/Label"}
    classification = config["model"]["task"] != "regression"
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {
                "type": "string",
                "enum": [
                    "BOOL",
                    "BYTES",
                    "FP16",
                    "FP32",
                    "FP64",
                    "INT8",
                    "INT16",
                    "INT32",
                    "INT64",
                    "UINT8",
                    "UINT16",
                    "UINT32",
                    "UINT64",
                ],
            },
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    any_object = {"type": "object"}
    model_name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    standard = ("400", "413", "415", "422", "503")
    paths: dict[str, Any] = {
        "/predict": {
            "post": {
                "summary": "Predict one record (an object) or many (an array of records)",
                "requestBody": _json_body({"oneOf": [record, {"type": "array", "items": record}]}),
                "responses": _store_responses(
                    config, _responses({"$ref": "#/components/schemas/Prediction"}, *standard)
                ),
            }
        },
        "/invocations": {
            "post": {
                "summary": "MLflow scoring protocol",
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "oneOf": [
                            {"required": ["dataframe_split"]},
                            {"required": ["dataframe_records"]},
                            {"required": ["inputs"]},
                            {"required": ["instances"]},
                        ],
                        "properties": {
                            "dataframe_split": {
                                "type": "object",
                                "required": ["columns", "data"],
                                "properties": {
                                    "columns": {"type": "array", "items": {"type": "string"}},
                                    "data": {"type": "array", "items": {"type": "array"}},
                                },
                            },
                            "dataframe_records": {"type": "array", "items": record},
                            "inputs": {},
                            "instances": {},
                        },
                    }
                ),
                "responses": _store_responses(
                    config,
                    _responses(
                        {
                            "type": "object",
                            "properties": {"predictions": {"type": "array", "items": label}},
                        },
                        *standard,
                    ),
                ),
            }
        },
        "/v2/models/{name}/infer": {
            "post": {
                "summary": "Open Inference Protocol (KServe V2): one input tensor per column",
                "parameters": [model_name],
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["inputs"],
                        "properties": {
                            "id": {"type": "string"},
                            "inputs": {"type": "array", "items": tensor},
                            "outputs": {"type": "array", "items": {"type": "object"}},
                            "parameters": {"type": "object"},
                        },
                    }
                ),
                "responses": _store_responses(config, _responses(any_object, "404", *standard)),
            }
        },
        "/v2/models/{name}": {
            "get": {
                "summary": "Model metadata",
                "parameters": [model_name],
                "responses": _responses(any_object, "404"),
            }
        },
        "/v2/models/{name}/ready": {
            "get": {
                "summary": "Model readiness",
                "parameters": [model_name],
                "responses": _responses(any_object, "404", "503"),
            }
        },
    }
    for path, summary in (
        ("/v2", "Server metadata"),
        ("/v2/health/live", "Liveness"),
        ("/v2/health/ready", "Readiness"),
        ("/health", "Liveness and the models being served"),
        ("/ready", "200 once a model is loaded"),
        ("/ping", "MLflow scoring-server health check"),
    ):
        codes = ("503",) if "ready" in path else ()
        paths[path] = {"get": {"summary": summary, "responses": _responses(any_object, *codes)}}
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{config.get('name')} model server",
            "version": str(config.get("compiler_version", "0")),
            "description": "Generated by mlops-compiler. Every response carries X-Request-ID, "
            "X-Model-Name, X-Model-Version, X-Model-Run-Id and X-AB-Arm headers.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Record": record_schema(config, contract),
                "Label": {
                    **label_schema(config, contract),
                    "description": "One prediction, of the type the contract gives the target "
                    f"{config['data']['target']!r}",
                },
                "Prediction": {
                    "type": "object",
                    "required": ["request_id", "model", "model_version", "arm"],
                    "properties": {
                        "request_id": {"type": "string"},
                        "model": {"type": "string"},
                        "model_version": {"type": "string"},
                        "run_id": {"type": ["string", "null"]},
                        "arm": {"type": "string", "enum": ["champion", "challenger"]},
                        "prediction": label,
                        "predictions": {"type": "array", "items": label},
                        "probabilities": {"type": "array"},
                        **(
                            {"classes": {"type": "array", "items": label}} if classification else {}
                        ),
                        "stale_features": {
                            "description": "With a feature store under `stale: serve`, only "
                            "when a view was older than its ttl: its name (per prediction in a "
                            "batch, a list each)",
                            "type": "array",
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string"},
                        "detail": {
                            "type": "string",
                            "description": "503: why no model serves yet and how to train one",
                        },
                        "request_id": {"type": "string"},
                        "violations": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "record": {"type": "integer"},
                                    "column": {"type": ["string", "null"]},
                                    "check": {"type": "string"},
                                    "value": {},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            }
        },
    }
