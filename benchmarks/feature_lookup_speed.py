"""Online lookup speed: single-record requests by entity key beside the same records inline.

    python benchmarks/feature_lookup_speed.py [--customers N] [--ids N] [--loads 1,16,16@1000]
        [--duration 20] [--warmup 5] [--repeats 3] [--inline-only] [--keep] [--json PATH]
        [--runtime DIR]
    python benchmarks/feature_lookup_speed.py --quick   # 2,000 customers, c16, 2 s runs, no floor

Target: the online lookup adds <= 2 ms p99 to a single-record request on the embedded store,
measured under wrk load, against the same request carrying all features inline.

What it does, in a temp dir:

1. Project. `scripts/make_datasets.py: churn_tables` simulates the churn tables for
   --customers customers (20,000: 220,000 activity rows, 40,000 labelled rows), ending an hour
   ago so that every online value is fresh. specs/churn.mlops.yaml, pointed at them, is built
   by this checkout's compiler; then `features-apply`, `features-materialize --start ...`
   (the whole simulated year into the SQLite online store) and `train` run in the project with
   the Feast virtualenv's interpreter (tests/feature_store/feast_env.py).
2. Bodies. --ids customers drawn at random; for each, two single-record `POST /predict` bodies:
   - key only: `{"customer_id", "contract", "tenure_months"}` (the request-time features
     drawn at random); the server looks the view's features up in the online store and
     computes the on-demand `charges_per_month`;
   - inline: the same `contract` and `tenure_months` with every other contract column except
     the target `churned`: the view's features as the online store holds them for that
     customer (read with Feast's `get_online_features`), `charges_per_month` computed from
     them as the spec defines it (total_charges / tenure_months). No `customer_id`: a request
     that carries its features needs no key.
   Before any load, the first 200 customers are posted both ways and must get the same
   probabilities: the model sees the same rows.
3. Server. `python -m mlops_runtime serve` with the Feast interpreter, 127.0.0.1, a free port,
   the generated defaults otherwise (one worker), started once, in its own process group, and
   always stopped.
4. Load. wrk (benchmarks/wrk/post_json_lines.lua cycles over the bodies file, a different
   customer per request; the same Lua for both sides), for each --loads entry and each
   repeat: key only and inline back to back, the order alternating, each a --warmup run and
   then a --duration run. The default loads: 1 connection (each request's own latency);
   16 connections as fast as answers come (the server saturated: the 2 cores are shared with
   wrk, so a cost per request shows up multiplied by the queue); 16 connections paced by
   wrk's delay() to about 1,000 req/s (busy, not saturated). Reported: p50 / p99 / p99.9
   latency and req/s per run, the medians over the repeats, and the p99 difference
   (key only - inline).
5. Serial check. The same bodies posted one after another on one keep-alive http.client
   connection, --serial seconds per body and repeat, each request timed in Python
   (perf_counter): an independent measure at one connection. wrk's own figures are printed
   with their "busy" ratio, requests x mean latency / (seconds x connections), which cannot
   exceed 1 for a closed loop whose latencies are right.
6. Floor. In a separate process, the lookup alone: `OnlineFeatures.assemble` (the online
   read for one key and the on-demand transform) timed 2,000 times.

A missed target is printed as MISSED; the exit code is non-zero when a command fails or an
answer is wrong (a non-2xx answer, a socket error, different probabilities): with the lookup
not served (a 4xx to key-only bodies) the script measures the inline side, says so, and
exits 1, unless --inline-only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness import (
    LUA,
    ROOT,
    BenchError,
    RunFacts,
    Server,
    Target,
    add_output,
    add_quiet,
    add_runtime,
    command_line,
    cpu_model,
    free_port,
    http_post,
    json_line,
    judge,
    load_text,
    parser,
    require_wrk,
    revision,
    run_checked,
    run_wrk,
    table,
    utc_now,
    venv_versions,
    verdict,
    wait_quiet,
    workdir,
    write_json,
    wrk_command,
    wrk_figures,
)
from harness.store import build_churn, feast_python, make_datasets, store_env

POST_JSON_LINES = LUA / "post_json_lines.lua"


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


# The lookup's cost: p99 of key only - p99 of inline (medians over the repeats), for each wrk
# load (keyed by its label, e.g. "c16") and on the serial connection ("serial").
LOOKUP_P99 = Target("online lookup p99 cost", "", 2.0, show=_ms)
SEED = 11
CHECKED = 200  # customers posted both ways before the load
KEY = "customer_id"
REQUEST = ("contract", "tenure_months")
TARGET = "churned"
KEY_ONLY, INLINE = "key only", "inline"
Load = tuple[int, int]  # (wrk connections, paced req/s or 0)
PACKAGES = ("feast", "pandas", "numpy", "scikit-learn", "uvicorn", "mlops-runtime")
DEFAULTS = {"customers": 20_000, "ids": 10_000, "loads": "1,16,16@1000", "duration": 20,
            "warmup": 5, "repeats": 3, "serial": 10.0}  # fmt: skip
QUICK = {"customers": 2_000, "ids": 500, "loads": "16", "duration": 2, "warmup": 1,
         "repeats": 1, "serial": 1.0}  # fmt: skip

# In the project folder, with the Feast interpreter; argv: a JSON file of customer ids.
# Prints the view's online values of each as one JSON line.
ONLINE_VALUES = r"""
import json, sys
from mlops_runtime.project import load_project
from mlops_runtime.features.store.offline import feature_refs, open_store
project = load_project()
ids = json.load(open(sys.argv[1]))
store = open_store(project.config, project.root)
values = store.get_online_features(
    features=feature_refs(project.config), entity_rows=[{"customer_id": i} for i in ids]
).to_dict()
print("ONLINE_JSON " + json.dumps(values))
"""

# In the project folder, with the Feast interpreter; argv: a JSON file of key-only records.
# Times OnlineFeatures.assemble for one record at a time; prints one JSON line.
FLOOR = r"""
import json, sys, time
from mlops_runtime.project import load_project
from mlops_runtime.features.store.online import OnlineFeatures
project = load_project()
records = json.load(open(sys.argv[1]))
online = OnlineFeatures(project.config, project.root)
for r in records[:200]:
    online.assemble([r])
