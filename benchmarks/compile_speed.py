"""Speed benchmarks of the compiler, measured as whole processes.

    python benchmarks/compile_speed.py [--spec FILE] [--runs N] [--sizes 1,10,...] [--no-hyperfine]
    python benchmarks/compile_speed.py --ratio-only [--ratio-spec FILE] [--ratio-runs N]
    python benchmarks/compile_speed.py --quick     # 10 specs instead of 200, one run each

1. Cold start: `mlops --help` (target <= 150 ms) and `mlops build` of one spec into a fresh
   --out (target <= 400 ms), beside the interpreter floor `python -c pass` and the import floor
   `python -c "import jinja2, yaml, pydantic"`.
2. Monorepo of 200 generated specs (always built, whatever --sizes says): a fresh build into a
   new --out in <= 2.0 s, and a no-op rebuild that writes no file (every mtime_ns unchanged,
   stdout reports only "unchanged") in <= 0.8 s, each beside the figure measured before the
   runtime moved into mlops-runtime (4.33 s and 1.30 s); build time for 1..200 specs, and
   the filesystem floor (the same files created by a plain Python loop, and the same build
   into tmpfs).

3. Monorepo cost against one spec (issue 22 item 6): `mlops build DIR --out OUT` of 200
   copies of a level-2 spec (default specs/penguins.mlops.yaml) must take <= 4x the time of
   building one copy. The two builds alternate, each into a fresh folder, so that both see the
   same load; the ratio of the means is the verdict, and every run pair's ratio is printed as
   the spread. `--ratio-only` runs this part alone (about 30 s).

Timing uses hyperfine (--warmup, --export-json) when it is on PATH, else a perf_counter loop over
subprocess runs. A missed target is printed as MISSED; the exit code is non-zero only on errors.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import PYTHON, ROOT, BenchError, Target, cpu_model, parser, print_table, run_checked

DEFAULT_SPEC = ROOT / "specs" / "diabetes.mlops.yaml"
RATIO_SPEC = ROOT / "specs" / "penguins.mlops.yaml"  # level 2, with CI and a deployment
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
SUMMARY_RE = re.compile(r"^(?P<name>[^:\s]+): .*\((?P<summary>[^)]*)\)$")
MONOREPO_SPECS = 200
QUICK_SPECS = 10  # --quick: the monorepo's size
COUNT = MONOREPO_SPECS  # the monorepo's size in this run
FRESH_TARGET = 2.0  # seconds: build MONOREPO_SPECS specs into a new --out
NOOP_TARGET = 0.8  # seconds: rebuild them when nothing changed
# Building MONOREPO_SPECS copies of a spec against building one, ratio of the means.
RATIO = Target("monorepo / one spec", "ratio", 4.0)
# The same two figures before the projects' Python moved into mlops-runtime (29 files per
# level-1 project, 5,800 in all): docs/benchmarks.md, 2026-11-25, commit aa604d6 and later.
BEFORE_RUNTIME = {"fresh": 4.33, "noop": 1.30}


@dataclass(frozen=True)
class Timing:
    label: str
    mean: float  # seconds
    stddev: float
    min: float
    runs: int


@dataclass(frozen=True)
class Row:
    timing: Timing
    target: float | None  # seconds; None means "reference only"

    @property
    def status(self) -> str:
        if self.target is None:
            return "-"
        return "pass" if self.timing.mean <= self.target else "MISSED"


# --- running and timing -----------------------------------------------------------------------


class Timer:
    """Times whole commands with hyperfine if available, else with a perf_counter loop."""

    def __init__(self, work: Path, *, use_hyperfine: bool) -> None:
        self.work = work
        self.hyperfine = shutil.which("hyperfine") if use_hyperfine else None
        self._n = 0

    @property
    def tool(self) -> str:
        if not self.hyperfine:
            return "perf_counter loop over subprocess.run"
        return run_checked([self.hyperfine, "--version"]).stdout.strip()

    def time(
        self,
        label: str,
        cmd: Sequence[str],
        *,
        runs: int,
        warmup: int,
        fresh_dir: Path | None = None,
    ) -> Timing:
        """Mean/stddev/min over `runs`; with fresh_dir, it is deleted (untimed) before each run."""
        print(f"  timing {label} ({runs} runs, {warmup} warmup) ...", file=sys.stderr, flush=True)
        if self.hyperfine:
            return self._hyperfine(label, cmd, runs=runs, warmup=warmup, fresh_dir=fresh_dir)
        return self._loop(label, cmd, runs=runs, warmup=warmup, fresh_dir=fresh_dir)

    def _hyperfine(
        self, label: str, cmd: Sequence[str], *, runs: int, warmup: int, fresh_dir: Path | None
    ) -> Timing:
        assert self.hyperfine is not None
        self._n += 1
        export = self.work / f"hyperfine-{self._n}.json"
        args = [
            self.hyperfine,
            "--shell=none",
            "--style=none",
            "--output=pipe",
            f"--warmup={warmup}",
            f"--runs={runs}",
            f"--export-json={export}",
        ]
        if fresh_dir is not None:
            args += ["--prepare", shlex.join([PYTHON, "-c", _MOVE_ASIDE, str(fresh_dir)])]
        args.append(shlex.join(cmd))
        run_checked(args)
        if fresh_dir is not None:
            _delete_moved(fresh_dir)
        try:
            result = json.loads(export.read_text())["results"][0]
        except (OSError, ValueError, KeyError, IndexError) as exc:
            raise BenchError(f"cannot read hyperfine's JSON {export}: {exc}") from exc
        times = [float(t) for t in result["times"]]
        stddev = result.get("stddev")
        return Timing(
            label,
            mean=float(result["mean"]),
            stddev=float(stddev) if stddev is not None else 0.0,
            min=float(result["min"]),
            runs=len(times),
        )

    @staticmethod
    def _loop(
        label: str, cmd: Sequence[str], *, runs: int, warmup: int, fresh_dir: Path | None
    ) -> Timing:
        times: list[float] = []
        for i in range(warmup + runs):
            if fresh_dir is not None:
                subprocess.run([PYTHON, "-c", _MOVE_ASIDE, str(fresh_dir)], check=True)
            start = time.perf_counter()
            proc = subprocess.run(list(cmd), capture_output=True, check=False)
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                raise BenchError(f"`{shlex.join(cmd)}` exited {proc.returncode}")
            if i >= warmup:
                times.append(elapsed)
        if fresh_dir is not None:
            _delete_moved(fresh_dir)
        return Timing(
            label,
            mean=statistics.fmean(times),
            stddev=statistics.stdev(times) if len(times) > 1 else 0.0,
            min=min(times),
            runs=len(times),
        )


# A fresh build goes into a folder that does not exist. The previous run's output is renamed
# out of the way, not deleted, before each run: on this machine's ext4 (mounted with
# `discard`) creating thousands of files right after deleting thousands costs up to 3x more
# kernel time, which would time the deletion rather than the build. Deleted after timing.
_MOVE_ASIDE = (
    "import os, sys, uuid; p = sys.argv[1]; "
    "os.path.exists(p) and os.rename(p, p + '.old-' + uuid.uuid4().hex)"
)


def _delete_moved(fresh_dir: Path) -> None:
    for old in fresh_dir.parent.glob(fresh_dir.name + ".old-*"):
        shutil.rmtree(old, ignore_errors=True)


# --- the commands -----------------------------------------------------------------------------


def mlops_command() -> list[str]:
    """The console script installed beside this interpreter (not a pyenv/asdf shim)."""
    beside = Path(PYTHON).parent / "mlops"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [PYTHON, "-m", "mlops_compiler"]


def shim_command(real: list[str]) -> list[str] | None:
    """`mlops` as found on PATH, when that is a different file (e.g. a version-manager shim)."""
    found = shutil.which("mlops")
    if found is None or Path(found).resolve() == Path(real[0]).resolve():
        return None
    return [found]


# --- the monorepo -----------------------------------------------------------------------------


def make_monorepo(spec: Path, root: Path, count: int) -> list[Path]:
    """`count` copies of `spec`, one folder each with its data, under unique DNS names."""
    text = spec.read_text()
    match = re.search(r"^name:\s*(\S+)\s*$", text, flags=re.MULTILINE)
    if match is None:
        raise BenchError(f"{spec}: no top-level `name:` line to rewrite")
    base = match.group(1).strip("'\"")[:30].rstrip("-")
    data = re.search(r"^\s+train:\s*(\S+)\s*$", text, flags=re.MULTILINE)
    data_rel = Path(data.group(1)) if data else None
    folders: list[Path] = []
    for i in range(count):
        name = f"{base}-{i:03d}"
        if not NAME_RE.match(name):
            raise BenchError(f"generated name {name!r} is not a DNS name of <= 40 characters")
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "mlops.yaml").write_text(
            text[: match.start()] + f"name: {name}" + text[match.end() :]
        )
        if data_rel is not None and (spec.parent / data_rel).is_file():
            (folder / data_rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(spec.parent / data_rel, folder / data_rel)
        folders.append(folder)
    return folders


def snapshot(root: Path) -> dict[str, int]:
    """mtime_ns of every file below root, by relative path."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def check_noop_stdout(stdout: str, expected: int) -> list[str]:
    """Problems with a rebuild's report; [] when every spec says only 'N unchanged'."""
    problems: list[str] = []
    lines = [line for line in stdout.splitlines() if line.strip()]
    specs = 0
    for line in lines:
        m = SUMMARY_RE.match(line)
        if m is None:
            problems.append(f"unexpected line: {line!r}")
            continue
        specs += 1
        parts = [p.strip() for p in m.group("summary").split(",")]
        if not all(re.fullmatch(r"\d+ unchanged", p) for p in parts):
            problems.append(f"{m.group('name')}: {m.group('summary')}")
    if specs != expected:
        problems.append(f"{specs} spec lines in the report, expected {expected}")
    return problems


