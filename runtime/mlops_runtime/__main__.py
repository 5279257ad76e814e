"""`python -m mlops_runtime STAGE [ARGS...]`: run a stage of the generated project in the
current folder (or $MLOPS_PROJECT_DIR).

The project's config.json names the stages its level emits; the manifest's `commands` and
the generated README list them in the order they are run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from mlops_runtime import __version__
from mlops_runtime.project import Project, ProjectError, load_project

EXIT_USAGE = 2


def _train(argv: list[str], project: Project) -> int:
    if project.config.get("training", {}).get("tracking", True):
        from mlops_runtime.train.stage import exit_now, main

        exit_now(main(argv, project))
    from mlops_runtime.train import plain

    return plain.main(argv, project)


def _check_data(argv: list[str], project: Project) -> int:
    from mlops_runtime.train import check_data

    return check_data.main(argv, project)


def _lineage(argv: list[str], project: Project) -> int:
    from mlops_runtime.tracking import lineage

    return lineage.main(argv, project.config)


def _serve(argv: list[str], project: Project) -> int:
    from mlops_runtime.serve import stage

    return stage.main(argv, project)


def _predict(argv: list[str], project: Project) -> int:
    from mlops_runtime.serve import client

    return client.main(argv, project)


def _score(argv: list[str], project: Project) -> int:
    from mlops_runtime.score import stage

    return stage.main(argv, project)


def _monitor(argv: list[str], project: Project) -> int:
    from mlops_runtime.monitor import stage

    return stage.main(argv, project)


def _rollback(argv: list[str], project: Project) -> int:
    from mlops_runtime.rollback import stage

    return stage.rollback_main(argv, project)


def _history(argv: list[str], project: Project) -> int:
    from mlops_runtime.rollback import stage

    return stage.history_main(argv, project)


def _image(argv: list[str], project: Project) -> int:
    from mlops_runtime.container import image

    return image.main(argv, project)


def _features_apply(argv: list[str], project: Project) -> int:
    from mlops_runtime.features.store import stage

    return stage.apply_main(argv, project)


def _features_materialize(argv: list[str], project: Project) -> int:
    from mlops_runtime.features.store import stage

    return stage.materialize_main(argv, project)


STAGES: dict[str, Callable[[list[str], Project], int]] = {
    "features-apply": _features_apply,
    "features-materialize": _features_materialize,
    "check-data": _check_data,
    "train": _train,
    "lineage": _lineage,
    "serve": _serve,
    "predict": _predict,
    "score": _score,
    "monitor": _monitor,
    "rollback": _rollback,
    "history": _history,
    "image": _image,
}

USAGE = f"usage: python -m mlops_runtime {{{','.join(STAGES)}}} [ARGS...]"


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        print(f"mlops-runtime {__version__}")
        return 0
    stage, rest = argv[0], argv[1:]
    try:
        project = load_project()
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if stage not in STAGES or stage not in project.stages:
        import difflib

        known = ", ".join(project.stages) or "none"
        close = difflib.get_close_matches(stage, list(project.stages), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(
            f"error: this project has no stage {stage!r}{hint} (level "
            f"{project.config.get('level')} emits: {known})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return STAGES[stage](rest, project)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
