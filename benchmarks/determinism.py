"""Determinism: the whole quickstart pipeline twice with one seed, compared file by file.

Runs ``robofail quickstart`` twice with the same ``--out`` (moving the first run aside), or
compares two finished run folders given with ``--runs A B`` (made with the same ``--out``: outputs
record their own paths), and compares every output:

- files compared byte for byte: HDF5 datasets and shards, shard manifests, safetensors weights,
  JSON configs, calibration artifacts, ONNX files, metrics and closed-loop JSON, PNG plots;
- HDF5 files that differ in bytes are also compared by content (every dataset's values and dtype,
  every attribute), so a difference in file layout is told apart from a difference in data;
- JSON files that differ in bytes are also compared with their wall-clock ``seconds`` fields
  dropped (training logs, discover's report);
- excluded, because they record wall-clock time: ``run.json`` (stage seconds; its stage commands
  are compared) and ``report.html`` (which shows those seconds).

Prints one line per differing file and a summary, and writes
``benchmarks/results/determinism.json``::

    python benchmarks/determinism.py [--task pick_place] [--work runs/determinism]
    python benchmarks/determinism.py --runs runs/quickstart runs/quickstart_again
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from robofail.monitor.artifact import file_sha256

TIMED_FILES = {"run.json", "report.html"}
RESULTS = Path(__file__).resolve().parent / "results" / "determinism.json"


def hdf5_content_equal(a: Path, b: Path) -> tuple[bool, str]:
    """Compare two HDF5 files by content: same names, dtypes, values and attributes."""
    import h5py

    def items(path: Path) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with h5py.File(path, "r") as f:

            def visit(name: str, obj: Any) -> None:
                attrs = {k: np.asarray(v).tobytes() for k, v in sorted(obj.attrs.items())}
                if isinstance(obj, h5py.Dataset):
                    found[name] = (str(obj.dtype), np.asarray(obj[()]).tobytes(), attrs)
                else:
                    found[name] = ("group", b"", attrs)

            visit("/", f)
            f.visititems(visit)
        return found

    left, right = items(a), items(b)
    if left.keys() != right.keys():
        return False, f"different objects: {sorted(left.keys() ^ right.keys())[:5]}"
    differing = [name for name in left if left[name] != right[name]]
    if differing:
        return False, f"{len(differing)} objects differ, first {differing[0]}"
    return True, "same content, different bytes"


def without_seconds(value: Any) -> Any:
    """A JSON value with every ``seconds`` field (wall-clock time) removed."""
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [without_seconds(v) for v in value]
    return value


def compare_runs(a: Path, b: Path) -> dict[str, Any]:
    """Compare every file under two run folders; returns counts and the differing files."""
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    result: dict[str, Any] = {
        "only_in_first": sorted(map(str, files_a - files_b)),
        "only_in_second": sorted(map(str, files_b - files_a)),
        "identical": 0,
        "same_content": [],
        "different": [],
        "timed_excluded": [],
    }
    for rel in sorted(files_a & files_b):
        pa, pb = a / rel, b / rel
        if rel.name in TIMED_FILES:
            result["timed_excluded"].append(str(rel))
            if rel.name == "run.json":
                stages_a = json.loads(pa.read_text())["stages"]
                stages_b = json.loads(pb.read_text())["stages"]
                argv_a = {k: v["argv"] for k, v in stages_a.items()}
                argv_b = {k: v["argv"] for k, v in stages_b.items()}
                if argv_a != argv_b:  # both runs were made with the same --out
                    result["different"].append({"file": str(rel), "why": "stage commands differ"})
            continue
        if file_sha256(pa) == file_sha256(pb):
            result["identical"] += 1
            continue
        if pa.suffix in {".h5", ".hdf5"}:
            equal, why = hdf5_content_equal(pa, pb)
            if equal:
                result["same_content"].append(str(rel))
                continue
            result["different"].append({"file": str(rel), "why": why})
        elif pa.suffix == ".json":
            left = without_seconds(json.loads(pa.read_text()))
            if left == without_seconds(json.loads(pb.read_text())):
                result["same_content"].append(str(rel))
            else:
                result["different"].append({"file": str(rel), "why": "values differ"})
        else:
            result["different"].append({"file": str(rel), "why": "bytes differ"})
    return result


def run_quickstart(task: str, out: Path, seed: int) -> float:
    start = time.perf_counter()
    command = ["quickstart", "--task", task, "--out", str(out), "--seed", str(seed)]
    subprocess.run([sys.executable, "-m", "robofail.cli", *command], check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("runs/determinism"))
    parser.add_argument("--runs", type=Path, nargs=2, metavar=("A", "B"))
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    seconds: list[float] = []
    if args.runs:
        a, b = args.runs
    else:
        a, b, out = args.work / "first", args.work / "second", args.work / "run"
        for folder in (a, b, out):
            if folder.exists():
                parser.error(f"{folder} exists; remove it or give --work another folder")
        for folder in (a, b):  # same --out both times: outputs record their own paths
            seconds.append(run_quickstart(args.task, out, args.seed))
            out.rename(folder)
    result = compare_runs(a, b)
    for entry in result["different"]:
        print(f"DIFFERENT  {entry['file']}: {entry['why']}")
    for name in result["same_content"]:
        print(f"same data  {name} (bytes differ: HDF5 layout or wall-clock seconds)")
    total = result["identical"] + len(result["same_content"]) + len(result["different"])
    print(
        f"{a} vs {b}: {result['identical']} of {total} files byte-identical, "
        f"{len(result['same_content'])} same content, {len(result['different'])} different; "
        f"excluded (wall-clock times): {', '.join(result['timed_excluded'])}"
    )
    record = {
        "command": "python benchmarks/determinism.py "
        + (f"--runs {a} {b}" if args.runs else f"--task {args.task} --seed {args.seed}"),
        "task": args.task,
        "seed": args.seed,
        "runs": [str(a), str(b)],
        "quickstart_seconds": seconds,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        **result,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1) + "\n")
    clean = not (result["different"] or result["only_in_first"] or result["only_in_second"])
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
