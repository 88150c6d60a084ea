"""What the stream rehearsal methods' speed work changed, with the behaviour it must keep (speed itself is measured
in benchmarks/stream_speed.py, never here): the reservoir buffer's insertion is algorithm R whichever path a batch
takes (free slots, the batch that fills the last of them, a full buffer) and writes the same rows; a draw without
the extra fields is the same draw; DER++'s one forward pass gives the loss and gradients of Mammoth's three, and a
model with batch normalisation keeps the three; the MSE's shortcut for full-width logits is the masked formula;
A-GEM's flattened projection is the per-parameter rule."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lifelong.buffers import ReservoirBuffer
from lifelong.experiment import build_method
from lifelong.methods.agem import project
from lifelong.methods.der import DER, pools_over_the_batch
from lifelong.models import MLP, ContinualModel
from lifelong.scenarios import Task


def one_at_a_time(capacity, batches, seed, width=3):
    """The buffer's contents after `batches`, by algorithm R one item at a time on the buffer's own draws: for each
    slot, (item id, its logits row) or None."""
    generator = torch.Generator().manual_seed(seed)
    slots, seen = [None] * capacity, 0
    for b in batches:
        u = torch.rand(b, generator=generator, dtype=torch.float64).tolist()
        for k in range(b):
            j = seen if seen < capacity else int(u[k] * (seen + 1))
            if j < capacity:
                slots[j] = seen
            seen += 1
    return slots


def offer(buffer, start, b, width=3):
    ids = torch.arange(start, start + b)
    buffer.add(ids.float().unsqueeze(1).repeat(1, 2), ids, ids % 2, logits=ids.float().unsqueeze(1).repeat(1, width))


@pytest.mark.parametrize("capacity,batches", [(20, [5, 5, 5, 5, 5, 40, 1, 3]),  # exactly full, then past it
                                              (20, [7, 7, 7, 128, 10]),  # a batch fills the last free slots
                                              (5, [128] * 3), (50, [10] * 30)])
def test_every_path_of_the_insertion_writes_algorithm_r_rows(capacity, batches):
    for seed in range(3):
        buffer = ReservoirBuffer(capacity, torch.Generator().manual_seed(seed))
        start = 0
        for b in batches:
            offer(buffer, start, b)
            start += b
        expected = one_at_a_time(capacity, batches, seed)
        n = len(buffer)
        assert buffer.data["targets"][:n].tolist() == expected[:n]
        # every field's row is the same item's
        ids = buffer.data["targets"][:n].float()
        assert torch.equal(buffer.data["x"][:n], ids.unsqueeze(1).repeat(1, 2))
        assert torch.equal(buffer.data["task_ids"][:n], buffer.data["targets"][:n] % 2)
        assert torch.equal(buffer.data["logits"][:n], ids.unsqueeze(1).repeat(1, 3))
        assert buffer.widths["logits"][:n].tolist() == [3] * n and buffer.narrowest["logits"] == 3


def test_a_narrower_row_is_zero_beyond_its_width_on_every_path_and_lowers_the_bound():
    buffer = ReservoirBuffer(4, torch.Generator().manual_seed(0))
    offer(buffer, 0, 4, width=2)  # free slots
    for start in range(4, 400, 4):  # a full buffer: some rows replaced by wider ones
        offer(buffer, start, 4, width=5)
    assert buffer.narrowest["logits"] == 2
    for row, width, target in zip(buffer.data["logits"], buffer.widths["logits"], buffer.data["targets"]):
        assert width == (2 if target < 4 else 5)
        assert row.tolist() == [float(target)] * int(width) + [0.0] * (5 - int(width))
    # a checkpoint gives the bound of what it holds
    loaded = ReservoirBuffer(4)
    loaded.load_state_dict(buffer.state_dict())
    assert loaded.narrowest["logits"] == int(buffer.widths["logits"].min())
    # narrower rows into a wider store, on both paths: zero beyond their width
    for first in (2, 4):  # free slots left for the narrow rows; none
        buffer = ReservoirBuffer(4, torch.Generator().manual_seed(0))
        offer(buffer, 0, first, width=5)
        for start in range(first, 400, 2):
            offer(buffer, start, 2, width=2)
        narrow = buffer.widths["logits"] == 2
        assert narrow.any() and buffer.narrowest["logits"] == 2
        assert (buffer.data["logits"][narrow, 2:] == 0).all()
        ids = buffer.data["targets"][narrow].float().unsqueeze(1)
        assert torch.equal(buffer.data["logits"][narrow, :2], ids.repeat(1, 2))


def test_a_draw_without_the_extra_fields_is_the_same_draw():
    a = ReservoirBuffer(30, torch.Generator().manual_seed(1))
    for start in range(0, 100, 10):
        offer(a, start, 10)
    b = copy.deepcopy(a)
    x, y, t, fields = a.sample(7)
    x2, y2, t2, none = b.sample(7, fields=False)
    assert torch.equal(x, x2) and torch.equal(y, y2) and torch.equal(t, t2)
    assert none == {} and set(fields) == {"logits", "logits_width"}
    assert torch.equal(a.sample(5)[1], b.sample(5)[1])  # the generators stay in step


def derpp(backbone, memory=8):
    torch.manual_seed(0)
    method = build_method("der++", ContinualModel(backbone), "class", {"memory": memory, "alpha": 0.3, "beta": 0.7})
    method.enter_stream([Task(0, [0, 1, 2], torch.randn(30, 4), torch.arange(30) % 3, torch.randn(3, 4),
                              torch.arange(3))])
    return method


def batch(seed, n=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(3, (n,), generator=g), torch.zeros(n, dtype=torch.long)


def loss_and_grads(method, x, y, t):
    method.model.zero_grad()
    loss = method.loss(x, y, t)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in method.model.parameters()]


def test_derpp_one_pass_gives_the_loss_and_gradients_of_three_passes():
    method = derpp(MLP(4, (8,)))
    assert method.one_pass and method.describe()["one_pass"]
    method.loss(*batch(1, 8))  # fills the buffer
    apart = copy.deepcopy(method)
    apart.one_pass = False  # Mammoth's three forward passes
    for seed in range(2, 6):
        x, y, t = batch(seed)
        loss, grads = loss_and_grads(method, x, y, t)
        loss_apart, grads_apart = loss_and_grads(apart, x, y, t)
        assert torch.allclose(loss, loss_apart, atol=1e-6)
        assert all(torch.allclose(g, h, atol=1e-6) for g, h in zip(grads, grads_apart))
        assert torch.equal(method.buffer.data["targets"], apart.buffer.data["targets"])  # the same draws and slots


def test_a_model_with_batch_normalisation_keeps_a_pass_per_batch():
    backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
    backbone.out_features = 8
    assert pools_over_the_batch(backbone) and not pools_over_the_batch(MLP(4, (8,)))
    method = derpp(backbone)
    assert not method.one_pass
    method.loss(*batch(1, 8))
    twin = copy.deepcopy(method.buffer)
    x, y, t = batch(2)
    loss = method.loss(x, y, t)
    model = method.model
    bx, _, _, fields = twin.sample(5)
    bx2, by2, _, _ = twin.sample(5)
    # each batch normalised by its own statistics: three passes
    expected = (F.cross_entropy(model(x), y) + 0.3 * F.mse_loss(model(bx), fields["logits"])
                + 0.7 * F.cross_entropy(model(bx2), by2))
    assert torch.allclose(loss, expected, atol=1e-6)
    together = model(torch.cat([x, bx, bx2]))[:5]
    assert not torch.allclose(together, model(x), atol=1e-3)  # one pass would not have been the same numbers


def test_the_mse_shortcut_is_the_masked_formula_at_full_width():
    g = torch.Generator().manual_seed(0)
    logits, stored = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    full = torch.full((6,), 4)
    assert torch.allclose(DER.logit_distance(logits, stored, full, full=True),
                          DER.logit_distance(logits, stored, full, full=False))
    # narrower stored rows: the shortcut is not taken even if asked (the stored columns decide)
    narrow = torch.tensor([2, 4, 4, 2, 4, 4])
    by_hand = sum(((logits[i, :w] - stored[i, :w]) ** 2).sum() for i, w in enumerate(narrow.tolist())) / 24
    stored_narrow = stored.clone()
    for i, w in enumerate(narrow.tolist()):
        stored_narrow[i, w:] = 0
    assert torch.allclose(DER.logit_distance(logits, stored_narrow, narrow), by_hand)
    assert torch.allclose(DER.logit_distance(logits, stored[:, :3], torch.full((6,), 3), full=True),
                          ((logits[:, :3] - stored[:, :3]) ** 2).sum() / 24)


def test_the_flattened_projection_is_the_per_parameter_rule():
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    for _ in range(30):
        g = [torch.randn(s, generator=gen) for s in shapes]
        r = [torch.randn(s, generator=gen) for s in shapes]
        dot = sum((a * b).sum() for a, b in zip(g, r))
        norm = sum((b * b).sum() for b in r)
        expected = [a - (dot / norm) * b for a, b in zip(g, r)] if dot < 0 else g
        out = project(g, r)
        assert [o.shape for o in out] == [a.shape for a in g]
        assert all(torch.allclose(o, e, atol=1e-6) for o, e in zip(out, expected))


def test_a_stream_with_sharp_boundaries_trains_on_the_task_inputs_themselves():
    """No copy of a task's inputs per task (a copy is the task's size in memory: 43 MB for 14,000 MNIST images)."""
    from lifelong.training import TrainConfig, stream_data

    tasks = [Task(t, [0, 1], torch.randn(20, 4), torch.arange(20) % 2, torch.randn(2, 4), torch.arange(2))
             for t in range(2)]
    method = build_method("er", ContinualModel(MLP(4, (8,))), "class", {"memory": 6})
    method.enter_stream(tasks)
    scenario = type("S", (), {"tasks": tasks})()
    x, targets, task_ids = stream_data(method, tasks[1], scenario, TrainConfig(stream=True, epochs=1))
    assert x.data_ptr() == tasks[1].x_train.data_ptr() and torch.equal(x, tasks[1].x_train)
    assert torch.equal(targets, tasks[1].y_train + 2) and torch.equal(task_ids, torch.ones(20, dtype=torch.long))
    # blurry boundaries still join the two tasks' parts
    blurred = stream_data(method, tasks[0], scenario, TrainConfig(stream=True, epochs=1, blurry=0.5))[0]
    assert len(blurred) == 30
