"""Optuna's own storage, study and trial tests, run on plain RDBStorage and on nmhpo's
BatchedRDBStorage: every test that fails only with nmhpo is a behaviour nmhpo changed.

The tests are those of the installed Optuna version, not part of this repository. Give them as

- a folder holding Optuna's ``tests/`` (argument ``TESTS``, or env ``OPTUNA_TESTS``), e.g. an
  unpacked sdist (``pip download optuna==X --no-binary :all: --no-deps``) or a ``git archive``;
- or ``--git-dir`` of an Optuna clone (e.g. the bare one the ``fetch`` tool makes): the tests
  are extracted at ``--ref`` (default: tag ``v<installed version>``) into a temporary folder.

Each mode runs in a pytest process of its own with benchmarks/_optuna_suite_plugin.py, which
swaps the storage class (``plain``: Optuna's RDBStorage; ``nmhpo``: BatchedRDBStorage with the
same arguments, heartbeat modes included) and keeps only the tests that touch an RDB storage
(``--all`` for every test). ``--label`` names the run (``before``/``after``) and
``--nmhpo-rev`` runs another commit's nmhpo package (``git archive`` of it), so that the
figure before a fix can be reproduced. Results are merged into
benchmarks/results/optuna_storage_suite.json (other labels kept): counts per mode, the tests
failing only with nmhpo, and which of those are deliberate (DELIBERATE below, with reasons).

Run: .venv/bin/python benchmarks/optuna_storage_suite.py /path/to/optuna-src --label after
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULT = RESULTS / "optuna_storage_suite.json"

#: Test folders and files run (relative to the folder holding ``tests/``), and those left out:
#: the journal and gRPC storages hold no RDB code; test_with_server needs a server URL;
#: test_dataframe needs pandas.
TARGETS = ("tests/storages_tests", "tests/study_tests", "tests/trial_tests")
IGNORED = (
    "tests/storages_tests/journal_tests",
    "tests/storages_tests/test_grpc.py",
    "tests/storages_tests/test_with_server.py",
)
NEEDS = {"tests/study_tests/test_dataframe.py": "pandas"}

#: Tests that fail with nmhpo by design: node id (parameters included) -> reason. Kept in step
#: with the module docstring of nmhpo/storage.py.
_FIRST_BEAT = (
    "A running trial gets its first heartbeat in the transaction that creates it (Optuna: "
    "only when the heartbeat thread first beats, and a trial that never beat is never stale). "
    "A worker killed between the two would leave its trial RUNNING forever, and its grid "
    "point taken. The test expects a trial made by ask() that never beat to stay RUNNING "
    "past the grace period; here it is failed as stale (nmhpo runs trials with optimize(), "
    "which beats)."
)
DELIBERATE: dict[str, str] = {
    "tests/storages_tests/test_heartbeat.py::test_fail_stale_trials[None]": _FIRST_BEAT,
    "tests/storages_tests/test_heartbeat.py::test_fail_stale_trials[2]": _FIRST_BEAT,
    "tests/trial_tests/test_trial.py::test_persisted_param": (
        "The batching itself: a running trial's parameters reach the database at "
        "BatchedRDBStorage.flush() (nmhpo's objective calls it once all are suggested, before "
        "training) or when the trial ends, in one commit instead of one per suggest call. "
        "Another process (here: load_study on a new storage) sees them from then on; this "
        "process sees them at once. The test suggests in three ask()ed trials and never "
        "flushes."
    ),
}

#: Deliberate differences that no test of Optuna's shows: kept in the JSON beside DELIBERATE.
DELIBERATE_UNTESTED: list[str] = [
    "A trial another process finished while this one ran it (failed as stale while the worker "
    "was slow to beat) is not finished again: set_trial_state_values returns False where "
    "Optuna raises UpdateFinishedTrialError and stops the worker; the other record and the "
    "re-run it queued stand.",
    "This process's own trials are checked for writes from memory (no query per suggest "
    "call): a write to one another process has just failed as stale is refused at the flush "
    "or at the trial's end, not at the call; other trials' buffers are unaffected.",
    "The stale-trial check runs at most once per heartbeat interval and study while it finds "
    "none (Optuna: before every trial); a trial is stale only after a grace period of silent "
    "intervals, so checking more often finds nothing sooner.",
    "A parameter set twice before a flush keeps its last value (Optuna keeps the first; its "
    "own Trial never sets one twice).",
]


def extract(git_dir: Path, ref: str | None, dest: Path) -> tuple[Path, dict[str, str]]:
    """``tests/`` of Optuna at ``ref`` (default: the installed version's tag) under ``dest``."""
    import optuna

    ref = ref or f"v{optuna.__version__}"
    git = ["git", "--git-dir", str(git_dir)]
    commit = subprocess.run(
        [*git, "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if commit.returncode != 0:
        raise SystemExit(
            f"{git_dir} has no {ref!r} (installed Optuna {optuna.__version__}); pass --ref "
            "with the closest commit, or an unpacked sdist of that version"
        )
    archive = subprocess.run(
        [*git, "archive", ref, "tests/__init__.py", "tests/conftest.py", *TARGETS],
        capture_output=True,
        check=True,
    )
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest, {"git_dir": str(git_dir), "ref": ref, "commit": commit.stdout.strip()}


def nmhpo_at(rev: str, dest: Path) -> Path:
    """The nmhpo package as committed at ``rev``, unpacked under ``dest``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "nmhpo"], capture_output=True, check=True
    )
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run_mode(
    tests_root: Path, mode: str, nmhpo_root: Path, select_all: bool, keyword: str | None
) -> dict[str, Any]:
    """One pytest process: outcomes per test id, counts, wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "outcomes.json"
        env = {
            **os.environ,
            "NMHPO_SUITE_STORAGE": mode,
            "NMHPO_SUITE_SELECT": "all" if select_all else "rdb",
            "NMHPO_SUITE_REPORT": str(report),
            "PYTHONPATH": os.pathsep.join(
                [str(nmhpo_root), str(Path(__file__).resolve().parent)]
                + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
            ),
        }
        cmd = [sys.executable, "-m", "pytest", "-p", "_optuna_suite_plugin"]
        cmd += ["-p", "no:cacheprovider", "-q", "-W", "ignore", "--tb=line"]
        cmd += [t for t in TARGETS if (tests_root / t).exists()]
        for path in IGNORED:
            cmd += ["--ignore", path]
        for path, module in NEEDS.items():
            try:
                __import__(module)
            except ImportError:
                cmd += ["--ignore", path]
        if keyword:
            cmd += ["-k", keyword]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tests_root, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if not report.exists():
            sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
            raise SystemExit(f"pytest ({mode}) wrote no report (exit {proc.returncode})")
        outcomes: dict[str, str] = json.loads(report.read_text())
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    print(f"{mode}: {summary} ({seconds:.0f} s)")
    counts = Counter(outcomes.values())
    return {
        "tests": len(outcomes),
        "counts": dict(sorted(counts.items())),
        "wall_s": round(seconds, 1),
        "not_passing": sorted(
            t for t, o in outcomes.items() if o in ("failed", "error", "xpassed")
        ),
        "outcomes": outcomes,
    }


def compare(run: dict[str, Any], plain: dict[str, Any] | None) -> None:
    nmhpo = run["modes"].get("nmhpo")
    if nmhpo is None or plain is None:
        return
    bad_plain = set(plain["not_passing"])
    bad_nmhpo = set(nmhpo["not_passing"])
    only = sorted(bad_nmhpo - bad_plain)
    run["failing_only_with_nmhpo"] = only
    run["failing_only_with_plain"] = sorted(bad_plain - bad_nmhpo)
    run["failing_in_both"] = sorted(bad_plain & bad_nmhpo)
    run["failing_only_with_nmhpo_undocumented"] = [t for t in only if t not in DELIBERATE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tests", nargs="?", default=os.environ.get("OPTUNA_TESTS"))
    parser.add_argument("--git-dir", type=Path, help="an Optuna git dir to extract tests from")
    parser.add_argument("--ref", help="commit or tag in --git-dir (default v<installed>)")
    parser.add_argument("--label", default="after", help="run name in the JSON (before/after)")
    parser.add_argument("--nmhpo-rev", help="test nmhpo as committed at this revision")
    parser.add_argument("--modes", nargs="+", default=["plain", "nmhpo"])
    parser.add_argument("--all", action="store_true", help="every test, not only RDB ones")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression (for a quick look)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write JSON")
    args = parser.parse_args()

    import optuna

    with tempfile.TemporaryDirectory() as tmp:
        if args.git_dir is not None:
            tests_root, source = extract(args.git_dir, args.ref, Path(tmp) / "optuna")
        elif args.tests:
            tests_root = Path(args.tests).resolve()
            source = {"folder": str(tests_root)}
        else:
            parser.error("give the folder holding Optuna's tests/, OPTUNA_TESTS or --git-dir")
        if not (tests_root / "tests").is_dir():
            parser.error(f"{tests_root} holds no tests/ folder")
        nmhpo_root = ROOT
        if args.nmhpo_rev:
            nmhpo_root = nmhpo_at(args.nmhpo_rev, Path(tmp) / "nmhpo-rev")
        run: dict[str, Any] = {
            "nmhpo": args.nmhpo_rev or "working tree",
            "selection": "all" if args.all else "rdb",
            "keyword": args.keyword,
            "modes": {},
        }
        for mode in args.modes:
            run["modes"][mode] = run_mode(tests_root, mode, nmhpo_root, args.all, args.keyword)

    previous = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    runs = previous.get("runs", {})
    plain = run["modes"].get("plain") or next(
        (r["modes"]["plain"] for r in runs.values() if "plain" in r.get("modes", {})), None
    )
    compare(run, plain)
    for key in ("failing_only_with_nmhpo", "failing_only_with_nmhpo_undocumented"):
        print(f"{key}: {json.dumps(run.get(key), indent=1)}")
    if args.no_write:
        return
    for mode in run["modes"].values():
        mode.pop("outcomes")  # (the counts and the tests not passing are kept)
    runs[args.label] = {"environment": environment(), "tests_source": source, **run}
    payload = {
        **{
            k: v
            for k, v in previous.items()
            if k not in ("runs", "deliberate", "deliberate_untested")
        },
        "optuna_version": optuna.__version__,
        "what": "Optuna's storages/study/trial tests that touch an RDB storage, run with plain "
        "RDBStorage and with nmhpo's BatchedRDBStorage (benchmarks/optuna_storage_suite.py)",
        "runs": runs,
        "deliberate": DELIBERATE,
        "deliberate_untested": DELIBERATE_UNTESTED,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
