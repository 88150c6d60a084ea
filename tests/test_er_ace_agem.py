"""ER-ACE and A-GEM: ER-ACE's two cross-entropies by hand (the seen classes absent from the batch masked, the classes
to come kept, the replay term its own forward pass), its seen outputs from the labels offered; A-GEM's projection
on hand-made gradients, and an engine step that equals the projected step computed by hand; a stream of digits;
a resume with the same numbers."""

import copy

import pytest
import torch
import torch.nn.functional as F

from lifelong.benchmarks import make_scenario
from lifelong.errors import ConfigError
from lifelong.experiment import build_method, run_experiment
from lifelong.methods.agem import project
from lifelong.models import MLP, ContinualModel
from lifelong.scenarios import Task
from lifelong.training import _descender, make_optimizer, own_hook, TrainConfig

STREAM = dict(stream=True, batch_size=10, lr=0.03, optimizer="sgd", progress=False)


def tiny(name, setting="class", **options):
    """A method on a stream of two tasks (classes 0-2, then 3-4: a head of 5 outputs from the start)."""
    torch.manual_seed(0)
    method = build_method(name, ContinualModel(MLP(4, (8,))), setting, {"memory": 6, **options})
    tasks = [Task(0, [0, 1, 2], torch.randn(30, 4), torch.arange(30) % 3, torch.randn(3, 4), torch.arange(3)),
             Task(1, [3, 4], torch.randn(20, 4), torch.arange(20) % 2, torch.randn(2, 4), torch.arange(2))]
    if setting == "domain":
        tasks[1] = Task(1, [0, 1, 2], torch.randn(30, 4), torch.arange(30) % 3, torch.randn(3, 4), torch.arange(3))
    method.enter_stream(tasks)
    return method


def batch(seed, labels):
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor(labels)
    return torch.randn(len(labels), 4, generator=g), labels, torch.zeros(len(labels), dtype=torch.long)


# ---------------------------------------------------------------------------------------------- ER-ACE
def test_er_ace_loss_masks_the_seen_classes_absent_from_the_batch_by_hand():
    method = tiny("er-ace", minibatch=3)
    model = method.model
    x, y, t = batch(1, [0, 1, 0, 1])
    first = method.loss(x, y, t)
    # nothing seen yet: the incoming term runs over every output, the classes to come included; no replay
    assert torch.allclose(first, F.cross_entropy(model(x), y))
    assert method.seen_outputs.tolist() == [True, True, False, False, False]  # from the labels, no boundary
    x, y, t = batch(2, [0, 2, 2])
    twin = copy.deepcopy(method.buffer)  # the same draw, made again by hand
    loss = method.loss(x, y, t)
    masked = torch.tensor([False, True, False, False, False])  # seen (0, 1) and absent (1); 2 present; 3, 4 to come
    expected = F.cross_entropy(model(x).masked_fill(masked, float("-inf")), y)
    bx, by, _, _ = twin.sample(3)
    expected = expected + F.cross_entropy(model(bx), by)  # summed, over the whole head
    assert torch.allclose(loss, expected), (loss, expected)
    # not the unmasked loss, nor one that also masks the classes to come
    assert not torch.allclose(loss, F.cross_entropy(model(x), y) + F.cross_entropy(model(bx), by))
    future = torch.tensor([False, True, False, True, True])
    assert not torch.allclose(loss, F.cross_entropy(model(x).masked_fill(future, float("-inf")), y)
                              + F.cross_entropy(model(bx), by))
    assert method.seen_outputs.tolist() == [True, True, True, False, False]


def test_er_ace_masked_classes_get_no_push_from_the_incoming_batch():
    method = tiny("er-ace")  # an empty buffer: the incoming term alone
    method.seen_outputs = torch.tensor([True, True, False])  # outputs 0, 1 seen; a head of 5: 3, 4 to come
    x, y, t = batch(2, [0, 2])
    assert method.incoming_mask(y, 5).tolist() == [False, True, False, False, False]
    method.loss(x, y, t).backward()
    rows = torch.cat([part.weight.grad for part in method.model.head.parts]).abs().sum(1)
    assert rows[1] == 0 and (rows[[0, 2, 3, 4]] > 0).all(), rows  # seen and absent: no gradient; the rest pushed
    assert method.seen_outputs.tolist() == [True, True, True, False, False]


def test_er_ace_replay_is_its_own_forward_pass():
    method = tiny("er-ace", minibatch=3)
    seen = []
    forward = method.model.forward
    method.model.forward = lambda x: (seen.append(len(x)), forward(x))[1]
    method.loss(*batch(4, [0, 1, 2, 0, 1]))
    method.loss(*batch(5, [0, 1, 2, 0, 1]))
    assert seen == [5, 5, 3]  # the first step alone (an empty buffer), then the incoming batch, then the draw


