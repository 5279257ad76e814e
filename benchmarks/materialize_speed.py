"""Materialisation speed: `features-materialize` beside Feast's own `feast materialize`.

    python benchmarks/materialize_speed.py [--rows N] [--repeats 3] [--sources parquet,csv]
                                           [--profile] [--keep] [--json PATH] [--runtime DIR]
    python benchmarks/materialize_speed.py --quick   # 20,000 rows, Parquet, one round

Target: materialising 1M rows takes no more than 2x Feast's own `materialize` on the same data.

What it does, in a temp dir:

1. Data. `scripts/make_datasets.py: churn_tables` simulates the churn activity (11 monthly
   snapshots per customer) for ceil(rows / 11) customers: 1,000,010 rows by default, the
   columns of specs/data/churn_activity.csv. It is written twice, with the same values: as
   Parquet (what a table of that size is usually exported as; timestamps typed) and as CSV
   (the committed file's format, ISO timestamps as text).
2. Projects. For each source format a copy of specs/churn.mlops.yaml whose activity view
   reads that file, built by this checkout's compiler (`mlops_compiler build`), and
   `python -m mlops_runtime features-apply` run once (untimed) with the Feast virtualenv's
   interpreter (tests/feature_store/feast_env.py). The applied feature_repo/data/ (the
   prepared Parquet offline table, the registry, the empty SQLite online store) is copied
   aside, and put back before every timed run, so each run starts from an empty online store
   and does the same work.
3. Timed, interleaved (the order rotates each repeat), after one untimed warm-up round:
   - ours: `python -m mlops_runtime features-materialize --start S --end E` in the project:
     the source read again, typed and checked by the contract, derived features computed,
     the offline Parquet written, then Feast's `materialize` into SQLite;
   - Feast: `feast materialize S E` (the virtualenv's own CLI) from feature_repo/ of the
     Parquet project, on the offline table features-apply prepared, with the same interval.
   S..E covers every row (a day before the first snapshot to a day after the last).
   Each run is a whole process: interpreter start-up and imports count on both sides.
4. Checks. After every run the online store must hold every customer, and its rows
   (entity key, feature, value, event time) must be the same after every run of every tool.
5. Breakdown. One more run of ours, in-process (the same calls as the stage, timed one by
   one): imports, preparing the offline table (and its steps, re-run one by one), opening the
   store, Feast's materialize. `--profile` adds a cProfile of both commands.

A missed target is printed as MISSED; the exit code is non-zero only when a command fails or
its output is wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import pstats
import shlex
import shutil
import sqlite3
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    ROOT,
    BenchError,
    RunFacts,
    Target,
    add_output,
    add_quiet,
    add_runtime,
    command_line,
    cpu_model,
    judge,
    load_text,
    parser,
    revision,
    run_checked,
    table,
    utc_now,
    venv_versions,
    wait_quiet,
    workdir,
    write_json,
)
from harness.store import build_churn, feast_python, make_datasets, store_env

FEAST = "Feast `feast materialize`"
# Keyed by the runner's name: each of our sources against Feast, medians.
TARGETS = (
    Target("ours (Parquet source) / Feast, medians", "ours, parquet source", 2.0),
    Target("ours (CSV source) / Feast, medians", "ours, csv source", 2.0),
)
QUICK_ROWS = 20_000
SNAPSHOTS = 11  # rows per customer in churn_tables
DATA_END = "2026-11-30T00:00:00Z"  # fixed: the interval is explicit, freshness plays no part
SEED = 11
PACKAGES = ("feast", "pandas", "pyarrow", "numpy", "pandera", "mlops-runtime")
ONLINE_DB = "online_store.db"
TABLE = "churn_activity"  # Feast's SQLite table: <project>_<view>

# In the project folder, with the Feast interpreter; argv: start, end (ISO). The same calls
# as `features-materialize --start --end`, timed one by one; prints one JSON line.
BREAKDOWN = r"""
import json, sys, time
t0 = time.perf_counter()
from mlops_runtime.project import load_project
from mlops_runtime.features.store import offline, registry, stage
t_runtime = time.perf_counter()
project = load_project()
start, end = stage._moment(sys.argv[1]), stage._moment(sys.argv[2])
t_project = time.perf_counter()
offline.prepare_all(project.config, project.contract, project.root)
t_prepare = time.perf_counter()
store = offline.open_store(project.config, project.root)  # imports feast
registry.ensure_applied(store, project.config)
t_open = time.perf_counter()
store.materialize(start_date=start, end_date=end)
t_mat = time.perf_counter()

