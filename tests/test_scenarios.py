import hashlib

import pytest
import torch

from lifelong.data import Omniglot, load_digits, load_mnist, load_omniglot, omniglot_split
from lifelong.errors import ConfigError
from lifelong.benchmarks import make_scenario
from lifelong.scenarios import class_order, permuted, prepare_inputs, split_by_classes


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _rows(x):
    return {tuple(row.tolist()) for row in x.flatten(1)}


def test_split_partitions_the_classes_and_samples_exactly(digits):
    scenario = split_by_classes(digits, 5, class_order_seed=7)
    classes = [c for task in scenario for c in task.classes]
    assert sorted(classes) == list(range(10)) and classes == scenario.class_order
    assert sum(len(t.x_train) for t in scenario) == len(digits.x_train)
    assert sum(len(t.x_test) for t in scenario) == len(digits.x_test)
    x_train, x_test, _ = prepare_inputs(digits)
    for task in scenario:
        # within-task label k is data-set class task.classes[k]; samples are those of the task's classes only
        labels = torch.tensor(task.classes)[task.y_train]
        expected = torch.isin(digits.y_train, torch.tensor(task.classes))
        assert torch.equal(labels.sort().values, digits.y_train[expected].sort().values)
        assert torch.equal(task.x_train, x_train[expected])
        test_expected = torch.isin(digits.y_test, torch.tensor(task.classes))
        assert torch.equal(task.x_test, x_test[test_expected])


def test_test_data_never_enters_training(digits):
    scenario = split_by_classes(digits, 5, validation_fraction=0.2)
    train = set().union(*(_rows(t.x_train) for t in scenario))
    val = set().union(*(_rows(t.x_val) for t in scenario))
    test = set().union(*(_rows(t.x_test) for t in scenario))
    x_train, x_test, _ = prepare_inputs(digits)
    assert test == _rows(x_test)  # the test set is exactly the data set's test split
    assert train | val == _rows(x_train)  # training and validation come from the training split only
    assert sum(len(t.x_train) + len(t.x_val) for t in scenario) == len(x_train)


def test_validation_split_is_stratified_and_seeded(digits):
    a = split_by_classes(digits, 5, validation_fraction=0.2, seed=1)
    b = split_by_classes(digits, 5, validation_fraction=0.2, seed=1)
    for ta, tb in zip(a, b):
        assert torch.equal(ta.x_val, tb.x_val)
        for k in range(ta.n_classes):
            n_k = int((ta.y_train == k).sum() + (ta.y_val == k).sum())
            assert int((ta.y_val == k).sum()) == round(0.2 * n_k)


def test_natural_and_icarl_class_orders():
    assert class_order(10, None) == list(range(10))
    # iCaRL / PyCIL's CIFAR-100 order: np.random.seed(1993); np.random.permutation(100)
    assert class_order(100, 1993)[:12] == [68, 56, 78, 8, 23, 84, 90, 65, 74, 76, 40, 89]


def test_permuted_tasks_shuffle_pixels_consistently(digits):
    scenario = permuted(digits, 3, seed=0)
    x_train, _, _ = prepare_inputs(digits)
    assert torch.equal(scenario.tasks[0].x_train, x_train)
    for task in scenario.tasks[1:]:
        assert torch.equal(task.y_train, digits.y_train) and task.classes == list(range(10))
        # the same permutation for every image: sorted pixel values unchanged, and a fixed pixel mapping
        assert torch.equal(task.x_train.flatten(1).sort(1).values, x_train.flatten(1).sort(1).values)
        assert not torch.equal(task.x_train, x_train)


def test_bad_arguments_are_clear(digits):
    with pytest.raises(ConfigError, match="must divide"):
        split_by_classes(digits, 3)
    with pytest.raises(ConfigError, match="unknown scenario 'split-imagenet'"):
        make_scenario("split-imagenet")
    with pytest.raises(ConfigError, match="5 or 10"):
        make_scenario("split-cifar100", n_tasks=4)
    with pytest.raises(ConfigError, match="validation_fraction"):
        split_by_classes(digits, 5, validation_fraction=1.5)
    # every class keeps at least one sample on each side of the split
    with pytest.raises(ConfigError, match="validation_fraction 0.999 holds out .* each class needs at least one"):
        split_by_classes(digits, 5, validation_fraction=0.999)
    with pytest.raises(ConfigError, match="holds out 0 of"):
        split_by_classes(digits, 5, validation_fraction=0.001)
    for seed in (-1, 2**32, 1.5):
        with pytest.raises(ConfigError, match="class-order seed must be an integer"):
            split_by_classes(digits, 5, class_order_seed=seed)


