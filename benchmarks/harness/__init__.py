"""The benchmarks' shared harness: child processes and environments, servers under test, wrk,
the machine and the quiet-machine wait, tables and targets, the common options.

The scripts run as `python benchmarks/NAME.py`, which puts benchmarks/ on sys.path, so this
package imports as `harness`."""

from .cli import add_output, add_quiet, add_runtime, command_line, parser, workdir, write_json
from .machine import (
    cpu_model,
    load_text,
    memory_gib,
    revision,
    utc_now,
    venv_versions,
    versions,
    wait_quiet,
)
from .proc import (
    PYTHON,
    ROOT,
    BenchError,
    child_env,
    free_port,
    http_get,
    http_post,
    json_line,
    run_checked,
)
from .report import RunFacts, Target, judge, print_table, table, verdict
from .server import Server
from .wrk import LUA, BackgroundWrk, require_wrk, run_wrk, wrk_command, wrk_figures, wrk_summary

__all__ = [
    "LUA",
    "PYTHON",
    "ROOT",
    "BackgroundWrk",
    "BenchError",
    "RunFacts",
    "Server",
    "Target",
    "add_output",
    "add_quiet",
    "add_runtime",
    "child_env",
    "command_line",
    "cpu_model",
    "free_port",
    "http_get",
    "http_post",
    "json_line",
    "judge",
    "load_text",
    "memory_gib",
    "parser",
    "print_table",
    "require_wrk",
    "revision",
    "run_checked",
    "run_wrk",
    "table",
    "utc_now",
    "venv_versions",
    "verdict",
    "versions",
    "wait_quiet",
    "workdir",
    "write_json",
    "wrk_command",
    "wrk_figures",
    "wrk_summary",
]
