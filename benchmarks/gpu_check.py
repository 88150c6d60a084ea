"""GPU check: every method gives the same accuracy on CPU and CUDA, and the engine's speed on a GPU against a bare loop.

Protocol. (1) Agreement: the runs of `make demo` (`lifelong run --memory 200`: every method, class- and
task-incremental, on split-digits, the scenario's training options, seed 0; a method the demo skips is skipped here,
with its reason) on two devices, default cpu and cuda, each run on the first and right after on the second. The
accuracy matrices are compared cell by cell: a run passes when no cell differs by more than `--tolerance` (default
0.03: 3 points, 3 of the about 108 test images of a task). GPU kernels are not bit-identical to CPU ones (other
summation orders and algorithms), so a few images near a decision boundary may change sides; more than that is a
bug. (For scale, on a CPU one torch thread against two, which sums in another order, moved iCaRL by 2 test images
and TOPIC by 1 at the demo's 10 epochs, and none of the 27 other runs compared.) (2) Speed: split-CIFAR-100 (10
tasks of 10 classes), ResNet-32, fine-tuning, class-incremental, one epoch of each timed task at batch 128 with the
scenario's recipe (fused SGD 0.1, momentum 0.9, weight decay 5e-4, cosine, crop + flip), the library's engine
(`run_experiment`, its `train_time_s`: training only, evaluation apart) against a bare PyTorch loop on the same
kernels (the library's ResNet-32 module, the same head arithmetic, fused SGD, the same batches and augmentation, the
same initial weights: in fp32 its losses are the engine's), in fp32 and under `torch.autocast` (bfloat16 where the
GPU has it, else float16 with a GradScaler). The engine has no mixed-precision option (`TrainConfig` and `lifelong
run` have none), so mixed precision is measured for the bare loop only. One untimed round (one task of each loop)
warms up CUDA, cuBLAS and cuDNN; then rounds of (engine, bare fp32, bare mixed) in turn, and each loop's fastest
round is reported. Pixels are synthetic (the official archive format, seeded random pixels,
`ddp_scaling.write_synthetic_cifar100`) unless `--data-dir` holds the real archive: throughput does not depend on
pixel values. The whole check keeps to `--budget-s` (default 450 s: under 8 minutes on one GPU with start-up): the
agreement runs get half of it (the rest if the speed part is skipped), and what does not fit is reported as not run.

    python benchmarks/gpu_check.py                  # on a machine with a CUDA GPU: benchmarks/results/gpu_check.md
    python benchmarks/gpu_check.py --quick          # 2 epochs per split-digits run, 2 CIFAR tasks, 180 s budget
    python benchmarks/gpu_check.py --devices cpu,cpu --quick --synthetic-images 1000 --speed-tasks 1
                                                    # a dry run on a CPU: every code path, nothing about GPUs

Without a CUDA GPU (and a cuda device asked for, the default) it prints one line and exits 0, writing nothing.
Exit code 1: a run disagreed or failed. A run on no CUDA device (a dry run) writes gpu_check_dry_run.md and .json
into `--out`, default a new temporary folder, never benchmarks/results.
"""

import time

START = time.perf_counter()  # the budget counts from here (only the interpreter's own start-up is before it)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import RESULTS  # noqa: E402  (also puts src/ on the path)

NO_GPU_LINE = "gpu_check: no CUDA GPU here; nothing measured (run it on a machine with one)"
DEMO_MEMORY = 200  # `make demo`: lifelong run --memory 200
WRITE_RESERVE_S = 10.0  # kept at the end of the budget for writing the results


def log(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f} s] {message}", flush=True)


def left(deadline: float) -> float:
    return deadline - time.perf_counter()


