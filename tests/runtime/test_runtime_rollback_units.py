"""The serving history and the rollback triggers, without a registry."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mlops_runtime.config import RollbackTrigger
from mlops_runtime.rollback.triggers import grace, judge, label, observe
from mlops_runtime.tracking import serving_history as history


def trigger_of(fields: Mapping[str, Any]) -> RollbackTrigger:
    """A rollback trigger as config.json holds it, with the fields a test leaves out unset."""
    unset = {"metric": None, "min": None, "max": None, "kpi": None, "min_samples": 100}
    return RollbackTrigger.from_json({**unset, "k": 1, "n": 1, **fields})


PERFORMANCE = {
    "on": "performance",
    "metric": "roc_auc",
    "min": 0.9,
    "max": None,
    "kpi": None,
    "min_samples": 100,
    "k": 1,
    "n": 1,
}


def report(
    *,
    value: float | None = 0.8,
    labelled: int = 300,
    error_rate: float = 0.0,
    requests: int = 300,
    p99: float = 5.0,
    drift_share: float | None = None,
    kpi: float | None = None,
) -> dict[str, Any]:
    return {
        "window": {"rows": requests},
        "traffic": {
            "requests": requests,
            "errors": int(error_rate * requests),
            "error_rate": error_rate,
            "latency_ms": {"p99": p99},
        },
        "performance": {"value": value, "labelled": labelled},
        "drift": None
        if drift_share is None
        else {"status": "ok", "dataset": {"share": drift_share}},
        "kpis": [] if kpi is None else [{"name": "share", "value": kpi}],
    }


def test_a_trigger_fires_past_its_bound_on_enough_samples() -> None:
    (fired,) = judge(report(value=0.8, labelled=300), [trigger_of(PERFORMANCE)], [])
    assert fired.fired and fired.decides and fired.trigger == "performance roc_auc < 0.9"
    (quiet,) = judge(report(value=0.95), [trigger_of(PERFORMANCE)], [])
    assert not quiet.fired
    (few,) = judge(report(value=0.5, labelled=99), [trigger_of(PERFORMANCE)], [])
    assert not few.fired and few.samples == 99, "under min_samples nothing fires"
    (none,) = judge(report(value=None), [trigger_of(PERFORMANCE)], [])
    assert not none.fired


def test_k_of_the_last_n_windows_for_the_same_trigger() -> None:
    trigger = {**PERFORMANCE, "k": 2, "n": 3}
    bad, good = report(value=0.8), report(value=0.95)
    (first,) = judge(bad, [trigger_of(trigger)], [])
    assert first.fired and not first.decides and first.fired_in == 1
    (second,) = judge(bad, [trigger_of(trigger)], [[first]])
    assert second.decides and second.fired_in == 2
    quiet = judge(good, [trigger_of(trigger)], [[first]])
    (after_gap,) = judge(bad, [trigger_of(trigger)], [[first], quiet])
    assert after_gap.decides, "2 of the last 3"
    (too_old,) = judge(bad, [trigger_of(trigger)], [[first], quiet, quiet])
    assert not too_old.decides, "the first firing is out of the last 3 windows"
    other = {**trigger, "min": 0.5}
    (renamed,) = judge(bad, [trigger_of(other)], [[first]])
    assert renamed.fired_in == 0, "a changed bound is another trigger"


@pytest.mark.parametrize(
    ("trigger", "kwargs", "fires"),
    [
        ({"on": "error_rate", "max": 0.05}, {"error_rate": 0.1}, True),
        ({"on": "error_rate", "max": 0.05}, {"error_rate": 0.05}, False),
        ({"on": "latency", "max": 50.0}, {"p99": 80.0}, True),
        ({"on": "latency", "max": 50.0}, {"p99": 20.0}, False),
        ({"on": "drift", "max": 0.5}, {"drift_share": 0.5}, True),
        ({"on": "drift", "max": 0.5}, {"drift_share": 0.4}, False),
        ({"on": "drift", "max": 0.5}, {}, False),
        ({"on": "kpi", "kpi": "share", "min": 0.2, "max": 0.6}, {"kpi": 0.7}, True),
        ({"on": "kpi", "kpi": "share", "min": 0.2, "max": 0.6}, {"kpi": 0.1}, True),
        ({"on": "kpi", "kpi": "share", "min": 0.2, "max": 0.6}, {"kpi": 0.4}, False),
        ({"on": "kpi", "kpi": "other", "max": 0.6}, {"kpi": 0.9}, False),
    ],
)
def test_each_kind_of_trigger(trigger: dict[str, Any], kwargs: dict[str, Any], fires: bool) -> None:
    full = {"min": None, "max": None, "min_samples": 100, "k": 1, "n": 1, **trigger}
    (judged,) = judge(report(**kwargs), [trigger_of(full)], [])
    assert judged.fired is fires, (judged, observe(report(**kwargs), trigger_of(full)))


def test_latency_counts_served_requests_only() -> None:
    trigger = {"on": "latency", "max": 50.0, "min": None}
    value, samples = observe(report(p99=80.0, requests=200, error_rate=0.5), trigger_of(trigger))
    assert (value, samples) == (80.0, 100)


def test_labels_read_like_the_spec() -> None:
    assert label(trigger_of({"on": "error_rate", "max": 0.05})) == "error_rate > 0.05"
    assert label(trigger_of({"on": "drift", "max": 0.5})) == "drift >= 0.5"
    assert (
        label(trigger_of({"on": "kpi", "kpi": "share", "min": 0.2, "max": 0.6}))
        == "kpi share < 0.2 or > 0.6"
    )


def test_grace_counts_labelled_samples_or_served_ones_without_labels() -> None:
    assert grace(report(labelled=150), 200, labelled=True).to_json() == {
        "counted": "labelled",
        "samples": 150,
        "needed": 200,
        "over": False,
    }
    assert grace(report(labelled=0, requests=250), 200, labelled=False).over


def _append_many(path: str, writer: int, count: int) -> None:
    for i in range(count):
        with history.serving_lock(Path(path)):
            entries = history.read(Path(path))
            previous = entries[-1]["to"] if entries else None
            history.append(
                Path(path),
                history.record(
                    history.PROMOTED,
                    alias="champion",
                    from_version=previous,
                    to_version=f"{writer}-{i}",
                    why={"trigger": "test"},
                    by=f"writer-{writer}",
                ),
            )


def test_concurrent_writers_under_the_lock_lose_nothing_and_chain(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "serving-history.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), w, 25)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    entries = history.read(path)
    assert len(entries) == 100
    assert len({e["to"] for e in entries}) == 100
    for before, after in itertools.pairwise(entries):
        assert after["from"] == before["to"], "each change saw the one before it"


def test_a_damaged_line_hides_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    history.append(path, {"event": "promoted", "to": "1"})
    with path.open("a") as handle:
        handle.write('{"event": "promo\n')
    history.append(path, {"event": "rolled_back", "to": "2"})
    assert [e["to"] for e in history.read(path)] == ["1", "2"]
    assert json.loads(path.read_text().splitlines()[0])["to"] == "1"


@pytest.mark.parametrize("records", [0, 2], ids=["empty", "two"])
def test_history_json_is_one_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], records: int
) -> None:
    from mlops_runtime.project import Project
    from mlops_runtime.rollback.stage import history_main

    repo = Path(__file__).resolve().parents[2]
    config = json.loads((repo / "generated" / "churn" / "config.json").read_bytes())
    config["tracking"]["registered_model"] = "churn-model"
    path = history.history_path(tmp_path, config)
    for version in range(1, records + 1):
        history.append(path, {"event": "promoted", "from": None, "to": str(version)})
    assert history_main(["--json"], Project(tmp_path, config, {})) == 0
    document = json.loads(capsys.readouterr().out)  # one document, not a line per record
    assert document["model"] == "churn-model"
    assert [e["to"] for e in document["entries"]] == [str(v) for v in range(1, records + 1)]


def test_the_lock_times_out_rather_than_waiting_forever(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(str(path), ready))
    holder.start()
    try:
        assert ready.wait(60)
        started = time.monotonic()
        with (
            pytest.raises(TimeoutError, match="held by another"),
            history.serving_lock(path, timeout_s=0.5),
        ):
            pass
        assert time.monotonic() - started < 5
    finally:
        holder.terminate()
        holder.join(10)


def _hold(path: str, ready: Any) -> None:
    with history.serving_lock(Path(path)):
        ready.set()
        time.sleep(60)


def test_ci_and_users_are_told_apart() -> None:
    assert history.actor({"CI": "true"}) == "ci"
    assert history.actor({"GITLAB_CI": "1"}) == "ci"
    assert history.actor({}).startswith("user:")
    assert history.actor({"CI": "true", "MLOPS_ACTOR": "monitor"}) == "monitor"


def test_the_window_report_is_reused_only_when_it_is_the_versions_own() -> None:
    from mlops_runtime.rollback.automatic import reusable

    began = "2026-12-01T10:00:00Z"
    alone = {
        "model": {"versions": {"2": 500}},
        "window": {"start": began},
        "performance": {"status": "ok"},
    }
    epoch = 1796119200.0  # 2026-12-01T10:00:00Z
    assert reusable(alone, "2", epoch - 60)
    assert not reusable(alone, "2", epoch + 60), "it took its alias inside the window"
    assert not reusable(alone, "1", epoch - 60)
    shared = {**alone, "model": {"versions": {"1": 20, "2": 480}}}
    assert not reusable(shared, "2", epoch - 60), "another version served part of the window"
    few = {**alone, "performance": {"status": "insufficient_samples"}}
    assert not reusable(few, "2", epoch - 60), "the trigger's own min_samples may be lower"


def test_the_dashboard_shows_what_was_judged_and_done() -> None:
    from mlops_runtime.monitor.dashboard import render_dashboard

    (judged,) = judge(report(value=0.8), [trigger_of(PERFORMANCE)], [])
    page = render_dashboard(
        {
            "name": "m",
            "status": "alert",
            "violations": [],
            "problems": [],
            "rollback": {
                "arms": {
                    "champion": {
                        "version": "2",
                        "grace": {"samples": 300, "needed": 200, "over": True},
                        "judged": [judged.to_json()],
                    }
                },
                "actions": [
                    {
                        "arm": "champion",
                        "event": "rolled_back",
                        "from": "2",
                        "to": "1",
                        "why": {"trigger": "performance roc_auc < 0.9"},
                    }
                ],
            },
        },
        [],
    )
    section = page[page.index('<section id="rollback">') :]
    assert "champion v2" in section and "performance roc_auc &lt; 0.9" in section
    assert "decides" in section and "2 &rarr; 1" in section
    assert '<section id="rollback">' not in render_dashboard({"name": "m"}, [])