# The steps of offline.prepare_view once more, one by one (the same calls, in its order).
import pandas as pd
from mlops_runtime.contract.training_gate import validate_frame
from mlops_runtime.data import load_table
from mlops_runtime.features.store.transforms import _epoch_seconds, derive

view = project.config["feature_store"]["views"][0]
contract, root = project.contract, project.root
key, stamp = view["join_key"], view["timestamp"]
steps = {}
t = time.perf_counter()
raw = load_table(root / view["source"], contract)
steps["read the source (load_table)"] = time.perf_counter() - t
t = time.perf_counter()
frame = raw[[key, stamp, *view["columns"]]].copy()
frame[stamp] = pd.to_datetime(frame[stamp], utc=True)
steps["select columns, parse event times"] = time.perf_counter() - t
t = time.perf_counter()
derived = derive(frame, view["derived"], as_of=frame[stamp])
steps["derive (transforms.derive)"] = time.perf_counter() - t
t = time.perf_counter()
_epoch_seconds(frame[stamp].to_numpy())
steps["  of which: as_of to epoch seconds (one _epoch_seconds call)"] = time.perf_counter() - t
t = time.perf_counter()
typed, _ = validate_frame(derived[view["features"]], offline.view_contract(view, contract),
                          source="breakdown", report_path=root / "reports" / "breakdown.json")
steps["contract check (validate_frame)"] = time.perf_counter() - t
t = time.perf_counter()
out = pd.concat([derived[[key, stamp]], typed[view["features"]]], axis=1)
out.to_parquet(root / "breakdown.parquet", index=False)
steps["assemble, write Parquet"] = time.perf_counter() - t
(root / "breakdown.parquet").unlink()
t_end = time.perf_counter()
print("BREAKDOWN_JSON " + json.dumps({"script total": t_end - t0,
    "imports (runtime)": t_runtime - t0, "load project": t_project - t_runtime,
    "prepare offline table (prepare_all)": t_prepare - t_project,
    "open store (import feast, registry)": t_open - t_prepare,
    "Feast materialize": t_mat - t_open, "in-process total": t_mat - t0,
    "steps": steps, "rows": len(raw)}))
