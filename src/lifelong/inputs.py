"""A task's inputs: a tensor in memory (the fast default) or images read from their files when needed
(`ImageFiles`: `from_data(folder, on_disk=True)`, for data that do not fit in memory).

Both are indexed alike: `x[i]` is one input, `x[indices]` (a slice, a list, an index or boolean tensor) the chosen
inputs, of the same kind (for `ImageFiles` a list of files: nothing is read). What else the engine and the methods do
with inputs is here, for both kinds: batches of given indices, batches in order, concatenation, reading into memory,
and the plain form a checkpoint stores."""

import torch
from torch.utils.data import DataLoader

from .data.user import ImageFiles


def input_batches(x, index_batches):
    """The inputs of each batch of indices (an iterable of index tensors, on the tensor's device), each when it is
    reached: gathered from a tensor (in memory, the fast path: `index_select`, the rows `x[idx]` gives without
    indexing's parsing of its argument, which took longer than the copy of a batch of 10 images), or read from a
    Dataset (`ImageFiles`: data on disk) by a DataLoader's `x.workers` processes, which read the next batches
    while this one trains (one batch alone is read here: there is nothing to read ahead, and starting processes
    for it would cost more than the batch, at every class of a herding pass). The DataLoader is given the very
    batches of indices, so both paths train on the same batches in the same order. The loader's own generator (it
    draws its workers' seeds) keeps it from drawing on the global random state, which the next task's new head
    part is initialised from."""
    if isinstance(x, torch.Tensor):
        return (x.index_select(0, idx) for idx in index_batches)
    index_batches = [idx for idx in index_batches if len(idx)]  # no images (an empty part): no batch
    if not index_batches:
        return iter(())
    workers = getattr(x, "workers", 0) if len(index_batches) > 1 else 0
    loader = DataLoader(x, batch_sampler=[idx.tolist() for idx in index_batches], num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    return (batch.to(index_batches[0].device) for batch in loader)


def in_order(x, size: int, device=None):
    """Batches of `size` inputs in order (evaluation, a method's pass over its data), on `device` if given: slices
    of a tensor, or read from a Dataset."""
    batches = ((x[i:i + size] for i in range(0, len(x), size)) if isinstance(x, torch.Tensor)
               else input_batches(x, list(torch.arange(len(x)).split(size))))
    return batches if device is None else (batch.to(device) for batch in batches)


def concat(parts: list):
    """The inputs of `parts` one after the other: `torch.cat` of tensors, or the files of `ImageFiles` joined."""
    if all(isinstance(part, ImageFiles) for part in parts):
        return parts[0].join(parts[1:])
    # a learner that kept files (a run on disk) learning from tensors: its few stored files are read into memory
    return torch.cat([read(part) for part in parts])


def read(x) -> torch.Tensor:
    """The inputs as one tensor in memory (a few anchors or shots: the data set itself stays on disk)."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.stack([x[i] for i in range(len(x))]) if len(x) else torch.empty(0)


def stored(x):
    """What a checkpoint keeps of inputs: a tensor as it is, `ImageFiles` as their paths and reading options
    (plain strings and tensors: a checkpoint loads without running code)."""
    return x if isinstance(x, torch.Tensor) else x.state_dict()


def restored(state):
    """The inputs `stored` kept."""
    return state if isinstance(state, torch.Tensor) else ImageFiles.from_state_dict(state)
