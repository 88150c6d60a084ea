"""Rotated MNIST, Buzzega et al.'s permuted MNIST and MNIST-360 (`lifelong.rotations`, `lifelong.benchmarks`): the
batched rotation against hand-made turns, seeded angles, and MNIST-360's stream (pairs, chunks, the proportional
mix of each batch, the draws and their angles, the test set) on small synthetic data sets; one test builds the
named benchmarks from the real MNIST."""

import math

import pytest
import torch

from lifelong.benchmarks import make_scenario
from lifelong.data import Dataset
from lifelong.errors import ConfigError
from lifelong.experiment import run_experiment
from lifelong.rotations import (chunk_sizes, mnist_360, mnist_360_angles, mnist_360_schedule, rotated,
                                rotation_angles)
from lifelong.scenarios import permuted
from lifelong.transforms import pad_gather, rotate, rotation_map

SIDE = 9  # odd: the centre pixel turns onto itself, and carries each synthetic image's id
CENTRE = SIDE // 2
TRAIN_COUNTS = (40, 41, 42, 43, 44, 45, 46, 47, 48, 5)  # class 9 (left out of MNIST-360) small
TEST_COUNTS = (3, 4, 5, 6, 7, 3, 4, 5, 6, 7)
TEST_ID = 512  # the test images' ids start here


def _synthetic(train_counts=TRAIN_COUNTS, test_counts=TEST_COUNTS, seed=0) -> Dataset:
    """Random images in [0, 1] (float, as the digits data set's), labels shuffled; image i's centre pixel is its id
    (training: i, test: TEST_ID + i) over 1024, exact in float32, so a turned copy still says which image it is."""
    g = torch.Generator().manual_seed(seed)

    def part(counts, first_id):
        y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
        y = y[torch.randperm(len(y), generator=g)]
        x = torch.rand(len(y), 1, SIDE, SIDE, generator=g)
        x[:, 0, CENTRE, CENTRE] = (first_id + torch.arange(len(y)) + 1) / 1024
        return x, y

    x, y = part(train_counts, 0)
    x_test, y_test = part(test_counts, TEST_ID)
    return Dataset("synthetic", x, y, x_test, y_test, [str(c) for c in range(len(train_counts))])


def _ids(x: torch.Tensor, first_id: int = 0) -> list[int]:
    return [round(v * 1024) - 1 - first_id for v in x[:, 0, CENTRE, CENTRE].tolist()]


# ---------------------------------------------------------------------------------------------- the rotation
def test_a_quarter_turn_is_rot90_and_a_pixel_moves_where_hand_turned():
    x = torch.rand(4, 2, 28, 28, generator=torch.Generator().manual_seed(0))
    for k, degrees in ((1, 90), (2, 180), (-1, -90), (-1, 270)):
        expected = torch.rot90(x, k, dims=(-2, -1))
        torch.testing.assert_close(rotate(x, degrees), expected, atol=0, rtol=0)  # nearest: the very pixels
        torch.testing.assert_close(rotate(x, degrees, "bilinear"), expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(rotate(x, 0), x, atol=0, rtol=0)
    # counter-clockwise as displayed (row 0 at the top): the pixel right of the centre goes above it
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 3] = 1.0
    turned = rotate(image, 90)[0, 0]
    assert turned[1, 2] == 1 and turned.sum() == 1
    # 45 degrees, 7x7: the pixel 3 right of the centre goes up-right on the diagonal. Nearest sampling reads,
    # for each output pixel, the input at the inverse turn of its position: (2, -2) (2 right, 2 up) reads
    # (2.83, 0), rounded (3, 0); no other output pixel reads it, so it appears once, at row 1, column 5
    image = torch.zeros(1, 1, 7, 7)
    image[0, 0, 3, 6] = 1.0
    assert torch.nonzero(rotate(image, 45)[0, 0]).tolist() == [[1, 5]]
    # a non-square image: a half turn is still a flip of both axes; the corners outside are zeros
    wide = torch.rand(3, 1, 6, 10)
    torch.testing.assert_close(rotate(wide, 180), wide.flip(-1, -2), atol=0, rtol=0)
    assert rotate(torch.ones(1, 1, 28, 28), 45)[0, 0, 0, 0] == 0