"""


@dataclass
class Runner:
    name: str
    cmd: list[str]
    cwd: Path
    snapshot: Path  # feature_repo/data as features-apply left it
    data: Path  # feature_repo/data
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class Results(RunFacts):
    rows: int = 0
    customers: int = 0
    interval: tuple[str, str] = ("", "")
    source_bytes: dict[str, int] = field(default_factory=dict)
    offline_bytes: int = 0
    tables_equal: bool = False
    runs: dict[str, list[float]] = field(default_factory=dict)
    floor_import_feast: list[float] = field(default_factory=list)
    breakdown: dict[str, Any] = field(default_factory=dict)
    online_rows: int = 0
    online_digest: str = ""
    profile: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


def write_sources(specs: Path, rows: int) -> tuple[dict[str, Path], int]:
    """The simulated activity as Parquet and CSV under specs/data; returns (paths, customers)."""
    import pandas as pd

    datasets = make_datasets()
    customers = math.ceil(rows / SNAPSHOTS)
    activity, _ = datasets.churn_tables(end=pd.Timestamp(DATA_END), customers=customers, seed=SEED)
    data = specs / "data"
    paths = {"parquet": data / "churn_activity_big.parquet", "csv": data / "churn_activity_big.csv"}
    activity.to_parquet(paths["parquet"], index=False)
    datasets.iso_utc(activity).to_csv(paths["csv"], index=False)
    return paths, customers


def restore(runner: Runner) -> None:
    shutil.rmtree(runner.data)
    shutil.copytree(runner.snapshot, runner.data)


def online_digest(data: Path) -> tuple[int, int, str]:
    """(rows, distinct entities, digest of every (entity, feature, value, event time))."""
    with sqlite3.connect(data / ONLINE_DB) as db:
        rows = db.execute(
            f"SELECT entity_key, feature_name, value, event_ts FROM {TABLE} "
            "ORDER BY entity_key, feature_name"
        ).fetchall()
        (entities,) = db.execute(f"SELECT COUNT(DISTINCT entity_key) FROM {TABLE}").fetchone()
    digest = hashlib.sha256()
    for entity, feature, value, stamp in rows:
        digest.update(b"\0".join([entity, feature.encode(), value or b"", f"{stamp}\n".encode()]))
    return len(rows), int(entities), digest.hexdigest()


def timed(runner: Runner, env: dict[str, str]) -> float:
    restore(runner)
    start = time.perf_counter()
    run_checked(runner.cmd, cwd=runner.cwd, env=env)
    return time.perf_counter() - start


def check_online(runner: Runner, customers: int, r: Results) -> None:
    rows, entities, digest = online_digest(runner.data)
    if entities != customers:
        raise BenchError(f"{runner.name}: online store holds {entities} of {customers} keys")
    if r.online_digest and digest != r.online_digest:
        raise BenchError(f"{runner.name}: online store rows differ from the first run's")
    r.online_rows, r.online_digest = rows, digest


def profile_top(path: Path, labels: dict[str, tuple[str, str]]) -> list[tuple[str, float]]:
    """Cumulative seconds of the functions named in `labels` (label: (file suffix, name))."""
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    out = []
    for label, (suffix, name) in labels.items():
        total = sum(v[3] for (f, _, fn), v in raw.items() if fn == name and f.endswith(suffix))
        out.append((label, total))
    found = dict(out)
    plan = "  the local engine's plan (all of the next three)"
    if plan in found:
        rest = found[plan] - found["    Arrow to protobuf values"]
        rest -= found["    SQLite online_write_batch"]
        out.append(("    the rest: read the Parquet, filter, latest row per key", rest))
    return out


PROFILE_OURS = {
    "materialize_main (the stage, after imports)": ("features/store/stage.py", "materialize_main"),
    "prepare_view": ("features/store/offline.py", "prepare_view"),
    "  load_table (read the source)": ("mlops_runtime/data.py", "load_table"),
    "  derive": ("features/store/transforms.py", "derive"),
    "    _epoch_seconds": ("features/store/transforms.py", "_epoch_seconds"),
    "  validate_frame": ("contract/training_gate.py", "validate_frame"),
    "  DataFrame.to_parquet": ("pandas/core/frame.py", "to_parquet"),
    "open_store (import feast, registry)": ("features/store/offline.py", "open_store"),
    "FeatureStore.materialize": ("feast/feature_store.py", "materialize"),
    "  the local engine's plan (all of the next three)": ("compute_engines/dag/plan.py", "execute"),
    "    Arrow to protobuf values": ("feast/utils.py", "_convert_arrow_to_proto"),
    "    SQLite online_write_batch": ("online_stores/sqlite.py", "online_write_batch"),
}
PROFILE_FEAST = {
    "feast CLI materialize_command (after imports)": ("feast/cli/cli.py", "materialize_command"),
    "FeatureStore.materialize": ("feast/feature_store.py", "materialize"),
    "  the local engine's plan (all of the next three)": ("compute_engines/dag/plan.py", "execute"),
    "    Arrow to protobuf values": ("feast/utils.py", "_convert_arrow_to_proto"),
    "    SQLite online_write_batch": ("online_stores/sqlite.py", "online_write_batch"),
}


def run(args: argparse.Namespace, r: Results, work: Path) -> None:
    python = feast_python()
    feast_cli = python.parent / "feast"
    env = store_env(args.runtime)
    r.machine["versions"] = venv_versions(python, PACKAGES)
    r.machine["python"] = platform.python_version()
    print(f"Feast interpreter {python}\n  {r.machine['versions']}", flush=True)

    shutil.copytree(ROOT / "specs", work / "specs")
    started = time.perf_counter()
    paths, r.customers = write_sources(work / "specs", args.rows)
    print(f"data: {r.customers:,} customers ({time.perf_counter() - started:.1f} s)", flush=True)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    if "parquet" not in sources:
        sources.insert(0, "parquet")  # Feast runs on the Parquet project's table
    r.source_bytes = {s: paths[s].stat().st_size for s in sources}

    projects: dict[str, Path] = {}
    for source in sources:
        project = build_churn(work, source, f"data/{paths[source].name}", f"build-{source}")
        out = run_checked(
            [str(python), "-m", "mlops_runtime", "features-apply"], cwd=project, env=env
        )
        counts = [
            ln.split()[2] for ln in out.stdout.splitlines() if ln.startswith("view activity:")
        ]
        if not counts or not counts[0].isdigit():
            raise BenchError(f"features-apply printed no row count:\n{out.stdout}")
        count = int(counts[0])
        r.rows = count
        data = project / "feature_repo" / "data"
        shutil.copytree(data, work / f"snapshot-{source}")
        projects[source] = project
        print(f"  {source}: applied, view activity {count:,} rows", flush=True)
    offline_tables = [projects[s] / "feature_repo" / "data" / "activity.parquet" for s in sources]
    r.offline_bytes = offline_tables[0].stat().st_size
    r.tables_equal = tables_equal(offline_tables)
    if not r.tables_equal:
        print("  note: the offline tables from the Parquet and CSV sources differ", flush=True)

    import pandas as pd

    stamps = pd.read_parquet(paths["parquet"], columns=["event_timestamp"])["event_timestamp"]
    start = stamps.min().floor("D") - pd.Timedelta(days=1)
    end = stamps.max().ceil("D") + pd.Timedelta(days=1)
    iso = "%Y-%m-%dT%H:%M:%S"
    r.interval = (start.strftime(iso), end.strftime(iso))
    ours = ["--start", start.strftime(iso) + "+00:00", "--end", end.strftime(iso) + "+00:00"]
    runners = [
        Runner(
            f"ours, {s} source",
            [str(python), "-m", "mlops_runtime", "features-materialize", *ours],
            projects[s],
            work / f"snapshot-{s}",
            projects[s] / "feature_repo" / "data",
        )
        for s in sources
    ]
    parquet = projects["parquet"] / "feature_repo"
    runners.append(
        Runner(
            FEAST,
            [str(feast_cli), "materialize", *r.interval],
            parquet,
            work / "snapshot-parquet",
            parquet / "data",
        )
    )
    print(f"interval {r.interval[0]} .. {r.interval[1]} (UTC)", flush=True)
    for runner in runners:
        print(f"  {runner.name}: {shlex.join(runner.cmd)}  (in {runner.cwd})", flush=True)

    for rep in range(-args.warmup, args.repeats):
        order = runners[rep % len(runners) :] + runners[: rep % len(runners)]
        for runner in order:
            seconds = timed(runner, env)
            check_online(runner, r.customers, r)
            label = "warm-up" if rep < 0 else f"run {rep + 1}"
            print(f"  {label}: {runner.name}: {seconds:.2f} s", flush=True)
            if rep >= 0:
                runner.seconds.append(seconds)
        floor = time.perf_counter()
        run_checked([str(python), "-c", "import feast"], env=env)
        if rep >= 0:
            r.floor_import_feast.append(time.perf_counter() - floor)
    r.runs = {x.name: x.seconds for x in runners}

    if not args.breakdown:
        return
    print("breakdown: one more run of ours (Parquet source), in-process ...", flush=True)
    script = work / "breakdown.py"
    script.write_text(BREAKDOWN)
    restore(runners[0])
    begin = time.perf_counter()
    proc = run_checked([str(python), str(script), *ours[1::2]], cwd=projects["parquet"], env=env)
    wall = time.perf_counter() - begin
    check_online(runners[0], r.customers, r)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("BREAKDOWN_JSON "))
    r.breakdown = json.loads(line.removeprefix("BREAKDOWN_JSON "))
    r.breakdown["process wall time"] = wall

    if args.profile:
        print("profile: cProfile of ours and of the Feast CLI ...", flush=True)
        for runner, labels, key in (
            (runners[0], PROFILE_OURS, "ours"),
            (runners[-1], PROFILE_FEAST, "feast"),
        ):
            stats = work / f"profile-{key}.pstats"
            head = [str(python), "-m", "cProfile", "-o", str(stats)]
            cmd = head + (runner.cmd[1:] if key == "ours" else runner.cmd)
            restore(runner)
            run_checked(cmd, cwd=runner.cwd, env=env)
            r.profile[key] = profile_top(stats, labels)


def tables_equal(paths: list[Path]) -> bool:
    """The same values in every table (timestamps compared in ns: pandas reads ISO text as
    ns and writes typed Parquet timestamps as us)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def values(path: Path) -> pa.Table:
        t = pq.read_table(path).replace_schema_metadata(None)
        fields = [
            pa.field(f.name, pa.timestamp("ns", f.type.tz)) if pa.types.is_timestamp(f.type) else f
            for f in t.schema
        ]
        return t.cast(pa.schema(fields))

    first = values(paths[0])
    return all(values(p).equals(first) for p in paths[1:])