def test_permuted_tasks_share_one_validation_split_and_keep_their_permutations_with_it(digits):
    """The validation images are held out of every task (never another task's training images, permuted), and
    turning validation on does not change the tasks' permutations (one seed, one benchmark)."""
    plain, validated = permuted(digits, 3, seed=0), permuted(digits, 3, seed=0, validation_fraction=0.1)
    for a, b in zip(plain.tasks, validated.tasks):
        torch.testing.assert_close(a.x_test, b.x_test)
    def images(x):  # each image's pixel values, sorted: the same whatever the permutation
        return sorted(map(tuple, x.flatten(1).sort(1).values.tolist()))

    for task in validated.tasks[1:]:  # the same training and validation images as task 0, permuted
        assert images(task.x_train) == images(validated.tasks[0].x_train)
        assert images(task.x_val) == images(validated.tasks[0].x_val)


def test_split_mnist_padded_statistics_match_hsu_et_al(shared_data):
    # Hsu et al. 2018 normalise MNIST zero-padded to 32x32 with mean 0.1000 and std 0.2752
    mnist = load_mnist(shared_data, download=False)
    x = torch.nn.functional.pad(mnist.x_train.float() / 255, (2, 2, 2, 2))
    assert x.mean().item() == pytest.approx(0.1000, abs=5e-5)
    assert x.std().item() == pytest.approx(0.2752, abs=5e-5)
    scenario = make_scenario("split-mnist", data_dir=shared_data, download=False)
    assert [t.classes for t in scenario] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert scenario.input_shape == (1, 32, 32)
    assert [len(t.x_test) for t in scenario] == [2115, 2042, 1874, 1986, 1983]
    pooled = torch.cat([t.x_train for t in scenario])
    assert pooled.mean().item() == pytest.approx(0.0, abs=1e-4) and pooled.std().item() == pytest.approx(1.0, abs=1e-3)


@pytest.fixture(scope="module")
def omniglot_dir(shared_data):
    if not (shared_data / "omniglot" / "omniglot_full.npz").is_file():
        pytest.skip(f"omniglot_full.npz not found in {shared_data / 'omniglot'}")
    return shared_data


@pytest.fixture(scope="module")
def split_omniglot(omniglot_dir):
    return make_scenario("split-omniglot", data_dir=omniglot_dir, download=False)


def test_split_omniglot_tasks_classes_and_sizes(split_omniglot):
    scenario = split_omniglot
    assert len(scenario) == 10 and scenario.input_shape == (1, 28, 28) and scenario.backbone == "mlp"
    assert scenario.class_order == list(range(200)) and scenario.config["class_order_seed"] is None
    assert [t.classes for t in scenario] == [list(range(20 * t, 20 * t + 20)) for t in range(10)]
    assert scenario.class_names[0] == "Alphabet_of_the_Magi/character01"
    assert scenario.class_names[199] == "Bengali/character20"
    assert scenario.config["omniglot"]["characters"] == 200 and scenario.config["omniglot"]["train_drawings"] == 15
    for task in scenario:  # 15 drawings of every character to train on, 5 to test on
        assert torch.equal(torch.bincount(task.y_train), torch.full((20,), 15))
        assert torch.equal(torch.bincount(task.y_test), torch.full((20,), 5))
    train = set().union(*(_rows(t.x_train) for t in scenario))
    test = set().union(*(_rows(t.x_test) for t in scenario))
    assert len(train) == 3000 and len(test) == 1000 and not train & test


def test_split_omniglot_class_order_and_number_of_tasks(omniglot_dir):
    scenario = make_scenario("split-omniglot", data_dir=omniglot_dir, n_tasks=5, class_order_seed=3, download=False)
    assert scenario.class_order == class_order(200, 3) and scenario.config["class_order_seed"] == 3
    assert [len(t.classes) for t in scenario] == [40] * 5
    assert [c for t in scenario for c in t.classes] == scenario.class_order
    with pytest.raises(ConfigError, match="must divide"):
        make_scenario("split-omniglot", data_dir=omniglot_dir, n_tasks=3, download=False)


