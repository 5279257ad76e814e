"""Regenerate every committed snapshot in one command: `python scripts/regenerate.py`.

- generated/                      the golden record: `mlops build specs/ --out generated`
- schema/mlops.schema.json        `mlops schema`
- schema/config.schema.json       the runtime's typed config.json (mlops_runtime/config.py)
- tests/invalid_specs/*.expected  what `mlops build` prints for each invalid spec
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def mlops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_compiler", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )


def main() -> int:
    built = mlops("build", "specs", "--out", "generated", "--force")
    print(built.stdout, end="")
    if built.returncode:
        print(built.stderr, file=sys.stderr)
        return built.returncode
    (REPO / "schema").mkdir(exist_ok=True)
    (REPO / "schema" / "mlops.schema.json").write_text(mlops("schema").stdout)
    from mlops_runtime.config import config_schema

    schema = json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"
    (REPO / "schema" / "config.schema.json").write_text(schema)
    for spec in sorted((REPO / "tests" / "invalid_specs").glob("*.yaml")):
        result = mlops("build", spec.relative_to(REPO).as_posix(), "--out", "generated")
        spec.with_suffix(".expected").write_text(result.stderr)
    print("regenerated generated/, schema/ and tests/invalid_specs/*.expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