# --- reporting --------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def machine_lines(timer: Timer) -> list[str]:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} {platform.release()}",
        f"python: {platform.python_version()} ({PYTHON})",
        f"timer: {timer.tool}",
        f"load average (1/5/15 min): {load}",
    ]


# --- the benchmarks ---------------------------------------------------------------------------


def cold_start(timer: Timer, spec: Path, work: Path, runs: int) -> list[Row]:
    mlops = mlops_command()
    out = work / "cold-out"
    build = [*mlops, "build", str(spec), "--out", str(out)]
    # One untimed run of each, so a broken command is an error and not a fast "pass".
    run_checked([*mlops, "--help"])
    run_checked(build)
    if not any(out.rglob("mlops-manifest.json")):
        raise BenchError(f"`{shlex.join(build)}` wrote no mlops-manifest.json")
    plan: list[tuple[str, list[str], float | None, Path | None]] = [
        ("python -c pass", [PYTHON, "-c", "pass"], None, None),
        (
            'python -c "import jinja2, yaml, pydantic"',
            [PYTHON, "-c", "import jinja2, yaml, pydantic"],
            None,
            None,
        ),
        ("mlops --help", [*mlops, "--help"], 0.150, None),
        (f"mlops build {spec.name} (fresh --out)", build, 0.400, out),
    ]
    shim = shim_command(mlops)
    if shim is not None:
        plan.append((f"mlops --help via PATH ({shim[0]})", [*shim, "--help"], None, None))
    return [
        Row(timer.time(label, cmd, runs=runs, warmup=3, fresh_dir=fresh), target)
        for label, cmd, target, fresh in plan
    ]