def test_one_angle_per_image_and_the_gather_form_agree_with_rotate():
    x = torch.rand(5, 3, 11, 13, generator=torch.Generator().manual_seed(1))
    angles = torch.tensor([0.0, 90.0, 33.3, 200.0, 359.0])
    each = rotate(x, angles)
    for i, a in enumerate(angles.tolist()):
        torch.testing.assert_close(each[i:i + 1], rotate(x[i:i + 1], a), atol=0, rtol=0)
        torch.testing.assert_close(pad_gather(x, rotation_map(11, 13, a)), rotate(x, a), atol=0, rtol=0)
    assert torch.equal(rotate(x, 90, chunk=2), rotate(x, 90))  # chunked grids: the same images
    with pytest.raises(ValueError, match="one angle or one per image"):
        rotate(x, [1.0, 2.0])


# ---------------------------------------------------------------------------------------------- rotated MNIST
def test_rotated_tasks_turn_every_image_by_their_seeded_angle():
    data = _synthetic()
    scenario = rotated(data, n_tasks=4, seed=3)
    angles = scenario.config["angles"]
    assert angles == rotation_angles(4, 3) == rotated(data, n_tasks=4, seed=3).config["angles"]
    assert angles != rotated(data, n_tasks=4, seed=4).config["angles"]
    assert len(set(angles)) == 4 and all(0 <= a < 180 for a in angles)
    assert len(scenario) == 4 and scenario.input_shape == (1, SIDE, SIDE)
    raw_train, raw_test = data.x_train, data.x_test  # as they are, not normalised
    for task, angle in zip(scenario.tasks, angles):
        assert task.classes == list(range(10)) and torch.equal(task.y_train, data.y_train)
        torch.testing.assert_close(task.x_train, rotate(raw_train, angle), atol=1e-6, rtol=0)
        torch.testing.assert_close(task.x_test, rotate(raw_test, angle), atol=1e-6, rtol=0)
        assert _ids(task.x_train) == list(range(len(data.y_train)))  # the same images, in the data set's order
    # the first task is turned too (Mammoth draws a Rotation for every task)
    assert not torch.allclose(scenario.tasks[0].x_train, raw_train)


def test_rotated_validation_is_one_split_held_out_of_every_task():
    data = _synthetic()
    scenario = rotated(data, n_tasks=3, seed=0, validation_fraction=0.25)
    held = set(_ids(scenario.tasks[0].x_val))
    for task in scenario.tasks:
        assert set(_ids(task.x_val)) == held and not held & set(_ids(task.x_train))
        assert len(task.y_train) + len(task.y_val) == len(data.y_train)
        assert task.x_val.shape[1:] == (1, SIDE, SIDE)


def test_permuted_mnist_der_permutes_every_task_and_keeps_pixels_in_unit_range():
    data = _synthetic()
    der = permuted(data, n_tasks=3, seed=5, permute_first=True, normalize=False)
    hsu = permuted(data, n_tasks=4, seed=5)
    assert der.tasks[0].perm is not None and hsu.tasks[0].perm is None
    for t in range(3):  # the same draws, one task earlier
        assert torch.equal(der.tasks[t].perm, hsu.tasks[t + 1].perm)
    raw = data.x_train
    x = der.tasks[0].x_train
    torch.testing.assert_close(x.flatten(1), raw.flatten(1)[:, der.tasks[0].perm], atol=1e-6, rtol=0)
    assert der.config["permute_first"] is True and der.config["normalize"] is False
    # the defaults record nothing new: runs made before keep their configuration (and can be resumed)
    assert "permute_first" not in hsu.config and "normalize" not in hsu.config


