"""The reservoir buffer: Vitter's algorithm R vectorised (the same slots as one sample at a time on the same draws),
each of N offers kept with probability M / N, uniform draws without replacement, fields kept with their width, and
a checkpoint that continues exactly."""

import torch

from lifelong.buffers import ReservoirBuffer, reservoir_slots


def algorithm_r(capacity: int, n_items: int, batches: list[int], seed: int) -> list[int]:
    """Algorithm R one item at a time, on the draws the buffer makes (one float64 per item of each batch): which
    item is in each slot at the end (-1: empty)."""
    generator = torch.Generator().manual_seed(seed)
    slots, seen = [-1] * capacity, 0
    for b in batches:
        u = torch.rand(b, generator=generator, dtype=torch.float64).tolist()
        for k in range(b):
            if seen < capacity:
                slots[seen] = seen
            else:
                j = int(u[k] * (seen + 1))  # uniform on 0 .. seen
                if j < capacity:
                    slots[j] = seen
            seen += 1
    assert seen == n_items
    return slots


def fill(capacity, batches, seed, **fields):
    buffer = ReservoirBuffer(capacity, torch.Generator().manual_seed(seed))
    start = 0
    for b in batches:
        ids = torch.arange(start, start + b)
        buffer.add(ids.float().unsqueeze(1), ids, torch.zeros(b, dtype=torch.long),
                   **{k: v(ids) for k, v in fields.items()})
        start += b
    return buffer


def test_the_vectorised_insertion_is_algorithm_r_on_the_same_draws():
    for capacity, batches in ((50, [10] * 40), (7, [3, 64, 1, 5, 200]), (100, [250]), (30, [10, 10, 5])):
        for seed in range(3):
            buffer = fill(capacity, batches, seed)
            expected = algorithm_r(capacity, sum(batches), batches, seed)
            stored = buffer.data["targets"][:len(buffer)].tolist()
            assert stored == expected[:len(buffer)], (capacity, batches, seed)
            assert buffer.seen == sum(batches) and len(buffer) == min(capacity, sum(batches))


def test_a_later_item_of_a_batch_wins_a_shared_slot():
    u = torch.tensor([0.0, 0.0, 0.99])  # items 0 and 1 both drawn for slot 0
    assert reservoir_slots(4, 4, u.double()).tolist() == [0, 0, -1]
    buffer = ReservoirBuffer(4)
    buffer.seen = 4
    buffer.data = {"x": torch.zeros(4, 1), "targets": torch.full((4,), -5), "task_ids": torch.zeros(4, dtype=torch.long)}
    buffer.generator = type("G", (), {})()  # the draws are given below
    import lifelong.buffers as module
    original = module.torch.rand
    try:
        module.torch.rand = lambda *a, **k: u.double()
        buffer.add(torch.zeros(3, 1), torch.tensor([10, 11, 12]), torch.zeros(3, dtype=torch.long))
    finally:
        module.torch.rand = original
    assert buffer.data["targets"].tolist() == [11, -5, -5, -5]


def test_every_offer_is_kept_with_probability_capacity_over_offers():
    capacity, n, trials = 20, 200, 300
    kept = torch.zeros(n)
    for seed in range(trials):
        buffer = fill(capacity, [20] * (n // 20), seed)
        kept[buffer.data["targets"]] += 1
    frequency = kept / trials
    p = capacity / n  # 0.1: each item's count is Binomial(300, 0.1); the mean of 50 items' frequencies has sd 0.0025
    for part in (frequency[:50], frequency[75:125], frequency[-50:]):  # early, middle and late offers alike
        assert abs(part.mean().item() - p) < 0.01, part.mean()
    assert kept.sum().item() == capacity * trials  # exactly `capacity` kept in each trial


def test_draws_are_uniform_without_replacement():
    buffer = fill(30, [10] * 10, 0)
    counts = torch.zeros(100)
    for _ in range(2000):
        x, targets, task_ids, _ = buffer.sample(10)
        assert len(set(targets.tolist())) == 10  # without replacement
        assert torch.equal(x.squeeze(1).long(), targets)
        counts[targets] += 1
    stored = counts[counts > 0]
    assert len(stored) == 30 and (stored / 2000 - 1 / 3).abs().max() < 0.05  # each slot in a third of the draws
    assert len(buffer.sample(500)[1]) == 30  # at most what it holds


def test_fields_keep_their_width_when_the_head_grows():
    buffer = ReservoirBuffer(8, torch.Generator().manual_seed(0))
    buffer.add(torch.zeros(4, 1), torch.arange(4), torch.zeros(4, dtype=torch.long), logits=torch.ones(4, 2))
    buffer.add(torch.zeros(4, 1), torch.arange(4, 8), torch.ones(4, dtype=torch.long), logits=torch.full((4, 5), 2.))
    _, targets, _, fields = buffer.sample(8)
    for t, row, width in zip(targets, fields["logits"], fields["logits_width"]):
        assert width == (2 if t < 4 else 5)
        assert row.tolist() == ([1.0, 1.0, 0, 0, 0] if t < 4 else [2.0] * 5)


def test_a_checkpoint_continues_exactly():
    whole = fill(25, [10] * 12, 4, logits=lambda ids: ids.float().unsqueeze(1).repeat(1, 3))
    first = fill(25, [10] * 6, 4, logits=lambda ids: ids.float().unsqueeze(1).repeat(1, 3))
    resumed = ReservoirBuffer(25, torch.Generator())
    resumed.load_state_dict(first.state_dict())
    for start in range(60, 120, 10):
        ids = torch.arange(start, start + 10)
        resumed.add(ids.float().unsqueeze(1), ids, torch.zeros(10, dtype=torch.long),
                    logits=ids.float().unsqueeze(1).repeat(1, 3))
    for name in whole.data:
        assert torch.equal(whole.data[name], resumed.data[name]), name
    assert torch.equal(whole.sample(7)[1], resumed.sample(7)[1])