times = []
for i in range(2000):
    r = records[i % len(records)]
    t = time.perf_counter()
    online.assemble([r])
    times.append(time.perf_counter() - t)
times.sort()
print("FLOOR_JSON " + json.dumps({"n": len(times), "p50_ms": times[len(times) // 2] * 1e3,
      "p99_ms": times[int(len(times) * 0.99)] * 1e3, "mean_ms": sum(times) / len(times) * 1e3}))
"""


@dataclass
class WrkRun:
    kind: str
    connections: int
    paced: int  # the req/s wrk's delay() aims at (0: as fast as answers come)
    repeat: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    mean_ms: float = 0.0

    @property
    def busy(self) -> float:
        """requests x mean latency / (seconds x connections): at most 1 for a closed loop
        whose latencies are right (each connection has one request in flight at a time)."""
        return self.requests * self.mean_ms / 1000 / (self.seconds * self.connections)


@dataclass
class Serial:
    """One keep-alive http.client connection, one request at a time, timed in Python."""

    kind: str
    repeat: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float


@dataclass
class Results(RunFacts):
    customers: int = 0
    activity_rows: int = 0
    ids: int = 0
    key_only_served: bool = False
    key_only_probe: str = ""
    checked: int = 0
    max_proba_diff: float = 0.0
    body_bytes: dict[str, float] = field(default_factory=dict)  # mean bytes per body
    runs: list[WrkRun] = field(default_factory=list)
    serial: list[Serial] = field(default_factory=list)
    floor: dict[str, float] = field(default_factory=dict)
    setup_seconds: dict[str, float] = field(default_factory=dict)


# --- the project ------------------------------------------------------------------------------


def make_project(work: Path, customers: int, python: Path, env: dict[str, str], r: Results) -> Path:
    import pandas as pd

    datasets = make_datasets()
    shutil.copytree(ROOT / "specs", work / "specs")
    end = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(hours=1)
    activity, labels = datasets.churn_tables(end=end, customers=customers, seed=SEED)
    data = work / "specs" / "data"
    activity.to_parquet(data / "churn_activity_lookup.parquet", index=False)
    (data / "churn_labels_lookup.csv").write_bytes(datasets.to_csv_bytes(datasets.iso_utc(labels)))
    r.activity_rows = len(activity)
    project = build_churn(
        work,
        "lookup",
        "data/churn_activity_lookup.parquet",
        "build",
        train="data/churn_labels_lookup.csv",
    )
    start = (activity["event_timestamp"].min() - pd.Timedelta(days=1)).isoformat()
    for stage in (["features-apply"], ["features-materialize", "--start", start], ["train"]):
        begin = time.perf_counter()
        run_checked([str(python), "-m", "mlops_runtime", *stage], cwd=project, env=env)
        r.setup_seconds[stage[0]] = time.perf_counter() - begin
        print(f"  {stage[0]}: {r.setup_seconds[stage[0]]:.1f} s", flush=True)
    return project


def bodies(
    project: Path, python: Path, env: dict[str, str], customers: int, n: int, work: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(key-only records, inline records) of `n` random customers, in the same order."""
    rng = random.Random(SEED)
    ids = rng.sample(range(1000, 1000 + customers), n)
    ids_file = work / "ids.json"
    ids_file.write_text(json.dumps(ids))
    script = work / "online_values.py"
    script.write_text(ONLINE_VALUES)
    proc = run_checked([str(python), str(script), str(ids_file)], cwd=project, env=env)
    values: dict[str, list[Any]] = json.loads(json_line(proc.stdout, "ONLINE_JSON "))
    config = json.loads((project / "config.json").read_text())
    contract = json.loads((project / "contract.json").read_text())
    view = config["feature_store"]["views"][0]
    on_demand = config["feature_store"]["on_demand"]
    ratio = on_demand.get("charges_per_month", {})
    if list(on_demand) != ["charges_per_month"] or (
        ratio.get("transform"),
        ratio.get("inputs"),
    ) != (
        "ratio",
        ["total_charges", "tenure_months"],
    ):
        raise BenchError(f"unexpected on-demand features in config.json: {on_demand}")
    contracts = contract["columns"]["contract"]["values"]
    keyed, inline = [], []
    for i, customer in enumerate(ids):
        request = {
            "contract": rng.choices(contracts, weights=[0.5, 0.3, 0.2])[0],
            "tenure_months": rng.randint(1, 71),
        }
        keyed.append({KEY: customer, **request})
        row: dict[str, Any] = dict(request)
        for feature in view["features"]:
            if values[feature][i] is None:
                raise BenchError(f"customer {customer} has no online {feature}")
            row[feature] = values[feature][i]
        total, tenure = row["total_charges"], row["tenure_months"]
        row["charges_per_month"] = None if tenure == 0 else total / tenure
        expected = [c for c in contract["columns"] if c != TARGET]
        if sorted(row) != sorted(expected):
            raise BenchError(f"inline record has {sorted(row)}, the contract {expected}")
        inline.append(row)
    return keyed, inline


# --- the server -------------------------------------------------------------------------------


def serve(python: Path, project: Path, env: dict[str, str], log: Path) -> Server:
    """`python -m mlops_runtime serve` with the Feast interpreter on 127.0.0.1, a free port."""
    port = free_port()
    return Server(
        "the generated server",
        [str(python), "-m", "mlops_runtime", "serve"],
        cwd=project,
        env={**env, "PORT": str(port), "HOST": "127.0.0.1"},
        log=log,
        port=port,
    )


def check_same(server: Server, keyed: list[dict[str, Any]], inline: list[dict[str, Any]]) -> float:
    """Post the first CHECKED customers both ways; the largest probability difference."""
    worst = 0.0
    for a, b in zip(keyed[:CHECKED], inline[:CHECKED], strict=True):
        answers = []
        for record in (a, b):
            status, body = http_post(server.base + "/predict", json.dumps(record).encode())
            if status != 200:
                raise BenchError(f"{record} answered {status}: {body[:300]!r}")
            answers.append(json.loads(body)["probabilities"])
        worst = max(worst, *(abs(x - y) for x, y in zip(*answers, strict=True)))
    return worst


# --- load -------------------------------------------------------------------------------------


def wrk(url: str, bodies_file: Path, seconds: int, load: Load, threads: int) -> dict[str, Any]:
    connections, paced = load
    pause = [str(round(connections * 1000 / paced))] if paced else []
    cmd = wrk_command(
        url,
        POST_JSON_LINES,
        str(bodies_file),
        *pause,
        seconds=seconds,
        connections=connections,
        threads=threads,
    )
    return run_wrk(cmd, seconds)


def measure(
    kind: str, url: str, bodies_file: Path, load: Load, repeat: int, args: argparse.Namespace
) -> WrkRun:
    wrk(url, bodies_file, args.warmup, load, args.threads)
    data = wrk(url, bodies_file, args.duration, load, args.threads)
    run = WrkRun(
        kind=kind,
        connections=load[0],
        paced=load[1],
        repeat=repeat,
        **wrk_figures(data),
        mean_ms=data["latency_us"]["mean"] / 1000,
    )
    print(
        f"  {label(load)} #{repeat} {kind}: {run.rps:,.0f} req/s  p50 {run.p50_ms:.2f} ms  "
        f"p99 {run.p99_ms:.2f} ms  p99.9 {run.p999_ms:.2f} ms  non-2xx {run.non_2xx}  "
        f"socket errors {run.socket_errors}",
        flush=True,
    )
    if run.non_2xx or run.socket_errors:
        raise BenchError(f"{kind}: {run.non_2xx} non-2xx, {run.socket_errors} socket errors")
    return run


def serial(
    kind: str, server: Server, records: list[dict[str, Any]], repeat: int, seconds: float
) -> Serial:
    """Requests one after another on one keep-alive connection for `seconds` (after 1 s
    untimed), each timed with perf_counter: a check of wrk's latencies at one connection."""
    bodies = [json.dumps(x, separators=(",", ":")).encode() for x in records]
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    times: list[float] = []
    try:
        for phase, length in (("warm-up", 1.0), ("timed", seconds)):
            end = time.perf_counter() + length
            i = 0
            while time.perf_counter() < end:
                start = time.perf_counter()
                conn.request("POST", "/predict", bodies[i % len(bodies)], headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise BenchError(f"{kind}: serial request answered {response.status}")
                if phase == "timed":
                    times.append(time.perf_counter() - start)
                i += 1
    finally:
        conn.close()
    times.sort()
    n = len(times)
    run = Serial(
        kind=kind,
        repeat=repeat,
        requests=n,
        seconds=seconds,
        p50_ms=times[n // 2] * 1e3,
        p99_ms=times[min(n - 1, int(n * 0.99))] * 1e3,
        p999_ms=times[min(n - 1, int(n * 0.999))] * 1e3,
        mean_ms=sum(times) / n * 1e3,
        max_ms=times[-1] * 1e3,
    )
    print(
        f"  serial #{repeat} {kind}: {n / seconds:,.0f} req/s  p50 {run.p50_ms:.2f} ms  "
        f"p99 {run.p99_ms:.2f} ms  p99.9 {run.p999_ms:.2f} ms",
        flush=True,
    )
    return run


def run(args: argparse.Namespace, r: Results, work: Path) -> None:
    python = feast_python()
    env = store_env(args.runtime)
    r.machine["versions"] = venv_versions(python, PACKAGES)
    r.machine["python"] = platform.python_version()
    print(f"Feast interpreter {python}\n  {r.machine['versions']}", flush=True)
    r.customers, r.ids = args.customers, min(args.ids, args.customers)
    print(f"project: {r.customers:,} customers ...", flush=True)
    project = make_project(work, r.customers, python, env, r)
    keyed, inline = bodies(project, python, env, r.customers, r.ids, work)
    files = {KEY_ONLY: work / "key_only.jsonl", INLINE: work / "inline.jsonl"}
    for kind, records in ((KEY_ONLY, keyed), (INLINE, inline)):
        lines = [json.dumps(x, separators=(",", ":")) for x in records]
        files[kind].write_text("\n".join(lines) + "\n")
        r.body_bytes[kind] = statistics.fmean(len(x) for x in lines)
    print(f"bodies: {r.ids:,} customers; e.g.\n  {KEY_ONLY}: {keyed[0]}\n  {INLINE}: {inline[0]}")

    with serve(python, project, env, work / "serve.log") as server:
        url = server.base + "/predict"
        status, body = http_post(url, json.dumps(keyed[0]).encode())
        r.key_only_served = status == 200
        r.key_only_probe = f"HTTP {status}: {body[:200].decode(errors='replace')}"
        kinds = [INLINE]
        if r.key_only_served:
            r.max_proba_diff = check_same(server, keyed, inline)
            r.checked = min(CHECKED, len(keyed))
            print(
                f"checked {r.checked} customers both ways: largest probability difference "
                f"{r.max_proba_diff:g}",
                flush=True,
            )
            if r.max_proba_diff > 1e-9:
                raise BenchError("key-only and inline requests got different probabilities")
            kinds = [KEY_ONLY, INLINE]
        else:
            print(f"key-only request not served ({r.key_only_probe}): inline only", flush=True)
        for load in args.loads:
            for repeat in range(1, args.repeats + 1):
                order = kinds if repeat % 2 else kinds[::-1]
                for kind in order:
                    r.runs.append(measure(kind, url, files[kind], load, repeat, args))
        if args.serial > 0:
            by_kind = {KEY_ONLY: keyed, INLINE: inline}
            for repeat in range(1, args.repeats + 1):
                order = kinds if repeat % 2 else kinds[::-1]
                for kind in order:
                    r.serial.append(serial(kind, server, by_kind[kind], repeat, args.serial))

    if r.key_only_served and not args.quick:
        script = work / "floor.py"
        script.write_text(FLOOR)
        keyed_file = work / "keyed.json"
        keyed_file.write_text(json.dumps(keyed))
        proc = run_checked([str(python), str(script), str(keyed_file)], cwd=project, env=env)
        r.floor = json.loads(json_line(proc.stdout, "FLOOR_JSON "))


def parse_load(text: str) -> Load:
    connections, _, paced = text.strip().partition("@")
    return int(connections), int(paced or 0)


def label(load: Load) -> str:
    connections, paced = load
    return f"c{connections}" + (f" paced {paced:,}/s" if paced else "")


def median_of(runs: list[WrkRun], attr: str) -> float:
    return statistics.median(float(getattr(x, attr)) for x in runs)


def report(r: Results, loads: list[Load]) -> bool:
    """Print the tables; False when a target was missed or could not be measured."""
    print()
    print(
        f"{r.customers:,} customers ({r.activity_rows:,} activity rows), bodies cycling over "
        f"{r.ids:,} of them; mean body {r.body_bytes.get(KEY_ONLY, 0):.0f} B key only, "
        f"{r.body_bytes.get(INLINE, 0):.0f} B inline"
    )
    rows = [
        [
            label((x.connections, x.paced)), str(x.repeat), x.kind, f"{x.rps:,.0f}",
            f"{x.p50_ms:.2f}", f"{x.p99_ms:.2f}", f"{x.p999_ms:.2f}", f"{x.max_ms:.1f}",
            f"{x.requests:,}", f"{x.busy:.2f}" if not x.paced else "-",
        ]
        for x in r.runs
    ]  # fmt: skip
    print(table(["load", "repeat", "body", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
                 "requests", "busy"], rows))  # fmt: skip
    print(
        "busy: wrk's requests x mean latency / (seconds x connections); above 1 its "
        "latencies add up to more time than the run had"
    )
    print()
    ok = r.key_only_served
    summary, targets = [], []
    measured: dict[str, float] = {}
    for load in loads:
        med: dict[str, dict[str, float]] = {}
        mine = [x for x in r.runs if (x.connections, x.paced) == load]
        for kind in (KEY_ONLY, INLINE):
            runs = [x for x in mine if x.kind == kind]
            if runs:
                med[kind] = {a: median_of(runs, a) for a in ("rps", "p50_ms", "p99_ms", "p999_ms")}
                m = med[kind]
                summary.append([
                    label(load), kind, f"{m['rps']:,.0f}", f"{m['p50_ms']:.2f}", f"{m['p99_ms']:.2f}",
                    f"{m['p999_ms']:.2f}", str(len(runs)),
                ])  # fmt: skip
        if KEY_ONLY in med and INLINE in med:
            diffs = [
                k.p99_ms - i.p99_ms
                for k in mine
                for i in mine
                if k.repeat == i.repeat and (k.kind, i.kind) == (KEY_ONLY, INLINE)
            ]
            diff = med[KEY_ONLY]["p99_ms"] - med[INLINE]["p99_ms"]
            p50 = med[KEY_ONLY]["p50_ms"] - med[INLINE]["p50_ms"]
            measured[label(load)] = diff
            targets.append([
                label(load), f"{p50:+.2f} ms", f"{diff:+.2f} ms",
                ", ".join(f"{d:+.2f}" for d in diffs),
                f"{med[KEY_ONLY]['rps'] / med[INLINE]['rps']:.2f}x", LOOKUP_P99.wanted,
                verdict(LOOKUP_P99.met(diff)),
            ])  # fmt: skip
    print("medians over the repeats:")
    print(table(["load", "body", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "runs"], summary))
    print()
    if targets:
        print("lookup cost (key only - inline):")
        print(table(["load", "p50", "p99 (medians)", "p99 per repeat", "req/s key / inline",
                     "target", "result"], targets))  # fmt: skip
    else:
        print(f"key-only lookup: NOT MEASURED ({r.key_only_probe})")
    if r.serial:
        print("\nserial check: one keep-alive http.client connection, timed in Python:")
        rows = []
        for kind in (KEY_ONLY, INLINE):
            serials = [x for x in r.serial if x.kind == kind]
            if serials:
                rows.append([
                    kind,
                    f"{sum(x.requests for x in serials) / sum(x.seconds for x in serials):,.0f}",
                    f"{statistics.median(x.p50_ms for x in serials):.2f}",
                    f"{statistics.median(x.p99_ms for x in serials):.2f}",
                    ", ".join(f"{x.p99_ms:.2f}" for x in serials),
                    f"{statistics.median(x.p999_ms for x in serials):.2f}",
                    f"{max(x.max_ms for x in serials):.1f}", str(len(serials)),
                ])  # fmt: skip
        print(table(["body", "req/s", "p50 ms (median)", "p99 ms (median)", "p99 per repeat",
                     "p99.9 ms", "max ms", "runs"], rows))  # fmt: skip
        keyed = [x for x in r.serial if x.kind == KEY_ONLY]
        plain = [x for x in r.serial if x.kind == INLINE]
        if keyed and plain:
            diff = statistics.median(x.p99_ms for x in keyed) - statistics.median(
                x.p99_ms for x in plain
            )
            p50 = statistics.median(x.p50_ms for x in keyed) - statistics.median(
                x.p50_ms for x in plain
            )
            measured["serial"] = diff
            print(f"serial: key only - inline: p50 {p50:+.2f} ms, p99 {diff:+.2f} ms "
                  f"(target {LOOKUP_P99.wanted}): {verdict(LOOKUP_P99.met(diff))}")  # fmt: skip
    if r.floor:
        print(
            f"\nfloor, in-process OnlineFeatures.assemble of one record ({r.floor['n']:.0f} "
            f"calls): p50 {r.floor['p50_ms']:.3f} ms, p99 {r.floor['p99_ms']:.3f} ms, "
            f"mean {r.floor['mean_ms']:.3f} ms"
        )
    elif r.key_only_served:
        print("\nfloor, in-process OnlineFeatures.assemble: not timed (--quick leaves it out)")
    # The wrk loads' verdicts decide; the serial check is printed beside them.
    wanted = [
        replace(LOOKUP_P99, name=f"{LOOKUP_P99.name}, {label(x)}", key=label(x)) for x in loads
    ]
    rows, met = judge(wanted, measured)
    if rows:
        print("\ntargets:")
        print(table(["target", "wanted", "measured (key only - inline)", "result"], rows))
    return ok and met and bool(rows)


def main(argv: list[str] | None = None) -> int:
    parser_ = parser(
        __doc__,
        quick=f"{QUICK['customers']:,} customers, loads {QUICK['loads']}, "
        f"{QUICK['duration']} s runs, one repeat, no in-process floor",
    )
    parser_.add_argument(
        "--customers", type=int, help=f"customers simulated ({DEFAULTS['customers']:,})"
    )
    parser_.add_argument(
        "--ids", type=int, help=f"customers the bodies cycle over ({DEFAULTS['ids']:,})"
    )
    parser_.add_argument(
        "--loads",
        help="wrk loads, comma-separated: CONNECTIONS, or CONNECTIONS@REQ_PER_S for a load "
        f"paced by wrk's delay() (default {DEFAULTS['loads']})",
    )
    parser_.add_argument("--threads", type=int, default=2, help="wrk threads (at most conns)")
    parser_.add_argument(
        "--duration", type=int, help=f"seconds per measured run ({DEFAULTS['duration']})"
    )
    parser_.add_argument(
        "--warmup", type=int, help=f"seconds of warm-up per run ({DEFAULTS['warmup']})"
    )
    parser_.add_argument(
        "--repeats", type=int, help=f"runs per body and load ({DEFAULTS['repeats']})"
    )
    parser_.add_argument(
        "--serial",
        type=float,
        help="seconds of the one-connection http.client check per body and repeat "
        f"(0: none; default {DEFAULTS['serial']:g})",
    )
    parser_.add_argument(
        "--inline-only", action="store_true", help="exit 0 when key-only bodies are not served"
    )
    add_runtime(parser_)
    add_quiet(parser_)
    add_output(parser_)
    args = parser_.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.loads = [parse_load(x) for x in str(args.loads).split(",") if x.strip()]
    missing = require_wrk()
    if missing is not None:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    wait_quiet(args.wait_quiet, args.quiet_load)
    r = Results(
        started=utc_now(),
        command=command_line("feature_lookup_speed.py", argv),
        commit=revision(),
        machine={"cpu": cpu_model(), "cpus": str(os.cpu_count()), "kernel": platform.release()},
        load_before=load_text(),
    )
    print(f"{r.started}; commit {r.commit}; {r.machine['cpus']} CPUs, {r.machine['cpu']}")
    print(f"load average {r.load_before}", flush=True)
    failed = False
    with workdir("lookup-speed-", keep=args.keep) as work:
        try:
            run(args, r, work)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
        finally:
            r.load_after = load_text()
    met = report(r, args.loads) if r.runs else False
    print(f"\nload average {r.load_before} at the start, {r.load_after} at the end")
    write_json(args.json, r)
    if failed:
        return 1
    if not r.key_only_served and not args.inline_only:
        return 1
    print(f"summary: {'every target met' if met else 'a target was MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