# ---------------------------------------------------------------------------------------------------- the machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(devices: list[str]) -> dict:
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "gpus": []}
    for device in devices:
        d = torch.device(device)
        if d.type != "cuda":
            continue
        index = d.index if d.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        env["gpus"].append({"device": device, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                            "capability": f"{props.major}.{props.minor}"})
    if env["gpus"]:
        env["cudnn"] = torch.backends.cudnn.version()
        env["bf16_supported"] = torch.cuda.is_bf16_supported()
        env["tf32"] = {"matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                       "float32_matmul_precision": torch.get_float32_matmul_precision(),
                       "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                       "cudnn_benchmark": torch.backends.cudnn.benchmark}
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            env["driver"] = smi.stdout.strip().splitlines()[0] if smi.returncode == 0 and smi.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            env["driver"] = None
    return env


# ---------------------------------------------------------------------------------------------------- agreement
def compare(a, b, counts, tolerance: float) -> dict:
    """Two accuracy matrices (fractions; NaN where a task was not yet seen), cell by cell: the largest difference,
    in points and in test images, its cell, and whether it is within `tolerance` (a fraction). A cell measured on
    one device only, different shapes, or no cell measured at all is a failure."""
    A, B = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if A.shape != B.shape or A.ndim != 2:
        return {"ok": False, "reason": f"matrices of shapes {A.shape} and {B.shape}", "max_diff": math.inf}
    missing = np.argwhere(np.isnan(A) != np.isnan(B))
    if len(missing):
        i, j = missing[0]
        return {"ok": False, "reason": f"cell ({i + 1}, {j + 1}) measured on one device only", "max_diff": math.inf}
    measured = ~np.isnan(A)
    if not measured.any():
        return {"ok": False, "reason": "no cell measured", "max_diff": math.inf}
    diff = np.where(measured, np.abs(A - B), 0.0)
    i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
    worst = float(diff[i, j])
    images = int(round(worst * counts[j])) if counts is not None else None
    ok = worst <= tolerance + 1e-9
    result = {"ok": ok, "max_diff": worst, "max_diff_images": images, "cell": [int(i) + 1, int(j) + 1],
              "cells_over": int((diff > tolerance + 1e-9).sum())}
    if not ok:
        result["reason"] = (f"after task {i + 1}, task {j + 1}'s accuracy differs by {100 * worst:.1f} points "
                            f"({images} test images) > {100 * tolerance:g}")
    return result


def demo_runs(methods: list[str], settings: list[str]):
    """The runs `lifelong run --memory 200` makes on split-digits: [(setting, method, options)] and the skipped
    ones [(setting, method, reason)], in the demo's order."""
    from lifelong.catalog import METHODS
    from lifelong.errors import ConfigError
    from lifelong.experiment import build_method, build_model
    from lifelong.benchmarks import make_scenario

    scenario = make_scenario("split-digits")
    runs, skipped = [], []
    for setting in settings:
        for name in methods:
            if setting not in METHODS[name][1]:
                continue
            options = {"memory": DEMO_MEMORY} if METHODS[name][2] else {}
            try:
                build_method(name, build_model(scenario), setting, options).check(scenario)
            except ConfigError as error:
                skipped.append((setting, name, str(error)))
                continue
            runs.append((setting, name, options))
    return runs, skipped


def one_run(method: str, setting: str, options: dict, device: str, epochs: int | None, seed: int) -> dict:
    """One split-digits run on `device`, as `lifelong run` makes it (a fresh scenario for each)."""
    from lifelong.experiment import run_experiment, train_config

    config = train_config("split-digits", epochs=epochs, device=device, progress=False, seed=seed)
    return run_experiment(method, "split-digits", setting, config=config, method_options=dict(options))


def device_labels(devices: list[str]) -> list[str]:
    """Names for the two sides of a comparison: the devices, numbered when they are the same (a dry run)."""
    return [f"{d} #{k + 1}" for k, d in enumerate(devices)] if devices[0] == devices[1] else list(devices)


def agreement(args, deadline: float) -> dict:
    runs, skipped = demo_runs(args.methods, args.settings)
    labels = device_labels(args.devices)
    log(f"agreement: {len(runs)} split-digits runs on {' and '.join(labels)} "
        f"({args.epochs or 'the scenario default of 10'} epochs per task; tolerance {100 * args.tolerance:g} points)")
    rows, durations = [], []
    for k, (setting, name, options) in enumerate(runs):
        row = {"method": name, "setting": setting, "options": options}
        if durations and left(deadline) < float(np.mean(durations)):
            if not rows or not rows[-1]["status"].startswith("not run"):
                log(f"agreement: the budget left holds no more: runs {k + 1} to {len(runs)} not run")
            row["status"] = "not run (time budget)"
            rows.append(row)
            continue
        started = time.perf_counter()
        results = {}
        for label, device in zip(labels, args.devices):
            t = time.perf_counter()
            try:
                results[label] = one_run(name, setting, options, device, args.epochs, args.seed)
            except Exception as error:  # one method's failure must not hide the others' results
                row.setdefault("errors", {})[label] = f"{type(error).__name__}: {error}"
                row.setdefault("tracebacks", {})[label] = traceback.format_exc()
            row.setdefault("time_s", {})[label] = time.perf_counter() - t
        durations.append(time.perf_counter() - started)
        for label, r in results.items():
            row.setdefault("final_average_accuracy", {})[label] = r["final_average_accuracy"]
            row.setdefault("accuracy_matrix", {})[label] = r["accuracy_matrix"]
        if "errors" in row:
            row["status"] = "error"
            row["reason"] = "; ".join(f"{d}: {e}" for d, e in row["errors"].items())
        else:
            a, b = (results[label] for label in labels)
            row.update(compare(a["accuracy_matrix"], b["accuracy_matrix"], a["test_counts"], args.tolerance))
            row["status"] = "pass" if row["ok"] else "FAIL"
        shown = (f"max diff {100 * row['max_diff']:.1f} points ({row['max_diff_images']} images)"
                 if "max_diff_images" in row else row.get("reason", ""))
        times = ", ".join(f"{d} {s:.1f} s" for d, s in row["time_s"].items())
        log(f"  {k + 1}/{len(runs)} {name} ({setting}): {times}; {shown}: {row['status']}")
        rows.append(row)
    return {"devices": args.devices, "labels": labels, "tolerance": args.tolerance, "epochs": args.epochs,
            "memory": DEMO_MEMORY, "seed": args.seed, "rows": rows,
            "skipped": [{"setting": s, "method": m, "reason": r} for s, m, r in skipped]}


# ---------------------------------------------------------------------------------------------------- speed
def speed_scenario(args, work: Path):
    """split-CIFAR-100 (10 tasks) from the real archive in --data-dir, or from a synthetic one written in `work`."""
    from lifelong.data import cifar, md5sum
    from lifelong.benchmarks import make_scenario

    if args.data_dir is not None:
        return make_scenario("split-cifar100", data_dir=args.data_dir, n_tasks=10, download=False), None
    from ddp_scaling import write_synthetic_cifar100

    n_test = max(100, args.synthetic_images // 5)
    t = time.perf_counter()
    archive = write_synthetic_cifar100(work / "cifar100" / "cifar-100-python.tar.gz", 0, args.synthetic_images,
                                       n_test)
    log(f"speed: SYNTHETIC pixels: a CIFAR-100 archive in the official format ({args.synthetic_images:,} training, "
        f"{n_test:,} test images) written in {time.perf_counter() - t:.1f} s")
    official = cifar.MD5
    cifar.MD5 = md5sum(archive)  # the library checks the official archive's checksum: this archive's instead
    try:
        scenario = make_scenario("split-cifar100", data_dir=work, n_tasks=10, download=False)
    finally:
        cifar.MD5 = official
    return scenario, {"train": args.synthetic_images, "test": n_test, "seed": 0}


def speed_config(device: str):
    from lifelong.experiment import train_config

    return train_config("split-cifar100", epochs=1, batch_size=128, device=device, progress=False)


def engine_loop(scenario, config, n_tasks: int) -> dict:
    """The library's engine over the first `n_tasks` tasks: its own per-task training and evaluation times."""
    from lifelong.experiment import run_experiment

    first = dataclasses.replace(scenario, tasks=scenario.tasks[:n_tasks])
    results = run_experiment("finetune", first, "class", backbone="resnet32", config=config)
    return {"train_time_s": results["train_time_s"], "eval_time_s": results["eval_time_s"],
            "loss": [losses[-1] for losses in results["epoch_loss"]]}


def bare_loop(scenario, config, n_tasks: int, amp_dtype: torch.dtype | None = None) -> dict:
    """The same training as plainly as PyTorch allows: the library's ResNet-32 module (built from the same seed:
    the same initial weights), a linear part per task applied as one product (as the library's head), fused SGD
    with the same options and cosine schedule, the same shuffled batches and crop + flip from a generator seeded
    alike; no evaluation. `amp_dtype`: forward and loss under torch.autocast (float16: with a GradScaler)."""
    import torch.nn.functional as F
    from torch import nn

    from lifelong.models import resnet32
    from lifelong.transforms import crop_and_flip

    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    backbone = resnet32(scenario.input_shape[0]).to(device)  # built on the CPU, then moved, as the library does
    torch.manual_seed(config.seed)  # the head parts' initial weights, drawn task by task
    generator = torch.Generator().manual_seed(config.seed)  # shuffling and augmentation
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    heads: list[nn.Linear] = []
    offset = 0
    times, losses = [], []
    for task in scenario.tasks[:n_tasks]:
        started = time.perf_counter()
        heads.append(nn.Linear(backbone.out_features, task.n_classes).to(device))
        x, y = task.x_train.to(device), (task.y_train + offset).to(device)
        offset += task.n_classes
        params = list(backbone.parameters()) + [p for head in heads for p in head.parameters()]
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay, fused=True)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs)
        n_batches = math.ceil(len(x) / config.batch_size)
        for _ in range(config.epochs):
            backbone.train()
            order = torch.randperm(len(x), generator=generator).to(device)
            total = torch.zeros((), device=device)
            for idx in order.split(config.batch_size):
                inputs = crop_and_flip(x[idx], generator)
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    features = backbone(inputs)
                    if len(heads) == 1:
                        logits = heads[0](features)
                    else:
                        logits = F.linear(features, torch.cat([h.weight for h in heads]),
                                          torch.cat([h.bias for h in heads]))
                    loss = F.cross_entropy(logits, y[idx])
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    optimizer.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                total += loss.detach()
            schedule.step()
            epoch_loss = total.item() / n_batches  # (waits for the device: the task's time is all its work)
        times.append(time.perf_counter() - started)
        losses.append(epoch_loss)
    return {"train_time_s": times, "loss": losses}


