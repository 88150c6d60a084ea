"""A run alone against the same run beside one busy process, with lifelong's default thread count.

Protocol (issue 14): `lifelong run --method finetune --scenario split-mnist --setting class --epochs 1 --quiet`
with the default threads (1 unless $OMP_NUM_THREADS says otherwise; the variable is removed here), timed alone
and beside a busy CPU-bound process (a Python loop), alternating, best of `--repeats`. Also with `--threads N`
for N = the number of cores, to show what the default avoids. Target: beside a busy process at most 2x slower.

    .venv/bin/python benchmarks/shared_machine.py [--repeats 2]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, data_dir, machine, save

BUSY = "while True: pass"


def timed_run(extra: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["LIFELONG_DATA"] = str(data_dir())
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lifelong", "run", "--method", "finetune", "--scenario", "split-mnist",
                        "--setting", "class", "--epochs", "1", "--quiet", "--no-download", "--out", f"{out}/r",
                        *extra], check=True, capture_output=True, env=env, cwd=ROOT)
        return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = {}
    for label, extra in (("default threads", []), (f"--threads {cores}", ["--threads", str(cores)])):
        alone, beside = [], []
        for _ in range(args.repeats):
            alone.append(timed_run(extra))
            busy = subprocess.Popen([sys.executable, "-c", BUSY])
            try:
                beside.append(timed_run(extra))
            finally:
                busy.kill()
                busy.wait()
        rows[label] = {"alone_s": min(alone), "beside_busy_s": min(beside), "slowdown": min(beside) / min(alone)}
        print(label, rows[label], flush=True)
    default = rows["default threads"]["slowdown"]
    lines = ["# A run beside one busy process", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| threads | alone (s) | beside a busy process (s) | slowdown |", "|---|---|---|---|"]
    lines += [f"| {label} | {r['alone_s']:.1f} | {r['beside_busy_s']:.1f} | {r['slowdown']:.2f}x |"
              for label, r in rows.items()]
    lines += ["", f"Default: {default:.2f}x slower beside a busy process (target at most 2x: "
                  f"{'met' if default <= 2 else 'NOT met'}). {cores} CPUs; times include start-up and data loading."]
    print("\n".join(lines))
    save("shared_machine", {"rows": rows, "machine": machine()}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
