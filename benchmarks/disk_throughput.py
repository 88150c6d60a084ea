"""Throughput of the disk path (`from_data(folder, on_disk=True)`: images read batch by batch by DataLoader
workers) against the in-memory path (batches sliced from tensors), on Omniglot images written to disk.

Protocol: the first 400 Omniglot background characters, 20 drawings each, written as 105x105 PNGs
(ink black on white, as the official files), read resized to 28x28 (Pillow's bilinear); 5 tasks of 80 characters, a quarter of the drawings for testing. Reading: one epoch of batches of 128 of all
training images, nothing else. Training: fine-tuning an MLP 400-400, 1 epoch per task, batch 128, Adam 0.001, one
torch thread in this process; samples/s = training samples / training time (evaluation left out). A method that
keeps exemplars, iCaRL (memory 800: 2 drawings per character, by herding), the same way: its training time holds
its own passes too (the old model's recorded outputs, the features for herding and the class means), and its memory
on disk is a list of files read again at every task. Both paths give the same accuracy matrix (checked here too).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/disk_throughput.py
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _common import data_dir, machine, pin_threads, save

from lifelong.experiment import run_experiment
from lifelong.scenarios import from_data, in_memory
from lifelong.inputs import input_batches

CHARACTERS, SIZE, BATCH, EXEMPLARS = 400, 28, 128, 800


def write_folder(root: Path) -> None:
    with np.load(data_dir() / "omniglot" / "omniglot_full.npz") as arrays:
        drawings = arrays["background_x"][:CHARACTERS]
    for c, character in enumerate(drawings):
        (root / f"character{c:03d}").mkdir()
        for d, image in enumerate(character):
            Image.fromarray(image).save(root / f"character{c:03d}" / f"{d:02d}.png")


def read_rate(scenario) -> float:
    """Training images per second of one epoch of shuffled batches, read and nothing else."""
    generator = torch.Generator().manual_seed(0)
    started, n = time.perf_counter(), 0
    for task in scenario.tasks:
        batches = torch.randperm(len(task.y_train), generator=generator).split(BATCH)
        for x in input_batches(task.x_train, batches):
            n += len(x)
    return n / (time.perf_counter() - started)


def train_rate(scenario, method: str = "finetune") -> tuple[float, list]:
    options = {"memory": EXEMPLARS} if method == "icarl" else None
    results = run_experiment(method, scenario, "class", epochs=1, batch_size=BATCH, lr=0.001, optimizer="adam",
                             method_options=options, progress=False)
    n = sum(len(task.y_train) for task in scenario.tasks)
    return n / sum(results["train_time_s"]), results["accuracy_matrix"]


def main():
    pin_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_folder(Path(folder))
        written = time.perf_counter() - started
        rows = []
        memory = None
        for workers in (0, 2, 4):
            on_disk = from_data(folder, n_tasks=5, test_fraction=0.25, size=SIZE, on_disk=True, workers=workers)
            if memory is None:
                started = time.perf_counter()
                memory = in_memory(on_disk)
                loaded = time.perf_counter() - started
                rate, reference = train_rate(memory)
                rows.append({"path": "in memory", "workers": "-", "read_per_s": read_rate(memory),
                             "train_per_s": rate})
                print(rows[-1], flush=True)
            rate, matrix = train_rate(on_disk)
            assert matrix == reference, "the disk path must give the in-memory path's numbers"
            rows.append({"path": "disk", "workers": workers, "read_per_s": read_rate(on_disk), "train_per_s": rate})
            print(rows[-1], flush=True)
        exemplar_rows = []
        for path, workers in (("in memory", "-"), ("disk", 0), ("disk", 2)):
            scenario = memory if path == "in memory" else from_data(folder, n_tasks=5, test_fraction=0.25, size=SIZE,
                                                                    on_disk=True, workers=workers)
            rate, matrix = train_rate(scenario, "icarl")
            if path == "in memory":
                icarl_reference = matrix
            assert matrix == icarl_reference, "the disk path must give the in-memory path's numbers"
            exemplar_rows.append({"path": path, "workers": workers, "train_per_s": rate})
            print("icarl", exemplar_rows[-1], flush=True)
    n_train = sum(len(task.y_train) for task in memory.tasks)
    lines = ["# Data on disk against data in memory: samples per second", "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| path | DataLoader workers | reading (images/s) | training (samples/s) | training, share of in memory |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['path']} | {r['workers']} | {r['read_per_s']:,.0f} | {r['train_per_s']:,.0f} | "
              f"{r['train_per_s'] / rows[0]['train_per_s']:.2f} |" for r in rows]
    lines += ["", f"iCaRL, memory {EXEMPLARS}:", "",
              "| path | DataLoader workers | training (samples/s) | share of in memory |", "|---|---|---|---|"]
    lines += [f"| {r['path']} | {r['workers']} | {r['train_per_s']:,.0f} | "
              f"{r['train_per_s'] / exemplar_rows[0]['train_per_s']:.2f} |" for r in exemplar_rows]
    lines += ["", f"{n_train} training images; writing the {CHARACTERS * 20} PNGs took {written:.1f} s, reading them "
                  f"all into memory (`in_memory`) {loaded:.1f} s. Accuracy matrices: equal on every path. "
                  f"{machine()['cpu_count']} CPUs, one torch thread in the training process."]
    save("disk_throughput", {"rows": rows, "icarl_rows": exemplar_rows, "training_images": n_train, "write_s": written, "load_s": loaded,
                             "machine": machine()}, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