# ---------------------------------------------------------------------------------------------- MNIST-360
def test_the_schedule_by_hand():
    # chunks of n // 6 + 1, the last what is left (Mammoth's slices)
    assert chunk_sizes(40) == [7, 7, 7, 7, 7, 5] and chunk_sizes(23) == [4, 4, 4, 4, 4, 3]
    assert chunk_sizes(5923) == [988] * 5 + [983] and chunk_sizes(11, rounds=1) == [6, 5]
    with pytest.raises(ConfigError, match="class 1 has 13 training samples, which leaves a chunk empty"):
        mnist_360_schedule([40, 13] + [40] * 7, 4)  # 13: chunks of 3, 3 x 4 = 12, then 1 and nothing
    # the first segment: (0, 1), each class's last chunk; 5 and 3 left, batch 4
    first, second = mnist_360_schedule([40, 23] + [40] * 7, 4)[:2]
    assert first["classes"] == (0, 1) and first["chunks"] == (5, 5) and first["sizes"] == (5, 3)
    # round(5/8 * 4) = round(2.5) = 2 (halves to even), then 2 of class 1; left (3, 1): round(3/4 * 4) = 3, then 1
    assert first["batches"] == [(2, 2), (3, 1)]
    assert second["classes"] == (1, 2) and second["chunks"] == (4, 5) and second["sizes"] == (4, 5)
    # (6, 3): round(2.67) = 3 and 1; left (3, 2): round(2.4) = 2 and 2; left (1, 0): the segment ends, 1 dropped
    assert mnist_360_schedule([41, 23] + [40] * 7, 4)[0]["batches"] == [(3, 1), (2, 2)]
    # batch 1: one sample of the class with more left (a tie rounds 0.5 to 0: class b)
    assert mnist_360_schedule([40, 23] + [40] * 7, 1)[0]["batches"][:3] == [(1, 0), (1, 0), (0, 1)]


def test_the_schedule_pairs_chunks_and_proportional_batches():
    counts = [40, 41, 42, 43, 44, 45, 46, 47, 48]
    batch = 5
    segments = mnist_360_schedule(counts, batch)
    pairs = [s["classes"] for s in segments]
    assert pairs == [(a, (a + 1) % 9) for a in range(9)] * 3  # (0, 1), (1, 2), ..., (8, 0), three rounds
    used = {j: [] for j in range(9)}
    for s in segments:
        for label, chunk in zip(s["classes"], s["chunks"]):
            used[label].append(chunk)
        r_a, r_b = s["sizes"]
        assert s["sizes"] == tuple(chunk_sizes(counts[c])[k] for c, k in zip(s["classes"], s["chunks"]))
        for i, (b_a, b_b) in enumerate(s["batches"]):
            # the mix in proportion to what each class has left
            assert b_a == min(round(r_a / (r_a + r_b) * batch), r_a) and b_b == min(batch - b_a, r_b)
            assert abs(b_a - batch * r_a / (r_a + r_b)) <= 0.5 + 1e-9 or b_a == r_a
            last = i == len(s["batches"]) - 1
            assert (b_a + b_b == batch) or last  # full batches but a segment's last
            r_a, r_b = r_a - b_a, r_b - b_b
            assert (min(r_a, r_b) <= 0) == last  # the segment ends when either chunk is empty
    assert all(chunks == [5, 4, 3, 2, 1, 0] for chunks in used.values())  # each chunk once, from the last


@pytest.mark.parametrize("batch", [5, 9])
def test_mnist_360_stream_draws_turns_and_order(batch):
    data = _synthetic()
    scenario = mnist_360(data, batch_size=batch, replacement=False, seed=1)
    counts = [int((data.y_train == j).sum()) for j in range(9)]
    segments = mnist_360_schedule(counts, batch)
    assert len(scenario) == 27 and scenario.config["ordered"] and scenario.config["batch_size"] == batch
    assert all(task.ordered for task in scenario.tasks)  # so `--stream` feeds them as given, not shuffled
    assert scenario.config["pairs"] == [list(s["classes"]) for s in segments]
    raw = data.x_train
    members = [torch.nonzero(data.y_train == j).flatten().tolist() for j in range(9)]
    drawn, seen = [0] * 9, []
    for task, s in zip(scenario.tasks, segments):
        assert task.classes == list(range(9)) and task.n_classes == 9  # one 9-way head for every segment
        ids, labels = _ids(task.x_train), task.y_train.tolist()
        assert len(ids) == sum(a + b for a, b in s["batches"]) == scenario.config["segment_sizes"][task.id]
        assert [int(data.y_train[i]) for i in ids] == labels  # the labels are the digits of the images drawn
        start = 0
        for b_a, b_b in s["batches"]:  # class a's share first, then class b's: the stream's order
            assert labels[start:start + b_a + b_b] == [s["classes"][0]] * b_a + [s["classes"][1]] * b_b
            start += b_a + b_b
        for label, chunk in zip(s["classes"], s["chunks"]):
            size = chunk_sizes(counts[label])[0]
            mine = [k for k, lab in enumerate(labels) if lab == label]
            assert {ids[k] for k in mine} <= set(members[label][chunk * size:(chunk + 1) * size])
            # each draw turned by its class's next angle
            angles = mnist_360_angles(label, drawn[label], len(mine), counts[label])
            drawn[label] += len(mine)
            expected = rotate(raw[[ids[k] for k in mine]], torch.from_numpy(angles))
            torch.testing.assert_close(task.x_train[mine], expected, atol=1e-6, rtol=0)
        seen += ids
    # without replacement: no image twice; what a segment's end drops is never drawn (batch 5 drops 16 here,
    # batch 9 none: then every training image of 0-8 exactly once over the three rounds)
    dropped = sum(sum(s["sizes"]) - sum(a + b for a, b in s["batches"]) for s in segments)
    assert len(seen) == len(set(seen)) == sum(counts) - dropped and dropped == {5: 16, 9: 0}[batch]
    if not dropped:
        assert sorted(seen) == sorted(i for m in members for i in m) and drawn == counts
    # the angles by hand: class 1 starts at 0 (its first draw is the image itself), class 2 at 60, class 0 at
    # 300; each class turns once round: its last draw at start + (n - 1) * 360 / n
    first_of_1 = scenario.tasks[0].x_train[scenario.tasks[0].y_train == 1][0]
    assert torch.equal(first_of_1, raw[_ids(first_of_1[None])[0]])
    assert mnist_360_angles(2, 0, 1, 42)[0] == 60 and mnist_360_angles(0, 0, 1, 40)[0] == 300
    assert mnist_360_angles(0, 39, 1, 40)[0] == pytest.approx((300 + 39 * 9) % 360)


