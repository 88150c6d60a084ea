"""Data-parallel scaling of one run: `torchrun --nproc_per_node K -m lifelong run` for K = 1, 2, ... processes.

Protocol: `lifelong run --method finetune --scenario split-cifar100 --setting class --backbone resnet32` (the
scenario's training recipe: SGD 0.1, momentum 0.9, weight decay 5e-4, cosine, crop + flip) with the same global
batch (`--batch-size`, default 128) for every K, each process taking its share of every batch; `--epochs`
(default 1) per task, `--n-tasks` (default 10: 5,000 training images per task), the first `--tasks` of them timed
(default: all on CUDA, 2 on CPU; the run is stopped once results.json records them). Timed: the training time
per task that the run itself records in results.json (`train_time_s`: the task's epochs, the gradient messages,
the batch-norm averaging and the end-of-task check that the processes hold the same model; evaluation and start-up
left out); samples/s = epochs x the timed tasks' training images / their training time. Start-up (torchrun, the
imports, reading and checking the archive, joining the processes) is reported apart: the time from launch to the
first results.json, less the first task's training and evaluation. One torch thread per process
(OMP_NUM_THREADS=1); on CUDA each process drives the GPU of its local rank (NCCL), on CPU gloo on the cores.

    .venv/bin/python benchmarks/ddp_scaling.py --data-dir DATA     # DATA/cifar100/cifar-100-python.tar.gz
    .venv/bin/python benchmarks/ddp_scaling.py --synthetic         # no CIFAR-100 here: random pixels, same format

`--synthetic` writes an archive in the official format (50,000 training and 10,000 test 32x32x3 uint8 images, 500
and 100 per fine label, pickles laid out as the official ones) with seeded random pixels into a temporary folder:
the very same code reads it, and throughput does not depend on pixel values. The library checks the official
archive's MD5, which a synthetic archive cannot have: the runs then go through this script as a thin launcher
(`--cli-with-md5 HEX run ...`: `lifelong.cli.main` with the expected MD5 set to the synthetic archive's, as the
tests do with monkeypatch); with `--data-dir` torchrun runs `-m lifelong` itself, checksum and all.
"""

import argparse
import io
import json
import os
import pickle
import platform
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import RESULTS, ROOT, save

N_TRAIN, N_TEST, N_FINE, N_COARSE = 50_000, 10_000, 100, 20
SCENARIO = ["--method", "finetune", "--scenario", "split-cifar100", "--setting", "class", "--backbone", "resnet32"]


