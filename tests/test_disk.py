"""Data read from disk through a DataLoader (`from_data(folder, on_disk=True)`): the same batches, hence the same
numbers, as the in-memory path."""

import numpy as np
import pytest
import torch
from PIL import Image

from lifelong.data.user import ImageFiles
from lifelong.errors import ConfigError
from lifelong.experiment import run_experiment
from lifelong.scenarios import from_data, in_memory

FAST = dict(epochs=3, batch_size=32, lr=0.001, optimizer="adam", hidden=(64,))


@pytest.fixture(scope="module")
def omniglot_folder(shared_data, tmp_path_factory):
    """20 Omniglot characters x 20 drawings as 28x28 PNGs (ink white on black), one folder per character."""
    root = tmp_path_factory.mktemp("omniglot")
    with np.load(shared_data / "omniglot" / "omniglot_full.npz") as arrays:
        drawings = arrays["background_x"][:20]  # (20 characters, 20 drawings, 105, 105), ink 0 on 255
    for c, character in enumerate(drawings):
        (root / f"character{c:02d}").mkdir()
        for d, image in enumerate(character):
            Image.fromarray(255 - image).resize((28, 28), Image.BOX).save(root / f"character{c:02d}" / f"{d:02d}.png")
    return root


def test_disk_and_memory_give_the_same_accuracy_matrix(omniglot_folder):
    on_disk = from_data(omniglot_folder, n_tasks=5, test_fraction=0.25, validation_fraction=0.2, workers=2,
                        on_disk=True)
    assert isinstance(on_disk.tasks[0].x_train, ImageFiles) and on_disk.tasks[0].x_train.workers == 2
    assert [len(t.x_train) for t in on_disk.tasks] == [48] * 5  # 4 characters x (15 - 3 held out for validation)
    loaded = in_memory(on_disk)
    assert isinstance(loaded.tasks[0].x_train, torch.Tensor) and loaded.tasks[0].x_train.shape == (48, 1, 28, 28)
    mean = torch.cat([t.x_train for t in loaded.tasks]).mean().item()
    assert abs(mean) < 0.1  # normalised with the training images' statistics, from the streaming pass
    disk = run_experiment("finetune", on_disk, "class", **FAST)
    memory = run_experiment("finetune", loaded, "class", **FAST)
    assert disk["accuracy_matrix"] == memory["accuracy_matrix"]  # the same batches: the same numbers, to the last bit
    assert disk["validation_accuracy_matrix"] == memory["validation_accuracy_matrix"]
    assert disk["epoch_loss"] == memory["epoch_loss"]
    assert disk["accuracy_matrix"][0][0] > 0.5  # 4 characters: learnt, not chance


def test_methods_that_keep_or_reread_data_refuse_the_disk_path(omniglot_folder):
    on_disk = from_data(omniglot_folder, n_tasks=5, on_disk=True, workers=0)
    with pytest.raises(ConfigError, match="replay needs its training data in memory"):
        run_experiment("replay", on_disk, "class", method_options={"memory": 40}, **FAST)
    with pytest.raises(ConfigError, match="reads an image folder"):
        from_data(np.zeros((4, 2), dtype=np.float32), ["a", "a", "b", "b"], n_tasks=1, on_disk=True)
