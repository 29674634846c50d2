"""``make gpu-check``: one script that proves every GPU path of the package on a CUDA machine in a
few minutes, and runs the checks that can run on a CPU elsewhere (CI runs that form).

    python benchmarks/gpu_check.py [--out build/gpu_check] [--wheels DIR] [--budget S] [--stages a,b] [--cpu]

1. install: the package without its dependencies (skipped when it imports), and from ``--wheels``
   (or $FGH_WHEELS, or ./wheels) the wheels of the packages that do not import yet, into
   OUT/site (README, "make gpu-check", says how to fetch them with one command);
2. the stages of ``gpu_check_stages.py``, each in its own process with its own time limit, within
   one budget for the whole check (``--budget``, 345 s with CUDA): a stage that fails, crashes or
   runs out of time is reported and the others still run;
3. the report: OUT/report.json (every figure, every check, the device's name), OUT/report.txt
   (a short table, also printed) and OUT/stages.log (each stage's output).

With CUDA: the GPU-only tests with the kernels compiled, GPU results against the CPU's at 12-128
bits, the speed figures against references measured in the same run, a tiny end-to-end run with
``--profile gpu`` and one with torchrun (nccl). Without CUDA (or with ``--cpu``) it says so and
runs the CPU form: the kernels compiled ahead of time for an sm_90 GPU (no launch), the same
comparisons under Triton's interpreter at small sizes, the CPU kernels, a tiny end-to-end run.

Exit status: 1 when a GPU (or interpreted) result differs from the CPU's, a check fails, or a stage
fails or runs out of time (a path not proven); 0 otherwise. A missed speed goal does not fail the
exit status: the table marks it "MISSED".
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# the package's runtime dependencies that a python with torch, torchvision (pillow), triton and numpy
# lacks, then what the tests need: (module to import, distribution, what needs it)
NEEDED = [("numba", "numba", "runtime"), ("llvmlite", "llvmlite", "runtime"), ("simplejpeg", "simplejpeg", "runtime"),
          ("tqdm", "tqdm", "runtime"), ("pytest", "pytest", "tests"), ("iniconfig", "iniconfig", "tests"),
          ("packaging", "packaging", "tests"), ("pluggy", "pluggy", "tests"), ("pygments", "pygments", "tests"),
          ("hypothesis", "hypothesis", "tests"), ("sortedcontainers", "sortedcontainers", "tests")]
# stage: (seconds allowed on a GPU, on the CPU); the order is the order they run in
GPU_STAGES = {"env": 60, "compile": 60, "correctness": 120, "tests": 150, "e2e": 150, "torchrun": 120,
              "retrieval": 120, "solver": 60, "train": 150}
CPU_STAGES = {"env": 60, "compile": 90, "interpreter": 120, "cpu_kernels": 120, "e2e": 240}
CPU_OPTIONAL = {"torchrun": 240}  # two gloo processes: only when named in --stages (tests/test_distributed.py covers them)


def _child_env(site: Path | None, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    paths = [str(REPO)] + ([str(site)] if site else []) + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env.update(PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env.pop("TRITON_INTERPRET", None)
    env.update(extra or {})
    return env


def _run(cmd, env, timeout, log=None, cwd=None):
    """(exit status or None on time-out, seconds): ``cmd`` in its own process group, killed whole
    (loader workers, torchrun's processes) when it runs out of time."""
    start = time.perf_counter()
    with open(log, "ab") if log else open(os.devnull, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd or REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    return code, time.perf_counter() - start


def _missing(env) -> list:
    """The NEEDED modules that do not import in a child python with ``env``."""
    probe = ("import importlib.util, json, sys\n"
             "def found(m):\n"
             "    try:\n        return importlib.util.find_spec(m) is not None\n"
             "    except Exception:\n        return False\n"
             "print(json.dumps([m for m in sys.argv[1:] if not found(m)]))")
    out = subprocess.run([sys.executable, "-c", probe, *[m for m, _, _ in NEEDED]], env=env, capture_output=True,
                         text=True, timeout=60, cwd=tempfile.gettempdir())
    return json.loads(out.stdout) if out.returncode == 0 else [m for m, _, _ in NEEDED]


def wheels_command(dists) -> str:
    """The command that fetches the wheels of ``dists`` for this python, on a machine with a connection."""
    return (f"pip download --no-deps --only-binary=:all: --python-version {sys.version_info.major}.{sys.version_info.minor} "
            "--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 "
            f"--platform manylinux2014_x86_64 -d wheels {' '.join(sorted(dists))}")


def _wheel_name(path: Path) -> str:
    return re.sub(r"[-_.]+", "-", path.name.split("-")[0]).lower()


def install(out: Path, wheels: Path | None, deadline: float, tests: bool) -> tuple[dict, Path | None]:
    """The package and the missing wheels (see the module docstring); returns (report, site folder).
    The modules of the tests are needed with ``tests`` (the GPU form) only."""
    rep = {"name": "install", "status": "passed", "figures": [], "checks": [], "limit_s": 0}
    start, log = time.perf_counter(), out / "install.log"
    plain = {k: v for k, v in _child_env(None).items() if k != "PYTHONPATH"}
    probe = [sys.executable, "-c", "import fgh_tutorial"]
    if subprocess.run(probe, env=plain, cwd=tempfile.gettempdir(), capture_output=True).returncode == 0:
        rep["package"] = "already importable: not installed again"
    else:
        code, _ = _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                        "-e", str(REPO)], plain, min(60, deadline - time.time()), log)
        rep["package"] = ("installed without dependencies (pip install --no-deps -e .)" if code == 0 else
                          "pip install --no-deps -e . failed: the stages import it from the repository (PYTHONPATH)")
    site = out / "site"
    missing = _missing(_child_env(site if site.is_dir() else None))
    dists = {d for m, d, _ in NEEDED if m in missing}
    found = sorted(wheels.glob("*.whl")) if wheels and wheels.is_dir() else []
    todo = [w for w in found if _wheel_name(w) in dists]
    if todo:
        code, _ = _run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--target", str(site), *map(str, todo)], plain, min(90, deadline - time.time()), log)
        rep["wheels_installed"] = [w.name for w in todo] if code == 0 else []
        if code != 0:
            rep["checks"].append({"name": "wheels install", "ok": False, "detail": f"pip exited {code} (see stages.log)"})
    needed = {m for m, _, what in NEEDED if tests or what == "runtime"}
    still = [m for m in _missing(_child_env(site if site.is_dir() else None)) if m in needed]
    rep["wheels_folder"] = str(wheels) if wheels else None
    rep["missing_after"] = still
    rep["checks"].append({"name": "modules the checks need import", "ok": not still,
                          "detail": "all import" if not still else f"missing: {', '.join(still)}; fetch their wheels with: "
                          + wheels_command(d for m, d, _ in NEEDED if m in still)})
    rep["status"] = "passed" if all(c["ok"] for c in rep["checks"]) else "failed"
    rep["seconds"] = time.perf_counter() - start
    return rep, site if site.is_dir() else None