def filesystem_floor(built: Path, work: Path) -> tuple[int, float]:
    """Seconds to create, in a plain Python loop, as many files in the same folder layout.

    A fresh build cannot be faster than creating its files; on some disks that alone costs
    most of the time, so the build is reported beside it.
    """
    files = [p.relative_to(built) for p in built.rglob("*") if p.is_file()]
    target = work / "floor"
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    for rel in files:
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 2048)
    elapsed = time.perf_counter() - started
    shutil.rmtree(target, ignore_errors=True)
    return len(files), elapsed


def monorepo(
    timer: Timer, spec: Path, work: Path, sizes: list[int], runs: int
) -> tuple[list[tuple[int, Row]], Row, list[str]]:
    mlops = mlops_command()
    repo = work / "monorepo"
    folders = make_monorepo(spec, repo, max(sizes))

    scaling: list[tuple[int, Row]] = []
    for n in sizes:
        out = work / f"out-{n}"
        # The whole monorepo is built through folder discovery; smaller sets name their folders.
        targets = [str(repo)] if n == len(folders) else [str(f) for f in folders[:n]]
        cmd = [*mlops, "build", *targets, "--out", str(out)]
        run_checked(cmd)
        built = len(list(out.glob("*/mlops-manifest.json")))
        if built != n:
            raise BenchError(f"building {n} specs produced {built} manifests")
        target = FRESH_TARGET if n == COUNT else None
        timing = timer.time(
            f"{n} spec{'' if n == 1 else 's'}", cmd, runs=runs, warmup=1, fresh_dir=out
        )
        scaling.append((n, Row(timing, target)))

    # No-op rebuild of the 200-spec set (the largest), which the loop above left built.
    n = COUNT
    out = work / f"out-{n}"
    cmd = [*mlops, "build", str(repo), "--out", str(out)]
    run_checked(cmd)  # the output as a fresh build leaves it; from here on nothing may change
    before = snapshot(out)
    problems = check_noop_stdout(run_checked(cmd).stdout, n)
    noop_timing = timer.time(f"no-op rebuild, {n} specs", cmd, runs=runs, warmup=1)
    after = snapshot(out)
    if before.keys() != after.keys():
        added = sorted(after.keys() - before.keys())
        gone = sorted(before.keys() - after.keys())
        problems.append(f"file set changed: +{added[:5]} -{gone[:5]}")
    touched = sorted(p for p in before.keys() & after.keys() if before[p] != after[p])
    if touched:
        problems.append(f"{len(touched)} of {len(before)} files rewritten, e.g. {touched[:3]}")
    if not problems:
        problems.append(f"ok: {len(before)} files, every mtime_ns unchanged; stdout all unchanged")
    return scaling, Row(noop_timing, NOOP_TARGET), problems


