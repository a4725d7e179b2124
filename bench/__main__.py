"""``python -m bench [--quick] [--only B1,B3]``: run the benchmarks of issue 9, print a table
as they go, and write ``bench/results/<id>.json``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from .common import PROFILE, QUICK, RESULTS_DIR, Result

RESULTS = RESULTS_DIR
# id → module; run in this order (cheap and most important first).
BENCHMARKS = {
    "B1": "bench.b1_ingest",
    "B2": "bench.b2_wire",
    "B6": "bench.b6_latency",
    "B3": "bench.b34_weaklink",
    "B5": "bench.b5_scale",
    "B7": "bench.b7_growth",
}
ALIASES = {"B4": "B3"}  # B3 and B4 share one run (the reset phase is B4)


def machine() -> dict[str, object]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    import os

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "mem_bytes": mem,
        "python": platform.python_version(),
    }


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def progress_for(bid: str) -> Callable[[str], None]:
    return lambda line: log(f"{bid}: {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds each (smoke check)")
    parser.add_argument("--only", default="", help="comma-separated ids, e.g. B1,B3")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for <id>.json")
    parser.add_argument("--profile", action="store_true", help="py-spy the hub in B1 (raw stacks)")
    args = parser.parse_args(argv)
    QUICK[0] = args.quick
    PROFILE[0] = args.profile
    wanted = [ALIASES.get(x.strip().upper(), x.strip().upper()) for x in args.only.split(",")]
    ids = [b for b in BENCHMARKS if not args.only or b in wanted]
    unknown = [w for w in wanted if args.only and w not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(BENCHMARKS)} and B4")
    # The fault proxy writes to sockets its resets just cut: asyncio warns on each; noise here.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    args.out.mkdir(parents=True, exist_ok=True)
    info = machine()
    log(f"machine: {info}; quick={args.quick}; running {', '.join(ids)}")
    results: list[Result] = []
    failed = 0
    for bid in ids:
        module = importlib.import_module(BENCHMARKS[bid])
        run: Callable[[Path, Callable[[str], None]], Coroutine[Any, Any, Result]] = module.run
        log(f"── {bid} ──")
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"tb-bench-{bid}-") as tmp:
            try:
                result = asyncio.run(run(Path(tmp), progress_for(bid)))
            except Exception as exc:  # report and go on with the next benchmark
                traceback.print_exc()
                result = Result(bid, "failed", notes=[f"{type(exc).__name__}: {exc}"])
                failed += 1
        result.seconds = time.perf_counter() - started
        payload = {**result.to_json(), "machine": info, "finished": time.time()}
        path = args.out / f"{bid}.json"
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", "utf-8")
        results.append(result)
        log(f"{bid} done in {result.seconds:.0f}s → {path}")
    print()
    print(f"{'id':<4} {'figure':<34} {'value':>10}  {'target':<40} met")
    for r in results:
        rows = list(r.figures.items()) or [("(no figure)", float("nan"))]
        for i, (name, value) in enumerate(rows):
            met = ("yes" if r.met else "no" if r.met is not None else "-") if i == 0 else ""
            target = r.target if i == 0 else ""
            print(f"{r.id if i == 0 else '':<4} {name:<34} {value:>10.4g}  {target:<40} {met}")
        for note in r.notes:
            print(f"     note: {note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