def report(r: Results) -> None:
    feast = statistics.median(r.runs[FEAST])
    rows = []
    for name, seconds in r.runs.items():
        median = statistics.median(seconds)
        rows.append([
            name, f"{median:.2f} s", f"{min(seconds):.2f} s", f"{max(seconds):.2f} s",
            str(len(seconds)), f"{median / feast:.2f}x",
        ])  # fmt: skip
    floor = statistics.median(r.floor_import_feast)
    rows.append([
        "floor: `python -c \"import feast\"`", f"{floor:.2f} s",
        f"{min(r.floor_import_feast):.2f} s", f"{max(r.floor_import_feast):.2f} s",
        str(len(r.floor_import_feast)), f"{floor / feast:.2f}x",
    ])  # fmt: skip
    print()
    print(f"{r.rows:,} activity rows, {r.customers:,} customers, interval {r.interval} UTC")
    print(f"online store after every run: {r.online_rows:,} rows, digest {r.online_digest[:12]}")
    if len(r.source_bytes) > 1:
        print(f"offline tables from both sources identical: {r.tables_equal}")
    print(table(["command", "median", "min", "max", "runs", "x Feast"], rows))
    print()
    measured = {n: statistics.median(x) / feast for n, x in r.runs.items() if n != FEAST}
    targets, _ = judge(TARGETS, measured)
    print(table(["ours", "target", "measured (median / median)", "result"], targets))
    print()
    b = r.breakdown
    if not b:
        print("(no breakdown: --quick leaves it out)")
        return
    parts = [
        "imports (runtime)", "load project", "prepare offline table (prepare_all)",
        "open store (import feast, registry)", "Feast materialize",
    ]  # fmt: skip
    wall = b["process wall time"]
    steps = b["script total"] - b["in-process total"]  # the re-run steps, after the stage's
    start_up = wall - b["script total"]  # interpreter start-up and exit
    wall -= steps
    lines = [["interpreter start-up", f"{start_up:.2f} s", f"{start_up / wall:.0%}"]]
    lines += [[p, f"{b[p]:.2f} s", f"{b[p] / wall:.0%}"] for p in parts]
    lines.append(["process wall time (without the re-run steps)", f"{wall:.2f} s", "100%"])
    print("breakdown of ours (one in-process run, Parquet source):")
    print(table(["part", "seconds", "share"], lines))
    print()
    print("steps of preparing the offline table, re-run one by one:")
    print(table(["step", "seconds"], [[k, f"{v:.2f} s"] for k, v in b["steps"].items()]))
    for key, items in r.profile.items():
        print(f"\ncProfile, {key} (cumulative seconds, profiler overhead included):")
        print(table(["function", "cumulative"], [[k, f"{v:.2f} s"] for k, v in items]))