def test_mnist_360_draws_with_replacement_by_default_and_are_seeded():
    data = _synthetic()
    a, b, c = (mnist_360(data, batch_size=5, seed=s) for s in (0, 0, 1))
    assert a.config["replacement"] is True
    repeats = False
    for ta, tb, tc in zip(a.tasks, b.tasks, c.tasks):
        assert torch.equal(ta.x_train, tb.x_train) and torch.equal(ta.y_train, tc.y_train)
        ids = _ids(ta.x_train)
        repeats |= len(set(ids)) < len(ids)
    assert repeats  # Mammoth's fresh `next(iter(loader))` per draw: some images twice in a chunk
    assert any(not torch.equal(ta.x_train, tc.x_train) for ta, tc in zip(a.tasks, c.tasks))
    assert [len(t.y_train) for t in a.tasks] == [len(t.y_train) for t in c.tasks]  # counts are the schedule's


def test_mnist_360_test_set_is_every_test_image_of_0_to_8_turned_in_turn():
    data = _synthetic()
    scenario = mnist_360(data, batch_size=4)
    x_test, y_test = scenario.tasks[0].x_test, scenario.tasks[0].y_test
    assert all(t.x_test is x_test and t.y_test is y_test for t in scenario.tasks)  # one tensor for every segment
    ids = _ids(x_test, TEST_ID)
    assert len(ids) == len(set(ids)) == sum(TEST_COUNTS[:9])  # class 9 left out, the others once each
    raw = data.x_test
    start = 0
    for j in range(9):  # class by class, the k-th of class j (data set order) turned by k * 360 / n_j
        members = torch.nonzero(data.y_test == j).flatten().tolist()
        n = len(members)
        assert ids[start:start + n] == members and y_test[start:start + n].tolist() == [j] * n
        angles = torch.tensor([k * 360 / n for k in range(n)])
        torch.testing.assert_close(x_test[start:start + n], rotate(raw[members], angles), atol=1e-6, rtol=0)
        start += n


def test_mnist_360_validation_is_held_out_before_the_stream():
    data = _synthetic()
    scenario = mnist_360(data, batch_size=4, replacement=False, validation_fraction=0.2)
    val = set(_ids(scenario.tasks[0].x_val))
    train = set().union(*(_ids(t.x_train) for t in scenario.tasks))
    assert val and not val & train and all(t.x_val is scenario.tasks[0].x_val for t in scenario.tasks)
    assert len(val) == sum(round(0.2 * n) for n in TRAIN_COUNTS[:9])


