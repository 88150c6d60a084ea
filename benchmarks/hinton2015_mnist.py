"""Reproduction: Hinton, Vinyals & Dean 2015, "Distilling the knowledge in a neural network", section 3 (MNIST).

Teacher 784-1200-1200-10 (dropout, 2-pixel jitter), plain student 784-800-800-10 (hard targets), distilled
student (soft targets at T = 20 + hard targets, T^2 scaling), and the distilled student whose transfer set has no 3s,
before and after raising the bias of class 3. Writes benchmarks/results/hinton2015_mnist.{json,md} and
benchmarks/results/temperature.png (class probabilities against T for one of the teacher's logit vectors).

    flock /tmp/lifelong-heavy.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/hinton2015_mnist.py
    .venv/bin/python benchmarks/hinton2015_mnist.py --render-only   # rewrite the markdown from the JSON

Data: lifelong.data.load_mnist(DATA, download=False), DATA = --data-dir (default /work/shared/data).
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from lifelong.compression import PAPER_ERRORS, CompressionConfig, run_compression, summary
from lifelong.data import load_mnist
from lifelong.report import plot_temperature
from lifelong.results import machine_line, write_json

RESULTS = Path(__file__).resolve().parent / "results"
COMMAND = "flock /tmp/lifelong-heavy.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/hinton2015_mnist.py"

# Written after looking at the measured numbers (see the report of the session that ran it).
NOTES = """\
- Epochs and time. The paper does not state its training length; dropout nets of this kind (Hinton et al. 2012)
  were trained for thousands of epochs. Ours get 16 (teacher) and 8 (each student) epochs on a 2-core CPU: a
  1-epoch timing on a quiet machine (teacher 23 s, student 5 to 13 s an epoch) put the run at about 10 minutes; the
  recorded run took 21.9 minutes because other engineers' jobs shared the 2 cores (teacher epochs took 23 to 100 s).
- Every net is under-trained compared with the paper's, the dropout teacher most (dropout and jitter slow
  convergence): 133 errors against 67. The unregularised plain student, which converges fast, is close to the
  paper (165 against 146). On this one seed (n = 1: no spread measured, one CPU) the ordering is the paper's:
  teacher (133) < distilled student (140) < plain student (165); whether the 7 errors between teacher and
  distilled student keep that order on another seed or CPU was not measured. Distillation closes 25 of the 32
  errors between plain student and teacher (paper: 72 of 79). Our distilled
  student (140) learns from our teacher (133), not from the paper's (67): a longer teacher run is what would most
  likely bring it toward 74.
- Digit 3 omitted: the paper's pattern. The student never saw a 3, yet as trained it gets 856 of the 1,010 test
  3s right; it misses 154 (paper 133) because the bias of class 3 is too low (the hard-target term pushed it down
  on every transfer image). With a higher class-3 bias it recognises nearly all of them (+3.5: 9 errors on 3s;
  paper 14): what it knows of 3s came through the soft targets of other digits. The paper's +3.5, chosen on its test set
  for its net, overshoots for ours: 228 other digits are then called 3 (237 errors in all, paper 109). The shift
  chosen on held-out training images, +2.3, gives 179 errors (34 on 3s), below the unshifted 268.
- Optimiser (ours, the paper gives none): SGD, momentum 0.9, batch 128, learning rate 0.05 with cosine decay to 0
  within each net's epochs; no weight constraint (the paper's teacher also had max-norm constraints).
- Teacher dropout 0.5 on the hidden units and 0.2 on the inputs (Hinton et al. 2012, which the paper cites);
  jitter: each training batch shifted by a random -2..2 pixels in each direction, zero fill (not the students).