def main(argv: list[str] | None = None) -> int:
    parser_ = parser(
        __doc__,
        quick=f"{QUICK_ROWS:,} rows, the Parquet source only, one round, no warm-up, no "
        "breakdown or profile",
    )
    parser_.add_argument("--rows", type=int, default=1_000_000, help="activity rows (about)")
    parser_.add_argument("--repeats", type=int, default=3, help="timed runs of each command")
    parser_.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser_.add_argument(
        "--sources", default="parquet,csv", help="source formats of our runs (parquet, csv)"
    )
    parser_.add_argument("--profile", action="store_true", help="cProfile both commands once")
    add_runtime(parser_)
    add_quiet(parser_)
    add_output(parser_)
    args = parser_.parse_args(argv)
    args.breakdown = not args.quick
    if args.quick:
        args.rows, args.repeats, args.warmup, args.profile = QUICK_ROWS, 1, 0, False
        args.sources = "parquet"
    wait_quiet(args.wait_quiet, args.quiet_load)
    r = Results(
        started=utc_now(),
        command=command_line("materialize_speed.py", argv),
        commit=revision(),
        machine={"cpu": cpu_model(), "cpus": str(os.cpu_count()), "kernel": platform.release()},
        load_before=load_text(),
    )
    print(f"{r.started}; commit {r.commit}; {r.machine['cpus']} CPUs, {r.machine['cpu']}")
    print(f"load average {r.load_before}", flush=True)
    with workdir("materialize-speed-", keep=args.keep) as work:
        try:
            run(args, r, work)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            r.load_after = load_text()
    report(r)
    print(f"\nload average {r.load_before} at the start, {r.load_after} at the end")
    write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
