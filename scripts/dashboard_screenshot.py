"""Screenshot the monitor dashboard of the test suite's example report for the docs.

    python scripts/dashboard_screenshot.py [--out docs/images/monitor-dashboard.png]

Renders `rich_example()` from tests/runtime/test_runtime_monitor_dashboard.py, draws it with
headless Chromium at 1280 px wide, trims the empty page background below the content and writes
a palette PNG (the page's flat colours survive 256 colours).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from PIL import Image, ImageChops

from mlops_runtime.monitor.dashboard import render_dashboard

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "tests" / "runtime" / "test_runtime_monitor_dashboard.py"
DEFAULT_OUT = REPO / "docs" / "images" / "monitor-dashboard.png"
BACKGROUND = (0xF1, 0xF5, 0xF9)
WIDTH, HEIGHT = 1280, 6000


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboard_example", EXAMPLE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {EXAMPLE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trim(image: Image.Image, margin: int = 16) -> Image.Image:
    """Cut the page background below the last drawn row."""
    rgb = image.convert("RGB")
    box = ImageChops.difference(rgb, Image.new("RGB", rgb.size, BACKGROUND)).getbbox()
    bottom = rgb.height if box is None else min(rgb.height, box[3] + margin)
    return rgb.crop((0, 0, rgb.width, bottom))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    example = load_example()
    report, history = example.rich_example()
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "dashboard.html"
        page.write_text(render_dashboard(report, history), encoding="utf-8")
        shot = Path(tmp) / "shot.png"
        result = example.run_chromium(
            Path(tmp) / "profile",
            f"--screenshot={shot}",
            f"--window-size={WIDTH},{HEIGHT}",
            page.as_uri(),
        )
        if not shot.is_file():
            sys.stderr.write(result.stderr)
            return 1
        with Image.open(shot) as image:
            trimmed = trim(image)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    trimmed.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"{args.out}: {trimmed.width}x{trimmed.height}, {args.out.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
