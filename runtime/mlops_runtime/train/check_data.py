"""`python -m mlops_runtime check-data [FILE]`: the training data against the data contract,
alone (a pull request's check): nothing is trained, tracked or registered.

FILE defaults to the training data ($<data.path_env>, else data.path). Exit codes: 0 the data
meets the contract; 2 there is no file at that path (`error: training data not found: PATH`);
3 it does not meet the contract (reports/contract_report.json says why).
"""

from __future__ import annotations

import os
import sys

from mlops_runtime.contract.report import ContractViolation
from mlops_runtime.data import DataNotFound
from mlops_runtime.project import Project

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONTRACT = 3


def main(argv: list[str], project: Project) -> int:
    from mlops_runtime.train.stage import load_validated

    environ = dict(os.environ)
    if argv:
        environ[project.config["data"].get("path_env") or "MLOPS_TRAIN_DATA"] = argv[0]
    try:
        frame, path, _ = load_validated(project.config, project.contract, environ)
    except DataNotFound as missing:
        if argv:
            missing = DataNotFound(missing.path, "the FILE argument")
        print(f"error: {missing}", file=sys.stderr)
        return EXIT_USAGE
    except ContractViolation as violation:
        print(f"{project.config.get('name')}: {violation}", file=sys.stderr)
        print(f"report: {violation.report_path}", file=sys.stderr)
        return EXIT_CONTRACT
    print(f"{project.config.get('name')}: {path} meets the data contract ({len(frame)} rows)")
    return EXIT_OK