- Soft and hard terms weighted 1 and 1, the soft term multiplied by T^2 (the paper found "a considerably lower
  weight on the second objective" best; with T^2 scaling at T = 20 the soft term's gradient already dominates).
  Soft targets: the teacher's logits on the un-jittered training images, computed once in evaluation mode.
- Digit 3: the paper chose the +3.5 bias "which optimizes overall performance on the test set"; we report that
  fixed +3.5 and, beside it, the shift (grid 0..10, step 0.1) with the fewest errors on 5,000 training images held
  out of that student's transfer set (3s included), which does not look at the test set.
"""


def fmt_pair(entry):
    return f"{entry['test_errors']} ({entry['errors_on_class']} on 3s)"


def made_on(where) -> tuple[str, str]:
    """"CPU, N threads (architecture)" for the header, and the last line naming the CPU. Results made before the
    machine was recorded hold only the first, as a string."""
    if isinstance(where, str):
        return where, ("Made on: not recorded (made before results recorded the machine, on an x86-64 CPU of this "
                       "project's 2-core machines; figures differ on other CPUs: rerun "
                       f"`{COMMAND}` to get a table that names its CPU).")
    return (f"CPU, {where['torch_threads']} threads ({where['architecture']})",
            f"Made on: {machine_line(where)}, {where['torch_threads']} torch thread(s).")


def render(results: dict) -> str:
    cfg, om = results["config"], results.get("omitted")
    where, made_on_line = made_on(results["machine"])
    lines = [
        "# Hinton, Vinyals & Dean 2015, section 3: distillation on MNIST",
        "",
        f"Command: `{COMMAND}`",
        f"(seed {cfg['seed']}; run time {results['wall_time_s'] / 60:.1f} minutes on {where}).",
        "",
        "## Protocol",
        "",
        f"- MNIST, {results['n_train']:,} training images (the transfer set), test errors out of {results['n_test']:,}.",
        f"- Teacher 784-{'-'.join(map(str, cfg['teacher_hidden']))}-10 ReLU, dropout {cfg['teacher_dropout']} "
        f"(inputs {cfg['input_dropout']}), jitter up to {cfg['jitter']} pixels, {cfg['teacher_epochs']} epochs.",
        f"- Students 784-{'-'.join(map(str, cfg['student_hidden']))}-10 ReLU, no regularisation, "
        f"{cfg['student_epochs']} epochs each: plain (hard targets) and distilled (loss = {cfg['soft_weight']:g} * T^2 * "
        f"C_soft + {cfg['hard_weight']:g} * C_hard at T = {cfg['temperature']:g}, `lifelong.distillation`).",
        "- Digit 3 omitted: a distilled student (same recipe) trained on the transfer set without any 3 "
        f"({om['transfer_set_size']:,} images; {cfg['bias_validation']:,} others held out to choose a bias shift)."
        if om else "- Digit-3 experiment not run.",
        "",
        "## Results: test errors out of 10,000",
        "",
        "| net | paper | ours | ours: training time |",
        "|---|---|---|---|",
    ]
    for key, name in (("teacher", "teacher 1200-1200, dropout + jitter"), ("student", "student 800-800, hard targets"),
                      ("distilled", f"student 800-800, distilled at T = {cfg['temperature']:g}")):
        r = results[key]
        lines.append(f"| {name} | {PAPER_ERRORS[key]} | **{r['test_errors']}** | {r['epochs']} epochs, {r['train_time_s']:.0f} s |")
    if om:
        lines += [
            "",
            f"Digit 3 left out of the transfer set ({om['test_count_of_class']:,} threes in the test set), "
            f"student trained {om['train_time_s']:.0f} s:",
            "",
            "| distilled student without 3s | paper: errors (on 3s) | ours: errors (on 3s) |",
            "|---|---|---|",
            f"| as trained | 206 (133) | **{fmt_pair(om['as_trained'])}** |",
            f"| bias of class 3 + {om['fixed_shift']['bias_shift']:g} | 109 (14) | **{fmt_pair(om['fixed_shift'])}** |",
        ]
        if "validated_shift" in om:
            lines.append(f"| bias of class 3 + {om['validated_shift']['bias_shift']:g} (chosen on held-out "
                         f"training images) | - | **{fmt_pair(om['validated_shift'])}** |")
    lines += ["", "## Notes", "", NOTES.rstrip(), "",
              "![class probabilities against temperature](temperature.png)", "",
              f"`temperature.png`: softmax(z / T) against T for the teacher's logits z on the first test image "
              f"(a {results['teacher_logits_example']['label']}).", "", made_on_line, ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("LIFELONG_DATA", "/work/shared/data"))
    parser.add_argument("--teacher-epochs", type=int, default=CompressionConfig.teacher_epochs)
    parser.add_argument("--student-epochs", type=int, default=CompressionConfig.student_epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render-only", action="store_true", help="rewrite the markdown from the saved JSON")
    args = parser.parse_args()
    json_path, md_path = RESULTS / "hinton2015_mnist.json", RESULTS / "hinton2015_mnist.md"
    if args.render_only:
        md_path.write_text(render(json.loads(json_path.read_text())))
        return
    data = load_mnist(args.data_dir, download=False)
    config = CompressionConfig(teacher_epochs=args.teacher_epochs, student_epochs=args.student_epochs, seed=args.seed)
    results = run_compression(data, config)
    results["paper"] = PAPER_ERRORS
    results["machine"] = {**results["machine"], "torch_threads": torch.get_num_threads()}  # the library's record
    print(summary(results))
    write_json(json_path, results)
    md_path.write_text(render(results))
    example = results["teacher_logits_example"]
    plot_temperature(example["logits"], RESULTS / "temperature.png")
    print(f"\nwritten: {json_path}, {md_path}, {RESULTS / 'temperature.png'} "
          f"({results['wall_time_s'] / 60:.1f} minutes)", file=sys.stderr)


if __name__ == "__main__":
    main()
