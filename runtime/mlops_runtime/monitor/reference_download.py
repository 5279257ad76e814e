"""The reference profile of a run, from the tracking store, where the monitor runs on another
machine than training did (a container, a CronJob pod, a compose service): the train stage
logs the profile with its run, so the run that served the requests has its reference there.

Kept beside the local profiles (reports/reference/<run id>.json), so each run's profile is
downloaded once.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Where the train stage logs it among the run's artifacts.
RUN_ARTIFACT = "reports/reference_profile.json"


def download_run_profile(
    root: Path, config: Mapping[str, Any], run_id: str, into: Path
) -> str | None:
    """Fetch run `run_id`'s logged profile to `into`; None when done, else why not."""
    if (config.get("serving") or {}).get("model_source", "registry") != "registry":
        return "the model is a local file: no tracking store to read the profile from"
    from mlops_runtime.tracking.store import absolute_uri, connect, resolve_tracking_uri

    try:
        client = connect(config, uri=absolute_uri(resolve_tracking_uri(config), root))
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(client.download_artifacts(run_id, RUN_ARTIFACT, scratch))
            into.parent.mkdir(parents=True, exist_ok=True)
            partial = into.with_suffix(".partial")
            shutil.copyfile(local, partial)
            partial.replace(into)
    except Exception as exc:  # noqa: BLE001 - a store that cannot answer: the profile is missing
        return f"{type(exc).__name__}: {exc}"[:300]
    return None