def _official_pickle(obj) -> bytes:
    """Protocol 2, numpy arrays named as numpy 1.x names them (the official pickles predate numpy 2)."""
    return pickle.dumps(obj, protocol=2).replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_synthetic_cifar100(path: Path, seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_TEST) -> Path:
    """`cifar-100-python.tar.gz` in the official layout (a folder cifar-100-python/ holding the pickles `meta`,
    `train`, `test`; each batch a dict of uint8 `data` (N, 3072), `fine_labels`, `coarse_labels`, `filenames`,
    `batch_label`) with seeded random pixels and shuffled labels, each fine label equally often."""
    rng = np.random.default_rng(seed)
    coarse_of = rng.permutation(np.arange(N_FINE) % N_COARSE)  # 5 fine labels per coarse one, as the official
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:  # random pixels hardly compress: the fastest level
        folder = tarfile.TarInfo("cifar-100-python")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        meta = {"fine_label_names": [f"synthetic_{k:02d}" for k in range(N_FINE)],
                "coarse_label_names": [f"synthetic_group_{k:02d}" for k in range(N_COARSE)]}
        members = [("meta", meta)]
        for member, n in (("train", n_train), ("test", n_test)):
            fine = rng.permutation(np.arange(n) % N_FINE)
            members.append((member, {"filenames": [f"synthetic_{i:05d}.png" for i in range(n)],
                                     "batch_label": f"{member}ing batch 1 of 1 (synthetic pixels)",
                                     "fine_labels": fine.tolist(), "coarse_labels": coarse_of[fine].tolist(),
                                     "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}))
        for name, obj in members:
            raw = _official_pickle(obj)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return path


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def torchrun(k: int, lifelong_argv: list[str], md5: str | None) -> list[str]:
    """The command line: torchrun running `-m lifelong` (or, on a synthetic archive, this file as the launcher)."""
    launcher = ["-m", "lifelong"] if md5 is None else [str(Path(__file__).resolve()), "--cli-with-md5", md5]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(k),
            *launcher, *lifelong_argv]


def stop(process: subprocess.Popen) -> None:
    """End torchrun and its workers (their own session: this process group only)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_k(k: int, args, data_dir: Path, md5: str | None, work: Path, per_class: np.ndarray) -> dict:
    out = work / f"k{k}"
    argv = ["run", *SCENARIO, "--n-tasks", str(args.n_tasks), "--epochs", str(args.epochs), "--batch-size",
            str(args.batch_size), "--device", args.device, "--data-dir", str(data_dir), "--no-download", "--quiet",
            "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    log_path = work / f"k{k}.log"
    results_path = out / "results.json"
    seen = {}  # tasks done -> seconds from launch until results.json first showed them
    loads = []  # the 1-minute load average while it runs (this run's own K processes count in it)
    results = None
    with open(log_path, "w") as log:
        started = time.perf_counter()
        process = subprocess.Popen(torchrun(k, argv, md5), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                   start_new_session=True)
        try:
            while True:
                exited = process.poll() is not None
                if results_path.exists():
                    try:
                        results = json.loads(results_path.read_text())  # (written atomically)
                    except (OSError, json.JSONDecodeError):
                        pass
                    if results is not None:
                        seen.setdefault(len(results["train_time_s"]), time.perf_counter() - started)
                if results is not None and len(results["train_time_s"]) >= args.tasks:
                    break
                loads.append(os.getloadavg()[0])
                if exited:
                    tail = log_path.read_text()[-3000:]
                    sys.exit(f"torchrun with {k} process(es) ended (code {process.returncode}) before {args.tasks} "
                             f"task(s) were done:\n{tail}")
                time.sleep(0.2)
        finally:
            stop(process)
    if results["world_size"] != k:
        sys.exit(f"results.json records world_size {results['world_size']}, not {k}")
    tasks = results["task_classes"][:args.tasks]
    images = [int(per_class[classes].sum()) for classes in tasks]
    train_s = results["train_time_s"][:args.tasks]
    row = {"processes": k, "per_process_batch": args.batch_size / k, "timed_tasks": len(tasks),
           "training_images_per_task": images, "train_time_s": train_s,
           "eval_time_s": results["eval_time_s"][:args.tasks], "threads": results["threads"],
           "samples_per_s": args.epochs * sum(images) / sum(train_s),
           "startup_s": seen[min(seen)] - sum(results["train_time_s"][:min(seen)])
           - sum(results["eval_time_s"][:min(seen)]),
           "accuracy_first_task": results["accuracy_matrix"][0][0],
           "load_1min_during": {"mean": float(np.mean(loads[len(loads) // 2:])), "max": max(loads)}}
    if len(tasks) > 1:  # the first task also pays for warming up (allocator, cuDNN's choices)
        row["samples_per_s_after_first_task"] = args.epochs * sum(images[1:]) / sum(train_s[1:])
    print(f"K = {k}: {row['samples_per_s']:,.1f} samples/s over {len(tasks)} task(s) "
          f"({sum(train_s):.1f} s of training), start-up {row['startup_s']:.1f} s", flush=True)
    return row


def device_name(device: str, cores: int) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)} (one GPU per process, NCCL)"
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}), {cores} cores, 1 torch thread per process (gloo)"


def plot(rows: list[dict], title: str, path: Path) -> bool:
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [r["processes"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(ks, ks, "--", color="gray", label="ideal (speed-up = K)")
    ax.plot(ks, [r["speedup"] for r in rows], "o-", label="measured")
    ax.set_xticks(ks)
    ax.set_xlabel("processes K")
    ax.set_ylabel("speed-up over K = 1 (training samples/s)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main():
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", type=Path, help="lifelong's data folder: DIR/cifar100/cifar-100-python.tar.gz")
    source.add_argument("--synthetic", action="store_true",
                        help="a synthetic archive in the official format (random pixels) in a temporary folder")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--max-processes", type=int, help="K up to this (default: the GPUs visible; 2 on CPU)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per task (default 1)")
    parser.add_argument("--n-tasks", type=int, default=10, choices=[5, 10], help="the scenario's tasks (default 10)")
    parser.add_argument("--tasks", type=int, help="tasks timed, from the first (default: all on CUDA, 2 on CPU)")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch, the same for every K")
    parser.add_argument("--seed", type=int, default=0, help="the synthetic archive's seed")
    parser.add_argument("--name", default="ddp_scaling", help="result files benchmarks/results/NAME.md, .json, .png")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no GPU visible")
    cores = os.cpu_count() or 1
    if args.max_processes is None:
        args.max_processes = torch.cuda.device_count() if args.device == "cuda" else 2
    if args.device == "cuda" and args.max_processes > torch.cuda.device_count():
        sys.exit(f"--max-processes {args.max_processes}: only {torch.cuda.device_count()} GPU(s) visible")
    if args.tasks is None:
        args.tasks = args.n_tasks if args.device == "cuda" else 2
    args.tasks = min(args.tasks, args.n_tasks)
    from lifelong.data import md5sum, read_cifar100_archive

    before = load()
    print(f"load before: {before}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ddp_scaling_") as work:
        work = Path(work)
        if args.synthetic:
            data_dir = work / "data"
            print("SYNTHETIC PIXELS: writing a CIFAR-100 archive in the official format with random pixels "
                  f"(seed {args.seed}); throughput does not depend on pixel values", flush=True)
            started = time.perf_counter()
            archive = write_synthetic_cifar100(data_dir / "cifar100" / "cifar-100-python.tar.gz", args.seed)
            written_s = time.perf_counter() - started
            md5 = md5sum(archive)
        else:
            data_dir, written_s, md5 = args.data_dir.resolve(), None, None
            archive = data_dir / "cifar100" / "cifar-100-python.tar.gz"
        dataset = read_cifar100_archive(archive)  # the library's reader: the images each task trains on
        per_class = np.bincount(dataset.y_train.numpy(), minlength=dataset.n_classes)
        del dataset
        rows = [run_k(k, args, data_dir, md5, work, per_class) for k in range(1, args.max_processes + 1)]
    after = load()
    print(f"load after: {after}", flush=True)
    base = rows[0]["samples_per_s"]
    for row in rows:
        row["speedup"] = row["samples_per_s"] / base
        row["efficiency"] = row["speedup"] / row["processes"]
    device = device_name(args.device, cores)
    data = ("SYNTHETIC pixels: an archive in the official format (50,000 / 10,000 images 32x32x3 uint8, 100 fine "
            f"labels, 500 / 100 each), random pixels (seed {args.seed}); throughput does not depend on pixel values. "
            "The library's MD5 check was given this archive's checksum in place of the official one "
            "(this script as the launcher)" if args.synthetic else f"the official CIFAR-100 archive in {data_dir}")
    command = " ".join(["benchmarks/ddp_scaling.py"] + sys.argv[1:])
    example = " ".join(["torchrun --standalone --nproc_per_node K", "-m lifelong" if not args.synthetic
                        else "benchmarks/ddp_scaling.py --cli-with-md5 MD5", "run", *SCENARIO, "--n-tasks",
                        str(args.n_tasks), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                        "--device", args.device, "--data-dir DATA --no-download --quiet --out OUT"])
    images = rows[0]["training_images_per_task"]
    after_first = len(images) > 1
    lines = [f"# Data-parallel scaling: split-CIFAR-100, ResNet-32, K = 1 to {args.max_processes} processes", "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             f"Command: `{command}`; each run: `{example}` (`OMP_NUM_THREADS=1`).", "",
             f"Device: {device}. Data: {data}.", "",
             f"Timed: {len(images)} task(s) of {args.n_tasks}, {args.epochs} epoch(s) each, "
             f"{sum(images):,} training images per epoch in all; global batch {args.batch_size}.", ""]
    header = "| K | batch per process | training samples/s | speed-up | efficiency (speed-up / K) |"
    if after_first:
        header += " samples/s, tasks 2+ |"
    lines += [header + " training (s) | evaluation (s) | start-up (s) |",
              "|---" * (header.count("|") + 2) + "|"]
    for r in rows:
        line = (f"| {r['processes']} | {r['per_process_batch']:g} | {r['samples_per_s']:,.1f} | {r['speedup']:.2f} | "
                f"{r['efficiency']:.2f} |")
        if after_first:
            line += f" {r['samples_per_s_after_first_task']:,.1f} |"
        lines.append(line + f" {sum(r['train_time_s']):.1f} | {sum(r['eval_time_s']):.1f} | {r['startup_s']:.1f} |")
    during = ", ".join(f"K = {r['processes']}: {r['load_1min_during']['mean']:.2f} "
                       f"(max {r['load_1min_during']['max']:.2f})" for r in rows)
    lines += ["", f"Load (`uptime`) before: `{before}`; after: `{after}`. The 1-minute load average during the runs "
                  f"(mean over each run's second half, where the average has caught up; the run's own K processes "
                  f"count in it, so K alone means nothing else ran): {during}."]
    if args.synthetic:
        lines += [f"Writing the synthetic archive took {written_s:.1f} s (not in any figure above)."]
    if args.device == "cpu":
        lines += ["", f"On CPU this measures the gloo path on {cores} cores, one process per core: the gradient "
                      "messages and the per-process overheads against splitting the batch's arithmetic. It says "
                      "nothing about GPU scaling (NCCL, one GPU per process); run this script on a machine with "
                      "GPUs for that."]
    title = f"split-CIFAR-100, ResNet-32, batch {args.batch_size}\n{device}"
    if plot(rows, title, RESULTS / f"{args.name}.png"):
        lines += ["", f"Plot: `{args.name}.png` (speed-up against K, with the ideal line)."]
    markdown = "\n".join(lines) + "\n"
    save(args.name, {"device": device, "device_kind": args.device, "synthetic": args.synthetic,
                     "data": data, "command": command, "run_command": example, "epochs": args.epochs,
                     "n_tasks": args.n_tasks, "timed_tasks": args.tasks, "batch_size": args.batch_size,
                     "cores": cores, "torch": torch.__version__, "load_before": before, "load_after": after,
                     "synthetic_archive_write_s": written_s, "rows": rows}, markdown)
    print(markdown)


def cli_with_md5(md5: str, argv: list[str]) -> int:
    """`lifelong` itself, expecting the CIFAR-100 archive's MD5 to be `md5` (a synthetic archive's)."""
    from lifelong.cli import main as lifelong_main
    from lifelong.data import cifar

    cifar.MD5 = md5
    return lifelong_main(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--cli-with-md5"]:
        sys.exit(cli_with_md5(sys.argv[2], sys.argv[3:]))
    main()