@dataclass(frozen=True)
class Ratio:
    one: list[float]  # seconds, run i of the one-spec build
    many: list[float]  # seconds, run i of the COUNT build, right after it
    cpu_one: list[float]  # user + system seconds of the same runs, child processes included
    cpu_many: list[float]
    load_before: float
    load_after: float

    @property
    def ratio(self) -> float:
        return statistics.fmean(self.many) / statistics.fmean(self.one)

    @property
    def pairs(self) -> list[float]:
        return [m / o for o, m in zip(self.one, self.many, strict=True)]


def monorepo_ratio(spec: Path, work: Path, runs: int) -> Ratio:
    """One copy of `spec` and COUNT copies, each built by `mlops build DIR --out OUT`
    into a fresh folder, alternately (warm-up pair untimed).

    Each build gets a workspace of its own holding OUT: a spec with CI writes its pipeline file
    into the folder above OUT (the repository's .gitlab/ or .github/), so a fresh OUT alone
    would find the previous run's pipeline file there and refuse it as not ours.
    """
    mlops = mlops_command()
    repo = work / "ratio-specs"
    folders = make_monorepo(spec, repo, COUNT)
    one_repo = work / "ratio-one"
    one_repo.mkdir()
    shutil.move(str(folders[0]), one_repo / folders[0].name)  # a folder holding one spec
    shutil.copytree(one_repo / folders[0].name, folders[0])

    def once(source: Path, label: str) -> tuple[float, float]:
        workspace = work / f"ratio-ws-{label}"
        subprocess.run([PYTHON, "-c", _MOVE_ASIDE, str(workspace)], check=True)
        workspace.mkdir()
        cmd = [*mlops, "build", str(source), "--out", str(workspace / "out")]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise BenchError(f"`{shlex.join(cmd)}` exited {proc.returncode}:\n{proc.stderr!r}")
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return elapsed, cpu

    print(
        f"  timing 1 and {COUNT} copies of {spec.name}, alternating "
        f"({runs} runs each, 1 warmup) ...",
        file=sys.stderr,
        flush=True,
    )
    once(one_repo, "one")
    once(repo, "many")
    built = len(list((work / "ratio-ws-many" / "out").glob("*/mlops-manifest.json")))
    if built != COUNT:
        raise BenchError(f"building {COUNT} specs produced {built} manifests")
    load_before = os.getloadavg()[0]
    one: list[tuple[float, float]] = []
    many: list[tuple[float, float]] = []
    for _ in range(runs):
        one.append(once(one_repo, "one"))
        many.append(once(repo, "many"))
    load_after = os.getloadavg()[0]
    for label in ("one", "many"):
        _delete_moved(work / f"ratio-ws-{label}")
    return Ratio(
        [w for w, _ in one],
        [w for w, _ in many],
        [c for _, c in one],
        [c for _, c in many],
        load_before,
        load_after,
    )