def amp_dtype_for(device: str, choice: str) -> torch.dtype:
    if choice == "bfloat16" or (choice == "auto" and (torch.device(device).type != "cuda"
                                                      or torch.cuda.is_bf16_supported())):
        return torch.bfloat16
    return torch.float16


def speed(args, deadline: float, work: Path) -> dict:
    device = args.speed_device
    amp_dtype = amp_dtype_for(device, args.amp_dtype)
    amp_name = str(amp_dtype).replace("torch.", "")
    loops = {"engine fp32": lambda k: engine_loop(scenario, config, k),
             "bare fp32": lambda k: bare_loop(scenario, config, k),
             f"bare {amp_name}": lambda k: bare_loop(scenario, config, k, amp_dtype)}
    out = {"device": device, "amp_dtype": amp_name, "requested_tasks": args.speed_tasks, "batch_size": 128,
           "epochs": 1, "rounds": [], "errors": {},
           "engine_mixed_precision": "not supported: TrainConfig and `lifelong run` have no mixed-precision option"}
    if left(deadline) < 60:
        out["status"] = "not run (time budget)"
        log("speed: not run: less than 60 s of the budget left")
        return out
    scenario, out["synthetic"] = speed_scenario(args, work)
    config = speed_config(device)
    out["config"] = {k: getattr(config, k) for k in ("lr", "momentum", "weight_decay", "schedule", "optimizer")}
    images = [len(task.y_train) for task in scenario.tasks]

    def attempt(name: str, k: int) -> dict | None:
        """One loop over k tasks; a loop that fails is recorded and left out of the later rounds."""
        try:
            return loops[name](k)
        except Exception as error:
            out["errors"][name] = f"{type(error).__name__}: {error}"
            out.setdefault("tracebacks", {})[name] = traceback.format_exc()
            log(f"  {name} failed: {out['errors'][name]}")
            del loops[name]
            return None

    log(f"speed on {device}: warm-up round (one task of each loop, untimed)")
    warm = {}
    for name in list(loops):
        t = time.perf_counter()
        result = attempt(name, 1)
        if result is not None:
            warm[name] = {**result, "wall_s": time.perf_counter() - t}
            log(f"  warm-up {name}: {images[0] / sum(result['train_time_s']):,.0f} samples/s")
    out["warm_up"] = warm
    if not loops:
        out["status"] = "error: every loop failed"
        return out
    # a round of k tasks costs about k times the warm-up's task (its first-call costs make this an overestimate),
    # plus the engine's evaluation of every task seen after each task: k (k + 1) / 2 task evaluations
    per_eval = sum(warm.get("engine fp32", {}).get("eval_time_s", []))
    per_task = sum(w["wall_s"] for w in warm.values()) - per_eval
    fits = [k for k in range(1, args.speed_tasks + 1)
            if k * per_task + k * (k + 1) / 2 * per_eval <= left(deadline)]
    if not fits:
        out["status"] = "not run (time budget)"
        log("speed: no timed round fits in the budget left")
        return out
    k = fits[-1]
    round_s = k * per_task + k * (k + 1) / 2 * per_eval
    if k < args.speed_tasks:
        log(f"speed: {k} task(s) timed, not {args.speed_tasks}: the budget left holds no more")
    out["timed_tasks"] = k
    out["images_per_task"] = images[:k]
    for r in range(args.repeats):
        if r and left(deadline) < round_s:
            log(f"speed: {r} round(s) of {args.repeats}: the budget left holds no more")
            break
        started = time.perf_counter()
        this = {}
        for name in list(loops):
            result = attempt(name, k)
            if result is not None:
                this[name] = result
                log(f"  round {r + 1}, {name}: {sum(images[:k]) / sum(result['train_time_s']):,.0f} samples/s "
                    f"({sum(result['train_time_s']):.2f} s)")
        out["rounds"].append(this)
        round_s = max(round_s, time.perf_counter() - started) if r == 0 else time.perf_counter() - started
    out["summary"] = summarize_speed(out["rounds"], list(loops), images[:k])
    out["status"] = "measured" if not out["errors"] else "error: " + "; ".join(
        f"{name}: {error}" for name, error in out["errors"].items())
    return out


