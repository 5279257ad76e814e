"""The JSON Schema of mlops.yaml, committed as schema/mlops.schema.json."""

from __future__ import annotations

import json

from mlops_compiler.spec.model import Spec


def schema_text() -> str:
    document = Spec.model_json_schema(mode="validation")
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "mlops.yaml"
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