def print_ratio(spec: Path, result: Ratio) -> None:
    def stats(times: list[float]) -> list[str]:
        spread = statistics.stdev(times) if len(times) > 1 else 0.0
        return [
            f"{statistics.fmean(times):.3f} s",
            f"{spread:.3f} s",
            f"{min(times):.3f} s",
            f"{max(times):.3f} s",
        ]

    print(f"\n### Monorepo against one spec: copies of {spec.name}, builds alternating\n")
    print_table(
        ["build", "mean", "stddev", "min", "max", "runs"],
        [
            ["1 spec (fresh --out)", *stats(result.one), str(len(result.one))],
            [f"{COUNT} specs (fresh --out)", *stats(result.many), str(len(result.many))],
        ],
    )
    pairs = result.pairs
    verdict = "pass" if RATIO.met(result.ratio) else "MISSED"
    print(
        f"\nratio {COUNT} specs / 1 spec (of the means): {result.ratio:.2f}x, "
        f"target <= {RATIO.limit:.0f}x: {verdict}"
    )
    print(
        f"per-run ratios: {' '.join(f'{r:.2f}' for r in pairs)} "
        f"(median {statistics.median(pairs):.2f}x, {min(pairs):.2f}-{max(pairs):.2f}x)"
    )
    cpu_one, cpu_many = statistics.fmean(result.cpu_one), statistics.fmean(result.cpu_many)
    print(
        f"CPU time (user + system, both processes of a monorepo build): {cpu_one:.3f} s and "
        f"{cpu_many:.3f} s, ratio {cpu_many / cpu_one:.2f}x (what the wall-clock ratio tends to "
        "when other work keeps both cores busy)"
    )
    print(f"load average (1 min): {result.load_before:.2f} before, {result.load_after:.2f} after")


