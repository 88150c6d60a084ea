"""Reproduction: Hsu, Liu, Ramasamy & Kira 2018, "Re-evaluating continual learning scenarios", Table 2 (split-MNIST).

The protocol, the paper's numbers and the runner live in the library (`lifelong.reproduce`, also the command
`lifelong reproduce hsu2018-split-mnist`); this script runs it into benchmarks/results/ and adds our notes on
where and why our numbers differ from the paper's.

    flock /tmp/lifelong-heavy.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/reproduce_hsu2018.py \\
        --methods finetune,joint --seeds 5
    .venv/bin/python benchmarks/reproduce_hsu2018.py --render-only   # rewrite the markdown from the JSON

Runs are saved one file per (row, setting, seed) in benchmarks/results/hsu2018_split_mnist_runs/; runs already
there are skipped (delete a file to run it again); the markdown is rewritten from every run on disk.
"""

import argparse

from _common import RESULTS, data_dir, pin_threads

from lifelong.reproduce import PAPER_ROWS, reproduce, save_table

# Written after looking at the measured numbers.
NOTES = """\
Rows marked `!` (2 paper standard deviations or 1.5 points away), and what we found. Hsu et al.'s code
(GT-RIPL/Continual-Learning-Benchmark, agents/default.py and agents/regularization.py) differs from the protocol as
written in three ways that matter here:

1. **One Adam optimizer for the whole sequence.** `NormalNN` creates its optimizer once and `reset_optimizer` is
   False by default, so Adam's moment estimates (and step count) carry over from task to task; `lifelong`'s engine
   makes a fresh optimizer for every task unless asked (`--one-optimizer`, `TrainConfig(reset_optimizer=False)`).
   Checked (row `finetune-1adam`, 10 seeds, paired with `finetune`'s seeds): with one Adam, task-IL fine-tuning
   falls from 96.47 +- 1.51 to 94.99 +- 2.33 (paper 93.46 +- 2.01): about 1.5 of the 3-point gap (paired
   difference -1.48, standard error 0.89: suggestive, not conclusive), and the seed-to-seed spread becomes the
   paper's. Still flagged, by 0.03 over the 1.5-point rule (within one paper std). A candidate for the rest, not run:
   their code keeps the old task heads in the optimizer with zeroed (not absent) gradients, so Adam's momentum keeps
   moving an old head for a while after its task; our engine gives frozen heads no gradient at all. Domain-IL moves
   from 54.85 to 53.54 (paper 55.16 +- 1.38; paired difference -1.31, s.e. 0.46), class-IL does not move. The
   regularised methods should be much less sensitive to it (their penalty holds the weights), and their task-IL
   rows agree with a fresh optimizer per task. (`finetune` seeds 0-4 ran before the fused optimizer, 5-9 after.)
2. **A pre-allocated 10-way head in the class-IL setting.** Hsu et al.'s single head has all 10 outputs from the
   start (unseen ones masked out of the loss), so every head row has a snapshot from the first task on. For L2,
   whose Omega is 1 everywhere, the rows of classes not yet seen are pinned to their random initialisation by
   lambda = 100: new classes can only be learned through small weights, which keeps old classes competitive
   (22.52). Our head grows per task and a part born after the snapshot has no importance (nothing to protect yet),
   so with lambda = 100 the new part is free while everything else is stiff: the new classes win every prediction
   and L2 ends slightly below fine-tuning (about 17.4). Loss-based and output-based importance (EWC, SI, MAS) is
   zero for the unseen rows in their code too, so those rows agree with the paper. Checked (row `l2-fullhead`,
   `preallocate_head=True`, `lifelong run --preallocate-head`): with every class's output from the start, L2
   class-IL gives 23.85 +- 1.34 over 5 seeds against the paper's 22.52 +- 1.08, within its 2 standard deviations;
   the gap of the `l2` row is explained.
3. **Batch-based importance estimates.** Their EWC Fisher is B * (gradient of a batch's mean loss)^2 averaged
   over shuffled training batches; their MAS Omega is the mean over batches of |gradient of the batch-and-output
   mean of F^2|. The paper's coefficients were tuned with these, so the paper's rows here use the same estimators
   (`fisher=batch`; `estimate=batch`, `reduction=mean` for MAS). On split-MNIST task 1 the exact
   per-sample Fisher is about 120 times the batch estimate and the exact MAS Omega about 2.3 times Hsu's, so our
   defaults with the paper's coefficients are a stronger penalty than the paper's. Our batches are taken in the
   task's data order, not reshuffled, which changes the batch estimates somewhat: a candidate reason for EWC's
   domain-IL row sitting about 2 points below the paper's (2.59 std), while online EWC, L2, SI and MAS agree there.

Smaller flags: L2 domain-IL was 1.7 points below the paper's mean over 5 seeds; over 10 it is 66.08 against 66.00
(the flag was seed noise). EWC domain-IL over 10 seeds is 56.63 +- 3.15, 2.2 points below the paper's 58.85 +- 2.59
(within one of its standard deviations; the two means differ by about 1.7 standard errors). Joint (Offline)
class-IL is 0.46 points above the paper's 97.53 +- 0.30 (within 2 of its standard deviations, not flagged); with
one optimizer for the whole sequence (point 1, row `joint-1adam`) it is 97.89 +- 0.24.

Rows `lwf-vdv-all`, `lwf-vdv-2000it`, `lwf-all-2000it`, `lwf-vdv-2000it-1adam` and `finetune-1adam` (added
2026-11-24) ran after the engine switched to PyTorch's fused Adam (the same update up to rounding), the head to one
product over all task heads, and (task-IL LwF) the loss to one softmax over (sample, head) rows (the same loss, value
and gradient); the other rows ran before. Rows named 2000it train 21 epochs per task, all other rows 4.

Rows `mas-exact` and `l-mas` (2026-11-24, after the fix that gives a multi-part head's parts their l-MAS
importance): MAS with its exact per-sample Omega (eq. 4), the paper's coefficients, agrees in task- and class-IL and
is 3.7 points above the paper's mean in domain-IL (72.28 +- 2.75 against 68.57 +- 6.85: well within the paper's
std, flagged by the 1.5-point rule only; the exact Omega is about 2.3 times Hsu's estimate, a stronger penalty).
l-MAS against MAS on the same sequences, same coefficients, 5 seeds: task-IL 99.35 against 99.34, domain-IL
69.22 +- 5.99 against 72.28 +- 2.75, class-IL 19.81 against 19.74. No ordering in any setting: domain-IL's lower
l-MAS mean is one seed's doing; l-MAS minus MAS on seeds 0-4 is -12.26, +1.23, -5.91, +0.36 and +1.27
(-3.06 +- 5.95), l-MAS above on 3 of the 5 (Aljundi et al. report l-MAS forgetting somewhat more on their
sequences).

Row `mas` (rerun 2026-11-24 with `reduction=mean`: Hsu et al.'s Omega divided by the outputs read, as their code's
`pred[:, :valid_out_dim].pow(2).mean()`; before, by a fixed 2, which is right in task- and domain-IL but too
strong by up to 5 times for the later tasks in class-IL, where the outputs read grow 2, 4, ..., 10). Task- and
domain-IL are the same computation up to rounding: domain-IL seeds 1-4 moved by at most 0.15 points, seed 0 from
59.2 to 74.7 (domain-IL MAS at lambda 10000 is that sensitive); over 10 seeds domain-IL is 71.62 +- 5.16 against the
paper's 68.57 +- 6.85 (half a paper std; flagged by the 1.5-point rule only). Class-IL over 10 seeds is 20.32 +- 1.29
against the paper's 19.52 +- 0.29 (19.83 +- 0.23 over 5 seeds with the fixed divisor): with the weaker penalty two
seeds keep a little of the old classes (23.4 and 21.6), the other eight lie between 19.0 and 20.3. Not checked: the
one Adam of Hsu et al.'s code (point 1), which the weaker class-IL penalty may make matter here.

The domain-IL rows of MAS (and, in the paper, L2 and SI) vary a lot from seed to seed (MAS: std 6.85 in the
paper, 5.16 over our 10 seeds): a shared 2-way head decides between the two digits of every task, and whether the
penalty keeps the first tasks depends on the run. LwF's rows come from its own issue's runs; see its notes.

**LwF.** Task-IL agrees (99.62 against 99.60). Domain-IL (64.1 against 71.0) and class-IL (19.9 against 24.2) do
not, with Li & Hoiem's LwF as the issue asks for it. The paper's LwF numbers are those of van de Ven & Tolias's
benchmark code (GMvandeVen/continual-learning, 2019: encoder.py `train_a_batch`, train.py), which differs from Li &
Hoiem's LwF in three ways, each now an option or a row here:
(a) it weights the losses (1/t) L_new + (1 - 1/t) T^2 L_old, t the number of tasks so far (`--param
weighting=van-de-ven`; by the last task the old outputs weigh 16 times more relative to the new task than with
lambda_o = 1); (b) in the class setting it distils over every class seen so far, the teacher's targets padded with
0 for the new classes (`n_classes_to_consider = y_hat.size(1)`, "zeros will be added"; `--param
class_distillation=all-classes`), which also pushes the new classes' logits down on the new task's images; (c) it
trains 2000 iterations of 128 per task on split-MNIST, about 21 epochs of our tasks, not 4.
Domain-IL: (a) alone gives 75.3 +- 1.7 (row `lwf-vdv`, 4 epochs); (a) with (c) gives the paper's number (row
`lwf-vdv-2000it`, within one of the paper's standard deviations). So the domain-IL gap is explained: the paper's
LwF row was trained with that code's weighting and length, not the 4 epochs of the other rows.
Class-IL: with van de Ven's weighting it stays near 20 in every combination: (a) alone 19.9 (every old test image
goes to a new class, R[4][j] = 0.0 for j < 4); (a) with (b), row `lwf-vdv-all`, about 20.5, now the failure is the
other way round (the first task's classes keep most test images of every task and the last task scores near 0:
with weight 1/t on L_new and T^2 (1 - 1/t) = 3.2 on the padded distillation, the old classes win on the new
images); (a), (b) and (c), row `lwf-vdv-2000it`, about 20; and with that code's single Adam too, row
`lwf-vdv-2000it-1adam`, still 20.3 (its domain-IL stays at the paper's number). Li & Hoiem's weighting
(lambda_o = 1) with (b) and (c), row `lwf-all-2000it`, gives 23.98 +- 0.73 over 5 seeds against the paper's
24.17 +- 0.33, within one of the paper's standard deviations: padding the distillation with 0 for the new classes
is what lets the old classes survive in a growing head, with the training length of that code. The same row gives
65.4 in domain-IL (paper 71.0) and 99.77 in task-IL. So each of the paper's LwF numbers is reproduced by one
configuration of ours (task-IL: any; domain-IL: van de Ven's weighting and length; class-IL: Li & Hoiem's weighting,
padding and that length), but no single configuration reproduces all three; we read the weighting in van de Ven's
code as (1/t) L_new + (1 - 1/t) L_old in every setting and found nothing there that changes it in the class setting.
Not tried: that code's unnormalised [0, 1] inputs.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default=PAPER_ROWS, help="comma-separated rows of the table")
    parser.add_argument("--settings", default="task,domain,class")
    parser.add_argument("--seeds", type=int, default=5, help="seeds FIRST .. FIRST + N - 1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.render_only:
        pin_threads()
        rows = [m.strip() for m in args.methods.split(",") if m.strip()]
        reproduce("hsu2018-split-mnist", rows, args.settings.split(","),
                  range(args.first_seed, args.first_seed + args.seeds), RESULTS, args.data_dir or data_dir(),
                  download=False, epochs=args.epochs, notes=NOTES, log=lambda line: print(line, flush=True))
    save_table(RESULTS, NOTES)
    print(f"wrote {RESULTS / 'hsu2018_split_mnist.md'}")


if __name__ == "__main__":
    main()