def summarize_speed(rounds: list[dict], names: list[str], images: list[int]) -> dict:
    """Each loop's fastest round: samples/s over the timed tasks (and over tasks 2+), time, and its time over the
    bare fp32 loop's; and how far the engine's fp32 losses are from the bare loop's (the same arithmetic: ~0)."""
    loops = {}
    for name in names:
        measured = [rnd[name] for rnd in rounds if name in rnd]
        if not measured:
            continue
        best = min(measured, key=lambda result: sum(result["train_time_s"]))
        times = best["train_time_s"]
        row = {"train_s": sum(times), "samples_per_s": sum(images) / sum(times), "loss": best["loss"],
               "rounds": len(measured)}
        if len(times) > 1:
            row["samples_per_s_after_first_task"] = sum(images[1:]) / sum(times[1:])
        if "eval_time_s" in best:
            row["eval_s"] = sum(best["eval_time_s"])
        loops[name] = row
    summary = {"loops": loops}
    if "bare fp32" in loops:
        for row in loops.values():
            row["time_over_bare_fp32"] = row["train_s"] / loops["bare fp32"]["train_s"]
        if "engine fp32" in loops:
            pairs = zip(loops["engine fp32"]["loss"], loops["bare fp32"]["loss"])
            summary["fp32_loss_max_relative_difference"] = max(abs(e - p) / max(abs(p), 1e-12) for e, p in pairs)
    return summary