def test_er_ace_in_the_domain_setting_masks_per_output():
    method = tiny("er-ace", setting="domain", minibatch=2)
    model = method.model
    method.loss(*batch(1, [0, 1, 2]))
    x, y, t = batch(2, [1, 1])
    twin = copy.deepcopy(method.buffer)
    loss = method.loss(x, y, t)
    bx, by, _, _ = twin.sample(2)
    expected = F.cross_entropy(model(x).masked_fill(torch.tensor([True, False, True]), float("-inf")), y)
    assert torch.allclose(loss, expected + F.cross_entropy(model(bx), by))


# ---------------------------------------------------------------------------------------------- A-GEM
def flat(vectors):
    return torch.cat([v.flatten() for v in vectors])


def orthogonal_part(g, r):
    return g - (g @ r) / (r @ r) * r


def test_projection_on_hand_made_gradients():
    # conflicting: g . g_ref = -1 < 0, g <- g - (-1 / 2) g_ref
    g, r = [torch.tensor([1.0, 0.0]), torch.tensor([[2.0]])], [torch.tensor([-1.0, 1.0]), torch.tensor([[0.0]])]
    out = project(g, r)
    assert torch.allclose(flat(out), torch.tensor([0.5, 0.5, 2.0]))
    assert out[1].shape == (1, 1)
    assert flat(out) @ flat(r) == pytest.approx(0.0, abs=1e-6)
    # not conflicting: unchanged
    g2 = [torch.tensor([1.0, 3.0]), torch.tensor([[2.0]])]
    assert torch.equal(flat(project(g2, r)), flat(g2))
    # a zero reference gradient: unchanged, no NaN
    zero = [torch.zeros(2), torch.zeros(1, 1)]
    assert torch.equal(flat(project(g, zero)), flat(g))
    # random pairs: afterwards g . g_ref >= 0, the part orthogonal to g_ref unchanged, and g unchanged if no conflict
    gen = torch.Generator().manual_seed(0)
    conflicts = 0
    for _ in range(50):
        g = [torch.randn(3, 4, generator=gen), torch.randn(5, generator=gen)]
        r = [torch.randn(3, 4, generator=gen), torch.randn(5, generator=gen)]
        fg, fr, fo = flat(g), flat(r), flat(project(g, r))
        scale = fg.abs().max() * fr.abs().max()
        assert fo @ fr >= -1e-5 * scale * len(fr)
        assert torch.allclose(orthogonal_part(fo, fr), orthogonal_part(fg, fr), atol=1e-5)
        if fg @ fr >= 0:
            assert torch.equal(fo, fg)
        else:
            conflicts += 1
            assert fo @ fr == pytest.approx(0.0, abs=1e-4 * float(scale))
    assert 10 < conflicts < 40


def agem_step(method, x, y, t, lr=0.1):
    """One step the engine's way: loss, backward, `before_step`, plain SGD."""
    optimizer = make_optimizer(method.trainable_parameters(), TrainConfig(lr=lr, momentum=0.0, progress=False))
    descend = _descender(optimizer, own_hook(method, "before_step"))
    descend(method.loss(x, y, t))


@pytest.mark.parametrize("conflict", [True, False])
def test_an_engine_step_is_the_projected_gradient_step_by_hand(conflict):
    method = tiny("a-gem", reference=4)
    x, y, t = batch(1, [0, 0, 1, 1])
    agem_step(method, x, y, t)  # an empty memory: a plain step; the memory then holds these 4 samples
    params = method.trainable_parameters()
    before = [p.detach().clone() for p in params]
    # the same inputs labelled with the classes to come conflict with the memory; the same labels agree
    y2 = torch.tensor([3, 3, 4, 4]) if conflict else y  # measured: cosine -0.38 with the memory's
    model = copy.deepcopy(method.model)
    bx, by, bt = copy.deepcopy(method.buffer).sample(4)[:3]
    hand = list(model.parameters())
    g = flat(torch.autograd.grad(F.cross_entropy(model(x), y2), hand))
    r = flat(torch.autograd.grad(F.cross_entropy(model(bx), by), hand))
    assert (g @ r < 0) == conflict
    step = g - (g @ r) / (r @ r) * r if conflict else g
    agem_step(method, x, y2, t)
    moved = flat([b - p.detach() for b, p in zip(before, params)])
    assert torch.allclose(moved, 0.1 * step, atol=1e-6), (moved - 0.1 * step).abs().max()
    if conflict:  # the projection made a difference the test sees
        assert not torch.allclose(moved, 0.1 * g, atol=1e-4)
        assert (moved @ r).abs() < 1e-5 * moved.norm() * r.norm()


def test_agem_reference_draw_comes_before_the_insertion():
    method = tiny("a-gem", reference=256)
    x, y, t = batch(1, [0, 1, 2])
    assert method.loss(x, y, t) is not None and method._reference is None  # an empty memory: no reference
    method.before_step()  # nothing to project
    method.loss(*batch(2, [0, 1]))
    bx, _, _ = method._reference
    assert len(bx) == 3  # the memory before this batch (all of it: fewer than 256), not this batch
    assert method.describe()["reference"] == 256