def test_bad_mnist_360_and_rotated_arguments_are_one_line_errors():
    data = _synthetic()
    few = Dataset("few", data.x_train, data.y_train % 5, data.x_test, data.y_test % 5, list("01234"))
    for call, match in ((lambda: mnist_360(few), "streams the classes 0-8: few has 5"),
                        (lambda: mnist_360(data, batch_size=0), "batch size must be a positive integer"),
                        (lambda: mnist_360(data, rounds=0), "rounds must be a positive integer"),
                        (lambda: mnist_360(data, rounds=4), "leaves a chunk empty"),
                        (lambda: mnist_360(data, interpolation="cubic"), "interpolation must be one of"),
                        (lambda: rotated(data, n_tasks=0), "n_tasks must be a positive integer"),
                        (lambda: rotated(data, degrees=(90, 10)), "low <= high")):
        with pytest.raises(ConfigError, match=match) as error:
            call()
        assert "\n" not in str(error.value)


def test_make_scenario_maps_the_task_count_of_mnist_360_to_rounds(monkeypatch):
    import lifelong.benchmarks as benchmarks

    monkeypatch.setattr(benchmarks, "load_dataset", lambda *a, **k: _synthetic(train_counts=(60,) * 10))
    assert len(make_scenario("mnist-360", n_tasks=18)) == 18  # two rounds
    assert make_scenario("mnist-360").config["rounds"] == 3
    with pytest.raises(ConfigError, match="n_tasks must be a multiple of 9"):
        make_scenario("mnist-360", n_tasks=10)
    for name in ("mnist-360", "rotated-mnist"):
        with pytest.raises(ConfigError, match="no class order to shuffle"):
            make_scenario(name, class_order_seed=1)
    assert make_scenario("rotated-mnist", n_tasks=3, seed=2).config["angles"] == rotation_angles(3, 2)


def test_mnist_360_is_mixed_for_the_training_batch_and_a_stream_of_other_batches_is_refused(monkeypatch):
    """Mammoth cuts MNIST-360 for its --batch_size: the stream is mixed for the batch it is fed in; training a
    stream mixed for 16 in batches of 4 is refused in one line, before any training."""
    import lifelong.benchmarks as benchmarks

    monkeypatch.setattr(benchmarks, "load_dataset", lambda *a, **k: _synthetic(train_counts=(60,) * 10))
    assert make_scenario("mnist-360").config["batch_size"] == 16
    four = make_scenario("mnist-360", stream_batch_size=4)
    assert four.config["batch_size"] == 4
    y = four.tasks[0].y_train  # the pair (0, 1) in equal shares: every batch of 4 holds both digits
    assert all(set(y[i:i + 4].tolist()) == {0, 1} for i in range(0, len(y) - 4, 4))
    assert make_scenario("rotated-mnist", n_tasks=2, stream_batch_size=4).config == \
        make_scenario("rotated-mnist", n_tasks=2).config  # a scenario not mixed batch by batch does not depend on it
    with pytest.raises(ConfigError, match="mixed batch by batch for batches of 16, and the training batch is 4") \
            as error:
        run_experiment("er", make_scenario("mnist-360"), "domain", stream=True, batch_size=4, epochs=1,
                       method_options={"memory": 20}, progress=False)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------------------------------- real MNIST
def test_the_named_benchmarks_on_mnist(shared_data):
    rot = make_scenario("rotated-mnist", data_dir=shared_data, download=False)
    assert len(rot) == 20 and rot.input_shape == (1, 28, 28) and rot.config["angles"] == rotation_angles(20, 0)
    x = rot.tasks[0].x_test
    assert x.shape == (10000, 1, 28, 28) and x.min() == 0 and x.max() == 1  # ToTensor's range, not normalised

    perm = make_scenario("permuted-mnist-der", data_dir=shared_data, download=False)
    assert len(perm) == 20 and perm.input_shape == (1, 28, 28) and perm.tasks[0].perm is not None
    # ToTensor's MNIST, not normalised: the test images' mean pixel, 0.1325 (training 0.1307), whatever the order
    assert math.isclose(float(perm.tasks[0].x_test.mean()), 0.1325, abs_tol=1e-4)

    m360 = make_scenario("mnist-360", data_dir=shared_data, download=False)
    assert len(m360) == 27 and m360.input_shape == (1, 28, 28)
    # batch 16: nothing dropped, every class drawn as often as it has training samples: Mammoth's LENGTH, 54051
    assert sum(m360.config["segment_sizes"]) == 54051 == 60000 - 5949
    assert m360.config["segment_sizes"][0] == 983 + 1122  # the short last chunks of 0 (5923) and 1 (6742)
    assert len(m360.tasks[0].y_test) == 10000 - 1009 and int(m360.tasks[0].y_test.max()) == 8