def main(argv: list[str] | None = None) -> int:
    parser_ = parser(__doc__, quick=f"{QUICK_SPECS} specs, one timed run of everything")
    parser_.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="example spec to copy")
    parser_.add_argument("--runs", type=int, default=15, help="timed runs per cold-start command")
    parser_.add_argument("--monorepo-runs", type=int, default=3, help="timed runs per build size")
    parser_.add_argument(
        "--sizes",
        default="1,10,50,100,200",
        help=f"spec counts to build, each <= {MONOREPO_SPECS} ({MONOREPO_SPECS} is always built)",
    )
    parser_.add_argument("--no-hyperfine", action="store_true", help="use the perf_counter loop")
    parser_.add_argument(
        "--ratio-spec", type=Path, default=RATIO_SPEC, help="spec whose copies the ratio builds"
    )
    parser_.add_argument(
        "--ratio-runs", type=int, default=7, help="timed runs of each build for the ratio"
    )
    parser_.add_argument(
        "--ratio-only", action="store_true", help="run the monorepo/one-spec ratio alone"
    )
    args = parser_.parse_args(argv)
    global COUNT
    COUNT = QUICK_SPECS if args.quick else MONOREPO_SPECS
    if args.quick:
        args.runs, args.monorepo_runs, args.ratio_runs = 2, 1, 1
        args.sizes = f"1,{QUICK_SPECS}"
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()} | {COUNT})
    if sizes[0] < 1 or sizes[-1] > COUNT:
        parser_.error(f"--sizes: each count must be 1..{COUNT}")
    spec = args.spec.resolve()

    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp:
            work = Path(tmp)
            timer = Timer(work, use_hyperfine=not args.no_hyperfine)
            for line in machine_lines(timer):
                print(line)
            print(f"spec: {spec.relative_to(ROOT) if spec.is_relative_to(ROOT) else spec}")
            print(f"mlops: {shlex.join(mlops_command())}")
            ratio_spec = args.ratio_spec.resolve()
            if args.ratio_only:
                result = monorepo_ratio(ratio_spec, work, args.ratio_runs)
                print_ratio(ratio_spec, result)
                print(f"total benchmark time: {time.perf_counter() - started:.0f} s")
                return 0

            print("\n### Cold start (whole process, warm disk and bytecode caches)\n")
            cold = cold_start(timer, spec, work, args.runs)
            floor = cold[0].timing.mean
            print_table(
                ["command", "mean", "stddev", "min", "target", "result", "x python -c pass"],
                [
                    [
                        f"`{r.timing.label}`",
                        ms(r.timing.mean),
                        ms(r.timing.stddev),
                        ms(r.timing.min),
                        f"<= {r.target * 1000:.0f} ms" if r.target else "-",
                        r.status,
                        f"{r.timing.mean / floor:.1f}x",
                    ]
                    for r in cold
                ],
            )

            print(f"\n### Monorepo of generated specs (copies of {spec.name})\n")
            scaling, noop, noop_check = monorepo(timer, spec, work, sizes, args.monorepo_runs)
            rows = [
                [
                    f"build {r.timing.label} (fresh --out)",
                    f"{r.timing.mean:.2f} s",
                    f"{r.timing.stddev:.2f} s",
                    f"{r.timing.min:.2f} s",
                    f"{r.timing.mean * 1000 / n:.1f}",
                    f"<= {r.target:.1f} s" if r.target else "-",
                    r.status,
                ]
                for n, r in scaling
            ]
            rows.append(
                [
                    noop.timing.label,
                    f"{noop.timing.mean:.2f} s",
                    f"{noop.timing.stddev:.2f} s",
                    f"{noop.timing.min:.2f} s",
                    f"{noop.timing.mean * 1000 / max(sizes):.1f}",
                    f"<= {noop.target:.1f} s" if noop.target else "-",
                    noop.status,
                ]
            )
            print_table(
                ["run", "mean", "stddev", "min", "ms/spec", "target", "result"],
                rows,
            )
            if len(scaling) >= 2:
                (n0, r0), (n1, r1) = scaling[0], scaling[-1]
                first, last = r0.timing, r1.timing
                slope = (last.mean - first.mean) / (n1 - n0) * 1000
                print(
                    f"\nmarginal cost {n0}->{n1} specs: {slope:.1f} ms/spec; "
                    f"fixed cost ~ {(first.mean - slope / 1000 * n0) * 1000:.0f} ms per process"
                )
            count, floor = filesystem_floor(work / f"out-{max(sizes)}", work)
            print(
                f"filesystem floor: creating the same {count} files in a plain Python loop "
                f"takes {floor:.2f} s on this disk"
            )
            shm = Path("/dev/shm")
            if shm.is_dir():
                mem_out = Path(tempfile.mkdtemp(dir=shm))
                try:
                    cmd = [*mlops_command(), "build", str(work / "monorepo"), "--out", str(mem_out)]
                    timing = timer.time(
                        f"{max(sizes)} specs into tmpfs",
                        cmd,
                        runs=args.monorepo_runs,
                        warmup=1,
                        fresh_dir=mem_out,
                    )
                    print(
                        f"the same build into tmpfs (/dev/shm, no disk): {timing.mean:.2f} s mean, "
                        f"{timing.min:.2f} s min"
                    )
                finally:
                    shutil.rmtree(mem_out, ignore_errors=True)
            noop_ok = noop_check[0].startswith("ok:")
            print("no-op rebuild writes nothing: " + ("yes" if noop_ok else "NO"))
            for line in noop_check:
                print(f"  {line}")
            fresh = dict(scaling)[COUNT]
            print(f"\n### Targets: {COUNT}-spec monorepo\n")
            print_table(
                [
                    "figure",
                    "mean",
                    "min",
                    "target",
                    "result",
                    "before the runtime move",
                    "x faster",
                ],
                [
                    [
                        label,
                        f"{r.timing.mean:.2f} s",
                        f"{r.timing.min:.2f} s",
                        f"<= {r.target:.1f} s" if r.target else "-",
                        r.status if key == "fresh" or noop_ok else "MISSED (wrote files)",
                        f"{BEFORE_RUNTIME[key]:.2f} s",
                        f"{BEFORE_RUNTIME[key] / r.timing.mean:.1f}x",
                    ]
                    for label, key, r in (
                        (f"fresh build, {COUNT} specs", "fresh", fresh),
                        (f"no-op rebuild, {COUNT} specs", "noop", noop),
                    )
                ],
            )

            result = monorepo_ratio(ratio_spec, work, args.ratio_runs)
            print_ratio(ratio_spec, result)

            every = [*cold, *(r for _, r in scaling), noop]
            missed = [r.timing.label for r in every if r.status == "MISSED"]
            if not RATIO.met(result.ratio):
                missed.append(f"{COUNT} specs / 1 spec: {result.ratio:.2f}x")
            if not noop_ok:
                missed.append("no-op rebuild wrote files")
            print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            print(f"total benchmark time: {time.perf_counter() - started:.0f} s")
            print("MISSED: " + "; ".join(missed) if missed else "all targets met")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