def run_stage(name: str, limit: float, out: Path, site, cpu_only: bool) -> dict:
    """One stage in a child process (``--stage NAME``); its report, or the reason it has none."""
    result, log = out / f".{name}.json", out / f".{name}.log"
    result.unlink(missing_ok=True)
    extra = {"TRITON_INTERPRET": "1"} if name == "interpreter" else {}
    if cpu_only:
        extra["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [sys.executable, str(Path(__file__)), "--stage", name, "--out", str(out)] + (["--cpu"] if cpu_only else [])
    code, seconds = _run(cmd, _child_env(site, extra), limit, log)
    text = log.read_text(errors="replace") if log.exists() else ""
    with open(out / "stages.log", "a") as fh:
        fh.write(f"\n===== stage {name} (exit {code}, {seconds:.1f} s of {limit:.0f} s) =====\n{text}")
    log.unlink(missing_ok=True)
    if result.exists():
        rep = json.loads(result.read_text())
        result.unlink()
    else:
        rep = {"figures": [], "checks": []}
    rep.update(name=name, seconds=seconds, limit_s=round(limit))
    if code is None:
        rep.update(status="timeout", error=f"ran out of its {limit:.0f} s")
    elif code != 0 or "status" not in rep:
        rep.update(status="error", error=rep.get("error") or f"exit status {code}: " + " | ".join(text.strip().splitlines()[-3:])[-400:])
    elif not all(c["ok"] for c in rep["checks"]):
        rep["status"] = "failed"
    return rep


def _fmt(x) -> str:
    if isinstance(x, bool) or x is None:
        return "-" if x is None else str(x)
    if isinstance(x, float):
        return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def table(report: dict) -> str:
    lines = [f"gpu-check on {report['device']} ({report['mode']}), {report['seconds']:.0f} s"]
    if not report["cuda"]:
        lines.append(report["note"])
    lines.append(f"{'stage':<12} {'status':<8} {'time':>6}  what")
    for st in report["stages"]:
        lines.append(f"{st['name']:<12} {st['status']:<8} {st.get('seconds', 0):5.0f}s  "
                     + (st.get("error") or f"{len(st['checks'])} checks, {len(st['figures'])} figures"))
    lines.append("")
    lines.append(f"{'figure (reference)':<60} {'value':>10} {'unit':<12} {'reference':>10} {'ratio':>6}  {'goal':<9} status")
    for st in report["stages"]:
        for f in st["figures"]:
            met = {True: "met", False: "MISSED", None: ""}[f.get("met")]
            ratio = "" if f.get("ratio") is None else f"{f['ratio']:.2f}x"
            lines.append(f"{f['name'][:60]:<60} {_fmt(f['value']):>10} {f.get('unit', ''):<12} {_fmt(f.get('reference')):>10}"
                         f" {ratio:>6}  {f.get('goal') or '':<9} {met}")
    bad = [f"{st['name']}: {c['name']} ({c.get('detail', '')})" for st in report["stages"] for c in st["checks"] if not c["ok"]]
    lines.append("")
    lines.append(f"checks: {report['checks_passed']} passed, {len(bad)} failed" + "".join(f"\n  FAILED {b}" for b in bad))
    lines.append(f"speed goals missed: {', '.join(report['goals_missed']) or 'none'}")
    lines.append(f"result: {'PASS' if report['exit_code'] == 0 else 'FAIL'} (exit {report['exit_code']}; missed speed goals "
                 "do not fail it, differing results and failed stages do)")
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "build" / "gpu_check"), help="report folder (default build/gpu_check)")
    p.add_argument("--wheels", help="folder of wheels for the modules missing here (default $FGH_WHEELS, or ./wheels)")
    p.add_argument("--budget", type=float, help="seconds for the whole check, install included (default 345 with CUDA, "
                   "300 without): the stages share what is left")
    p.add_argument("--stages", help="run only these stages, comma-separated (default: all of the form)")
    p.add_argument("--cpu", action="store_true", help="the CPU form even where CUDA is available")
    p.add_argument("--stage", help=argparse.SUPPRESS)  # a child process: run this one stage
    p.add_argument("--ddp-driver", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)  # torchrun's process
    a = p.parse_args(argv)
    sys.path.insert(0, str(HERE))
    if a.ddp_driver is not None:
        from gpu_check_stages import ddp_driver

        return ddp_driver(a.ddp_driver)
    out = Path(a.out)
    if a.stage:
        from gpu_check_stages import run_one

        return run_one(a.stage, out, a.cpu)
    start, out = time.time(), out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "stages.log").write_text("")
    env = run_stage("env", 60, out, None, a.cpu)
    cuda = bool(env.get("cuda")) and not a.cpu
    wheels = Path(a.wheels or os.environ.get("FGH_WHEELS") or REPO / "wheels")
    budget = a.budget or (345 if cuda else 300)
    deadline = start + budget
    inst, site = install(out, wheels, deadline, cuda)
    if (out / "install.log").exists():
        with open(out / "stages.log", "a") as fh:
            fh.write("===== install =====\n" + (out / "install.log").read_text(errors="replace"))
        (out / "install.log").unlink()
    stages = GPU_STAGES if cuda else {**CPU_STAGES, **CPU_OPTIONAL}
    chosen = a.stages.split(",") if a.stages else list(GPU_STAGES if cuda else CPU_STAGES)
    unknown = [s for s in chosen if s not in stages]
    if unknown:
        p.error(f"--stages: {', '.join(unknown)} not stages of the {'GPU' if cuda else 'CPU'} form ({', '.join(stages)})")
    reports = [env, inst]
    for name in chosen:
        if name == "env":
            continue
        left = deadline - time.time()
        if left < 5:
            reports.append({"name": name, "status": "not run", "error": f"the {budget:.0f} s budget was spent",
                            "figures": [], "checks": [], "seconds": 0})
            continue
        reports.append(run_stage(name, min(stages[name], left), out, site, a.cpu))
        print(f"  {name}: {reports[-1]['status']} ({reports[-1]['seconds']:.0f} s)", flush=True)
    checks = [c for r in reports for c in r["checks"]]
    failed = [r["name"] for r in reports if r["status"] != "passed"]
    report = {"device": env.get("device", "unknown"), "cuda": cuda, "mode": "GPU form" if cuda else "CPU form",
              "note": "" if cuda else ("no CUDA device: the CPU form ran (kernels compiled ahead of time but not launched, "
                                       "the same comparisons under Triton's interpreter, the CPU kernels, a tiny run); "
                                       "no GPU figure was measured"),
              "environment": env.get("environment", {}), "install": {k: v for k, v in inst.items() if k not in ("figures",)},
              "stages": reports, "checks_passed": sum(c["ok"] for c in checks), "checks_failed": sum(not c["ok"] for c in checks),
              "failed_stages": failed, "goals_missed": [f["name"] for r in reports for f in r["figures"] if f.get("met") is False],
              "seconds": time.time() - start, "budget_s": budget}
    report["exit_code"] = 0 if not failed and report["checks_failed"] == 0 else 1
    text = table(report)
    _write(out / "report.json", json.dumps(report, indent=1))
    _write(out / "report.txt", text + "\n")
    print(text)
    print(f"report: {out / 'report.json'}, {out / 'report.txt'}; each stage's output: {out / 'stages.log'}")
    return report["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