def test_options_are_checked():
    with pytest.raises(ConfigError, match="needs its size: add --memory N"):
        build_method("a-gem", ContinualModel(MLP(4, (8,))), "class", {})
    with pytest.raises(ConfigError, match="reference must be a positive number"):
        tiny("a-gem", reference=0)
    with pytest.raises(ConfigError, match="minibatch must be a positive number"):
        tiny("er-ace", minibatch=0)


# ---------------------------------------------------------------------------------------------- streams
@pytest.fixture(scope="module")
def digits():
    return make_scenario("split-digits")


def final(name, digits, **options):
    return run_experiment(name, digits, "class", method_options={"memory": 200} if name != "finetune" else {},
                          **{**STREAM, **options})["final_average_accuracy"]


def test_a_stream_of_digits_er_ace_beats_finetune_by_far(digits):
    # SGD with the library's momentum (0.9), as tests/test_rehearsal.py runs er and der++ (measured over 8 seeds:
    # er-ace 0.69 to 0.87, fine-tuning 0.10)
    ace, finetune = final("er-ace", digits), final("finetune", digits)
    assert finetune < 0.3 and ace > finetune + 0.35, (ace, finetune)


def test_a_stream_of_digits_agem_stays_above_chance(digits):
    # plain SGD, as the paper: A-GEM projects the gradient, and momentum's velocity carries the unprojected past
    # (measured with momentum 0.9: 0.10 to 0.19, chance). Measured over 10 seeds with plain SGD: a-gem 0.33 to
    # 0.50, fine-tuning 0.16 to 0.19 (single-head A-GEM forgets much; chance over 10 classes is 0.10)
    agem, finetune = final("a-gem", digits, momentum=0.0), final("finetune", digits, momentum=0.0)
    assert agem > 0.25 and agem > finetune + 0.05, (agem, finetune)


# ---------------------------------------------------------------------------------------------- A-GEM's episodic memory
def test_task_memory_adds_m_random_samples_of_each_finished_task_and_none_while_it_learns():
    """The paper's (and Mammoth's `agem`) memory: filled at task ends, m samples of the finished task; the steps of a
    task neither add to it nor, in the first task, draw a reference (an empty memory: plain SGD)."""
    torch.manual_seed(0)
    method = build_method("a-gem", ContinualModel(MLP(4, (8,))), "class", {"memory": 7, "task_memory": 3})
    tasks = [Task(0, [0, 1], torch.randn(10, 4), torch.arange(10) % 2, torch.randn(2, 4), torch.arange(2)),
             Task(1, [2, 3], torch.randn(12, 4), torch.arange(12) % 2, torch.randn(2, 4), torch.arange(2)),
             Task(2, [4, 5], torch.randn(8, 4), torch.arange(8) % 2, torch.randn(2, 4), torch.arange(2))]
    for task in tasks:
        method.before_task(task)
        x, y, t = method.training_data(task)
        method.loss(x[:5], y[:5], t[:5])
        assert (method._reference is None) == (task.id == 0)  # the first task: nothing to project against
        assert len(method.buffer) == min(3 * task.id, 7)  # the task's own steps add nothing
        method.after_task(task)
        assert len(method.buffer) == min(3 * (task.id + 1), 7)
    stored_x, stored_y, stored_t = (method.buffer.data[k][:len(method.buffer)] for k in ("x", "targets", "task_ids"))
    # 3 of each of the first two tasks while there was room, then the reservoir's rule for the third: 7 in all
    assert torch.bincount(stored_t, minlength=3)[:2].tolist() in ([3, 3], [3, 2], [2, 3])
    rows = []
    for sx, sy, st in zip(stored_x, stored_y, stored_t):  # real samples of their task, with their head's labels
        task = tasks[st]
        row = (task.x_train == sx).all(1).nonzero().squeeze(1)
        assert len(row) == 1 and sy == task.y_train[row] + 2 * task.id
        rows.append((int(st), int(row)))
    assert sorted(r for t, r in rows if t == 0) != [0, 1, 2]  # drawn at random, not the task's first samples
    assert method.describe()["task_memory"] == 3


def test_task_memory_is_refused_in_a_stream_and_the_reservoir_is_not(digits):
    with pytest.raises(ConfigError, match="a-gem with these options cannot learn from a stream: .*after_task"):
        run_experiment("a-gem", digits, "class", method_options={"memory": 50, "task_memory": 10}, **STREAM)
    with pytest.raises(ConfigError, match="task_memory must be a positive number"):
        tiny("a-gem", task_memory=0)
    boundaries = run_experiment("a-gem", digits, "class", method_options={"memory": 50, "task_memory": 10},
                                **{**STREAM, "stream": False, "epochs": 1})
    assert boundaries["method_details"]["buffer"]["stored"] == 50  # 10 of each of the five tasks, at their ends
    assert boundaries["method_details"]["buffer"]["seen"] == 50  # nothing offered during the tasks
