"""Speed work must not change a byte: hash every output of the data stages, for the code before and after.

    python benchmarks/check_outputs.py [--ref REV] [--n 20000] [--workers 1,2] [--allow GLOB ...]

Runs dvc.yaml's data stages (each tree's own dvc.yaml and params.yaml) on the same input with the code at git REV
(default HEAD, unpacked with `git archive`) and with the working tree, once per worker count (FTLIB_WORKERS), and
compares the sha256 of every file under build/ and reports/. The input is the sample data (data/: every format,
images, tools, preference pairs, broken lines) plus N synthetic chats from generate.py, so every code path runs.
Exit 0 when every file is byte-identical (or matches an --allow glob, for files a change is meant to add or alter)
and every run of the working tree wrote the same bytes as its first run (new files included), 1 if not.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from stages import bench_params, run_stages

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"


def ref_tree(rev: str) -> Path:
    sha = subprocess.run(["git", "rev-parse", rev], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    tree = OUT / f"ref-{sha[:12]}"
    if not (tree / "dvc.yaml").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def check_input(n: int) -> Path:
    """data/ (the sample data) plus n synthetic chats, in one folder reused by every run."""
    inp = OUT / f"check-input-{n}"
    if not inp.exists():
        tmp = inp.with_name(inp.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        if (ROOT / "data").is_dir():
            shutil.copytree(ROOT / "data", tmp)
        tmp.mkdir(exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(n), str(tmp / "synthetic.jsonl")], check=True)
        tmp.rename(inp)
    return inp


def hashes(work: Path) -> dict[str, str]:
    out = {}
    for top in ("build", "reports"):
        for p in sorted((work / top).rglob("*")):
            if p.is_file():
                out[p.relative_to(work).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_tree(tree: Path, inp: Path, work: Path, workers: int) -> dict[str, str]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(inp, work / "data", copy_function=os.link)
    env = {**os.environ, "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1", "FTLIB_WORKERS": str(workers),
           "PYTHONPATH": str(tree)}
    env.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT / "tests" / "data" / "tiktoken"))
    run_stages(tree, work, env, params=bench_params(tree), ftlib=f"{sys.executable} -m ftlib", verbose=False,
               memory=False)
    return hashes(work)


def compare(name: str, ref: dict[str, str], got: dict[str, str], allow: list[str]) -> int:
    bad = 0
    for path in sorted(set(ref) | set(got)):
        if ref.get(path) == got.get(path):
            continue
        state = "missing" if path not in got else "new" if path not in ref else "differs"
        allowed = any(fnmatch.fnmatch(path, g) for g in allow)
        bad += not allowed
        print(f"  {name}: {path} {state}{' (allowed)' if allowed else ''}")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default="HEAD", help="git revision with the code before the change")
    ap.add_argument("--ref-dir", type=Path, help="a folder holding the code before the change (instead of --ref)")
    ap.add_argument("--n", type=int, default=20000, help="synthetic chats added to the sample data")
    ap.add_argument("--workers", default="1,2", help="worker counts to run the working tree with")
    ap.add_argument("--allow", nargs="*", default=[], help="globs of files a change may alter (e.g. build/*.parquet)")
    args = ap.parse_args()
    inp = check_input(args.n)
    tree = args.ref_dir.resolve() if args.ref_dir else ref_tree(args.ref)
    print(f"reference {args.ref_dir or args.ref} ({tree.name}) on {inp.name} ...", flush=True)
    ref = run_tree(tree, inp, OUT / "check-ref", workers=2)
    print(f"  {len(ref)} files", flush=True)
    bad = 0
    first: dict[str, str] | None = None
    for w in (int(x) for x in args.workers.split(",")):
        for attempt in (1, 2) if w == 1 else (1,):  # twice: runs must agree with each other too
            print(f"working tree, FTLIB_WORKERS={w}, run {attempt} ...", flush=True)
            got = run_tree(ROOT, inp, OUT / f"check-w{w}", workers=w)
            bad += compare(f"workers={w}", ref, got, args.allow)
            if first is None:
                first = got
            else:  # every file, new ones included, the same bytes whatever the run and the worker count
                bad += compare(f"workers={w} vs the first run", first, got, [])
    print("identical" if not bad else f"{bad} difference(s)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