def test_omniglot_split_partitions_each_characters_drawings_whatever_their_stored_order(omniglot_dir):
    full = load_omniglot(omniglot_dir, subset="background", download=False)
    few = Omniglot(full.images[:3], full.characters[:3], full.subsets[:3])
    dataset = omniglot_split(few, n_train=15, side=105)  # full size: the pixels come back exactly
    assert dataset.x_train.shape == (45, 1, 105, 105) and dataset.x_test.shape == (15, 1, 105, 105)
    def hashes(x):
        return {hashlib.sha1(image.numpy().tobytes()).hexdigest() for image in (255 - x * 255).round().byte()}
    for c in range(3):
        train, test = hashes(dataset.x_train[dataset.y_train == c]), hashes(dataset.x_test[dataset.y_test == c])
        assert len(train) == 15 and len(test) == 5 and not train & test
        assert train | test == hashes(1 - few.images[c].unsqueeze(1).float() / 255)
    # the npz and the official zips store the drawings in different orders: the split is the same
    shuffled = Omniglot(few.images[:, torch.randperm(20, generator=torch.Generator().manual_seed(0))],
                        few.characters, few.subsets)
    again = omniglot_split(shuffled, n_train=15, side=105)
    assert torch.equal(again.x_train, dataset.x_train) and torch.equal(again.x_test, dataset.x_test)
    small = omniglot_split(few, n_train=15)
    assert small.x_train.shape == (45, 1, 28, 28) and 0 <= small.x_train.min() < small.x_train.max() <= 1
    assert small.x_train.mean() < 0.2  # inverted: the strokes are 1, the paper 0
    with pytest.raises(ConfigError, match="20 drawings"):
        omniglot_split(few, n_train=20)


def test_permuted_tasks_make_their_images_when_read_and_share_one_copy():
    """The memory of a permuted scenario does not grow with its tasks: each keeps a permutation, not images;
    the images read are exactly the permuted originals (so the numbers are those of materialised tasks)."""
    import torch

    from lifelong.data import load_dataset
    from lifelong.scenarios import permuted

    digits = load_dataset("digits")
    scenario = permuted(digits, n_tasks=4, seed=3, validation_fraction=0.1)
    first, third = scenario.tasks[0], scenario.tasks[2]
    assert first._train is third._train and first._test is third._test  # one copy of the images for all tasks
    base = first.x_train  # task 1 keeps the original pixel order
    flat = third.x_train.flatten(1)
    assert torch.equal(flat, base.flatten(1)[:, third.perm])
    assert torch.equal(third.x_test.flatten(1), first.x_test.flatten(1)[:, third.perm])
    assert torch.equal(third.x_val.flatten(1), first.x_val.flatten(1)[:, third.perm])
    assert len(third.y_train) + len(third.y_val) == len(digits.y_train)
    again = permuted(digits, n_tasks=4, seed=3, validation_fraction=0.1)
    assert torch.equal(again.tasks[2].perm, third.perm)  # seeded


def test_raw_inputs_prepared_as_the_scenario_prepared_its_own(digits):
    """A learner after a run takes the data set's raw inputs (`prepare_raw` with the recorded preparation): the
    same numbers as the scenario's tasks, padding included."""
    from lifelong.learner import as_inputs
    from lifelong.scenarios import prepare_raw

    x_train, x_test, preparation = prepare_inputs(digits, pad_to=12)
    assert x_test.shape[-2:] == (12, 12) and preparation["pad_to"] == 12
    assert torch.allclose(prepare_raw(as_inputs(digits.x_test), preparation), x_test, atol=1e-6)
    assert torch.allclose(prepare_raw(as_inputs(digits.x_train[:7]), preparation), x_train[:7], atol=1e-6)
    assert split_by_classes(digits, 5, pad_to=12).input_preparation == preparation


def test_an_uneven_split_gives_the_first_tasks_one_class_more():
    digits = load_digits()  # 10 classes
    scenario = split_by_classes(digits, 3, class_order_seed=7, uneven=True)
    assert [task.n_classes for task in scenario.tasks] == [4, 3, 3]
    order = class_order(10, 7)
    assert [task.classes for task in scenario.tasks] == [order[:4], order[4:7], order[7:]]
    for task in scenario.tasks:  # within-task labels: each sample's class is classes[label]
        assert torch.equal(torch.tensor(task.classes)[task.y_train].sort().values,
                           digits.y_train[torch.isin(digits.y_train, torch.tensor(task.classes))].sort().values)
    assert sum(len(task.y_test) for task in scenario.tasks) == len(digits.y_test)
    with pytest.raises(ConfigError, match="n_tasks must divide it"):
        split_by_classes(digits, 11, uneven=True)