# ---------------------------------------------------------------------------------------------------- report
def markdown(doc: dict) -> str:
    env, dry = doc["environment"], doc["dry_run"]
    lines = ["# GPU check: CPU and CUDA agreement, engine speed on a GPU" + (" (DRY RUN on CPU)" if dry else ""), ""]
    if dry:
        lines += ["**DRY RUN: no CUDA device took part. These numbers exercise the script's code paths and say "
                  "nothing about GPUs.**", ""]
    lines += [__doc__.split("\n\n")[1].replace("\n", " "), "", f"Command: `{doc['command']}`.", ""]
    gpus = "; ".join(f"{g['name']} ({g['memory_gib']} GiB, compute capability {g['capability']})"
                     for g in env["gpus"]) or "none"
    lines += [f"GPU: {gpus}. CPU: {env['cpu']}, {env['cpu_count']} cores, {env['torch_threads']} torch thread(s). "
              f"torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env.get('cudnn')}, driver {env.get('driver')}, "
              f"Python {env['python']}."]
    if env.get("tf32"):
        lines += [f"Float32 settings (PyTorch's defaults, left as they are): {env['tf32']}."]
    lines += [f"Time: {doc['elapsed_s']:.0f} s of a {doc['budget_s']:.0f} s budget.", ""]

    a = doc.get("agreement")
    if a is not None:
        d0, d1 = a["labels"]
        passed = sum(r["status"] == "pass" for r in a["rows"])
        lines += [f"## Agreement: split-digits on {d0} and {d1}", "",
                  f"{passed} of {len(a['rows'])} runs pass ({a['epochs'] or 10} epochs per task, seed {a['seed']}, "
                  f"exemplar methods with --memory {a['memory']}; tolerance {100 * a['tolerance']:g} points per "
                  "cell of the accuracy matrix).", "",
                  f"| method | setting | {d0} avg acc | {d1} avg acc | max cell diff (points) | test images | "
                  f"{d0} s | {d1} s | result |", "|---|---|---|---|---|---|---|---|---|"]
        for r in a["rows"]:
            acc = r.get("final_average_accuracy", {})
            t = r.get("time_s", {})

            def cell(v, fmt):
                return "" if v is None else format(v, fmt)

            diff = cell(100 * r["max_diff"], ".1f") if math.isfinite(r.get("max_diff", math.nan)) else ""
            status = r["status"] if r["status"] == "pass" else f"**{r['status']}**" + (
                f": {r['reason']}" if r.get("reason") else "")
            lines.append(f"| {r['method']} | {r['setting']} | {cell(acc.get(d0), '.3f')} | {cell(acc.get(d1), '.3f')} "
                         f"| {diff} | {cell(r.get('max_diff_images'), 'd')} | {cell(t.get(d0), '.1f')} | "
                         f"{cell(t.get(d1), '.1f')} | {status} |")
        for s in a["skipped"]:
            lines.append(f"\nSkipped as the demo skips it: {s['method']} ({s['setting']}): {s['reason']}")
        lines.append("")

    s = doc.get("speed")
    if s is not None:
        lines += [f"## Speed: split-CIFAR-100, ResNet-32, one epoch per task, batch 128, on {s['device']}", ""]
        for name, error in s.get("errors", {}).items():
            lines += [f"**{name} failed**: {error}", ""]
        loops = s.get("summary", {}).get("loops", {})
        if not loops:
            lines += [f"Speed: {s['status']}.", ""]
        else:
            syn = s.get("synthetic")
            data = (f"SYNTHETIC pixels in the official archive format ({syn['train']:,} training images, seeded "
                    "random pixels; throughput does not depend on pixel values)" if syn else "the real CIFAR-100")
            images = s["images_per_task"]
            lines += [f"Data: {data}. Timed: the first {s['timed_tasks']} task(s) of 10, {sum(images):,} training "
                      f"images; each loop's fastest of {len(s['rounds'])} round(s). Recipe: {s['config']}.", "",
                      "| loop | precision | samples/s | samples/s, tasks 2+ | training (s) | time / bare fp32 |",
                      "|---|---|---|---|---|---|"]
            for name, row in loops.items():
                loop, precision = name.split(" ", 1)
                after, ratio = row.get("samples_per_s_after_first_task"), row.get("time_over_bare_fp32")
                lines.append(f"| {'lifelong engine' if loop == 'engine' else 'bare PyTorch'} | {precision} | "
                             f"{row['samples_per_s']:,.0f} | {'' if after is None else format(after, ',.0f')} | "
                             f"{row['train_s']:.2f} | {'' if ratio is None else format(ratio, '.2f')} |")
            lines += [f"| lifelong engine | mixed | not measured | | | {s['engine_mixed_precision']} |", ""]
            notes = []
            engine, amp = loops.get("engine fp32", {}), loops.get(f"bare {s['amp_dtype']}", {})
            if "time_over_bare_fp32" in engine:
                notes.append(f"Engine overhead (engine time / bare time, fp32): {engine['time_over_bare_fp32']:.2f}.")
            if "time_over_bare_fp32" in amp:
                notes.append(f"Mixed precision ({s['amp_dtype']} autocast) speeds the bare loop up "
                             f"{1 / amp['time_over_bare_fp32']:.2f}x.")
            if "eval_s" in engine:
                notes.append(f"The engine's evaluation after each task (not in its training time): "
                             f"{engine['eval_s']:.2f} s.")
            if "fp32_loss_max_relative_difference" in s["summary"]:
                notes.append("Same arithmetic: the engine's and the bare loop's fp32 mean losses per task differ by "
                             f"at most {s['summary']['fp32_loss_max_relative_difference']:.2g} (relative).")
            lines += [" ".join(notes), ""]
    lines += [f"Result: {doc['verdict']}."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- main
def plain(obj):
    """For JSON: NaN and infinities (cells not yet measured, a comparison that could not be made) as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs per split-digits run, 2 CIFAR tasks, 2 rounds, budget 180 s (unless given)")
    parser.add_argument("--budget-s", type=float, help="hard time budget in seconds (default 450; --quick 180)")
    parser.add_argument("--devices", default="cpu,cuda", help="the two devices compared (default cpu,cuda)")
    parser.add_argument("--speed-device", help="the speed part's device (default: the second of --devices)")
    parser.add_argument("--methods", default="all", help="methods compared, comma-separated (default all: the demo's)")
    parser.add_argument("--settings", default="class,task", help="settings compared (default class,task: the demo's)")
    parser.add_argument("--epochs", type=int, help="epochs per split-digits task (default: the scenario's 10; "
                                                   "--quick 2)")
    parser.add_argument("--tolerance", type=float, default=0.03,
                        help="largest accepted difference of an accuracy-matrix cell, a fraction (default 0.03)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed-tasks", type=int, help="CIFAR tasks timed, from the first (default 10; --quick 2)")
    parser.add_argument("--repeats", type=int, help="timed rounds (default 3; --quick 2); the fastest is reported")
    parser.add_argument("--amp-dtype", default="auto", choices=["auto", "bfloat16", "float16"],
                        help="mixed precision's dtype (auto: bfloat16 where the GPU has it, else float16)")
    parser.add_argument("--data-dir", type=Path, help="a data folder holding cifar100/cifar-100-python.tar.gz "
                                                      "(default: a synthetic archive)")
    parser.add_argument("--synthetic-images", type=int, default=50_000,
                        help="training images of the synthetic archive, a multiple of 100 (default 50,000)")
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--threads", type=int, help="torch threads (default $OMP_NUM_THREADS, else 1)")
    parser.add_argument("--out", type=Path, help="where the results go (default benchmarks/results; a dry run: a "
                                                 "new temporary folder)")
    args = parser.parse_args(argv)
    args.devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if len(args.devices) != 2:
        parser.error(f"--devices takes two devices, got {args.devices}")
    args.speed_device = args.speed_device or args.devices[1]
    from lifelong.catalog import METHODS, methods_for_all

    args.methods = (methods_for_all("split-digits") if args.methods == "all"
                    else [m.strip() for m in args.methods.split(",")])
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}")
    args.settings = [s.strip() for s in args.settings.split(",")]
    if any(s not in ("task", "domain", "class") for s in args.settings):
        parser.error(f"--settings: task, domain or class, got {args.settings}")
    if args.synthetic_images < 100 or args.synthetic_images % 100:
        parser.error("--synthetic-images must be a multiple of 100 (every class equally often)")
    if args.budget_s is None:
        args.budget_s = 180.0 if args.quick else 450.0
    if args.epochs is None and args.quick:
        args.epochs = 2
    args.speed_tasks = min(10, args.speed_tasks or (2 if args.quick else 10))
    args.repeats = args.repeats or (2 if args.quick else 3)
    return args


def main(argv=None) -> int:
    """The command line (`argv`: its arguments; given, as from a test, the budget counts from this call)."""
    global START
    if argv is not None:
        START = time.perf_counter()
    args = parse(argv)
    asked = args.devices + ([] if args.skip_speed else [args.speed_device])
    uses_cuda = any(torch.device(d).type == "cuda" for d in asked)
    if uses_cuda and not torch.cuda.is_available():
        print(NO_GPU_LINE)
        return 0
    from lifelong.errors import ConfigError
    from lifelong.checks import check_device

    try:
        for d in asked:
            check_device(d)
    except ConfigError as error:
        print(f"gpu_check: {error}")
        return 2
    torch.set_num_threads(args.threads or int(os.environ.get("OMP_NUM_THREADS") or 1))
    dry = not uses_cuda
    name = "gpu_check_dry_run" if dry else "gpu_check"
    out_dir = args.out or (Path(tempfile.mkdtemp(prefix="gpu_check_dry_run_")) if dry else RESULTS)
    end = START + args.budget_s
    doc = {"command": " ".join(["benchmarks/gpu_check.py", *sys.argv[1:]] if argv is None
                               else ["benchmarks/gpu_check.py", *argv]),
           "dry_run": dry, "budget_s": args.budget_s, "environment": environment(asked)}
    gpus = ", ".join(g["name"] for g in doc["environment"]["gpus"]) or "no GPU (dry run)"
    log(f"gpu_check on {gpus}; torch {torch.__version__}, CUDA {torch.version.cuda}; budget {args.budget_s:.0f} s")
    if not args.skip_agreement:
        share = 1.0 if args.skip_speed else 0.5
        doc["agreement"] = agreement(args, START + share * args.budget_s - WRITE_RESERVE_S)
    if not args.skip_speed:
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
            try:
                doc["speed"] = speed(args, end - WRITE_RESERVE_S, Path(work))
            except Exception as error:
                log(f"speed: failed: {type(error).__name__}: {error}")
                doc["speed"] = {"device": args.speed_device, "status": f"error: {type(error).__name__}: {error}",
                                "traceback": traceback.format_exc()}
    rows = doc.get("agreement", {}).get("rows", [])
    bad = [f"{r['method']} ({r['setting']}): {r['status']} ({r.get('reason', '')})" for r in rows
           if r["status"] in ("FAIL", "error")]
    if doc.get("speed", {}).get("status", "").startswith("error"):
        bad.append(f"speed: {doc['speed']['status']}")
    not_run = [f"{sum(r['status'].startswith('not run') for r in rows)} agreement run(s)"] if any(
        r["status"].startswith("not run") for r in rows) else []
    if doc.get("speed", {}).get("status", "").startswith("not run"):
        not_run.append("the speed part")
    doc["verdict"] = ("FAILED: " + "; ".join(bad)) if bad else (
        "all checks passed" if not not_run else
        f"no failure in what ran; not run for the time budget: {' and '.join(not_run)}")
    doc["elapsed_s"] = time.perf_counter() - START
    out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(doc)
    (out_dir / f"{name}.md").write_text(text)
    (out_dir / f"{name}.json").write_text(json.dumps(plain(doc), indent=2, default=str) + "\n")
    print(text)
    log(f"written: {out_dir / name}.md and .json")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
