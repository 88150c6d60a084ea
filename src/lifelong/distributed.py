"""One run on several processes (CPU cores or GPUs): data-parallel training with torch.distributed and torchrun.

    torchrun --nproc_per_node 4 -m lifelong run --method ewc --scenario split-mnist             # gloo, CPU
    torchrun --nproc_per_node 4 -m lifelong run --method ewc --scenario split-mnist --device cuda   # NCCL
    torchrun --nproc_per_node 4 my_script.py    # a script that calls lifelong.distributed.init() first

Every process holds the whole scenario in memory and builds the same model from the same seed, and every process
draws the same shuffled order of the training data. Each takes its share of every global batch (`share`); after
the backward pass the gradients are added over the processes, each share weighted by its size (`backward`), so
every process holds the gradient of the whole batch's mean loss and takes the step one process would take.
PyTorch's DistributedDataParallel sums gradients the same way (during the backward pass, in buckets); it is not
used because the head grows a part every task and the methods call their model directly: a DDP wrapper would be
rebuilt every task and would have to reach into every method's `loss`.

What a method computes from data stays identical on every process without any message: the processes hold the
same model and the same data, so LwF's recorded responses, the exemplars (herding or a seeded draw) and BiC's
bias correction are computed whole on each, as one process computes them. Only the passes that cost as much as
training are split: each process measures MAS's and EWC's per-sample importance, and evaluates, on its `part` of
the data, and the sums are added (`add_up`, `total`). Only the main process (rank 0) writes results, checkpoints
and reports. Alone (no torchrun), every function here is the identity: world_size() is 1.
"""

import os

import torch
import torch.distributed as dist

from .checks import check_device
from .errors import ConfigError, TrainingError


def init(device: str = "cpu") -> None:
    """Join the processes torchrun started (it sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT):
    the gloo backend on CPU, NCCL on CUDA with each process on the GPU of its LOCAL_RANK. Alone: nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1 or dist.is_initialized():
        return
    check_device(device)  # a clear error before joining, not a traceback
    parsed = torch.device(device)
    if parsed.type == "cuda":
        if parsed.index is not None:
            raise ConfigError(f"--device {device} under torchrun would put every process on one GPU: give "
                              "--device cuda (each process takes the GPU of its LOCAL_RANK)")
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # "cuda" then means this process's GPU
    dist.init_process_group("nccl" if parsed.type == "cuda" else "gloo")


def finish() -> None:
    """Wait until every process has finished its work (the main one writes the report after the others are done
    training): a process that tears its group down while another still uses it can abort at exit (gloo)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def close() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """The process that writes (results, checkpoints, reports) and prints."""
    return rank() == 0


def _device() -> torch.device:
    """Where the messages go from: NCCL sends CUDA tensors only, gloo CPU ones."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def share(batch_size: int) -> tuple[slice, float]:
    """This process's rows of a global batch of `batch_size` rows, and their share of it (rows / batch size).
    Contiguous shares whose sizes differ by at most one. A batch smaller than the number of processes (an epoch's
    last one can be) is not split: each process takes all of it at weight 1 / world_size."""
    n_processes = world_size()
    if n_processes == 1:
        return slice(None), 1.0
    if batch_size < n_processes:
        return slice(None), 1.0 / n_processes
    mine = part(batch_size)
    return mine, (mine.stop - mine.start) / batch_size


def part(n: int, unit: int = 1) -> slice:
    """This process's contiguous part of `n` items, cut into whole units of `unit` items (whole batches, where a
    result depends on how the items are batched). All of them when alone."""
    n_processes = world_size()
    if n_processes == 1:
        return slice(None)
    units = -(-n // unit)
    first, last = rank() * units // n_processes, (rank() + 1) * units // n_processes
    return slice(first * unit, min(last * unit, n))


def backward(loss: torch.Tensor, weight: float, optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """`loss.backward()`, and on several processes: the backward pass of this process's share of the batch,
    weighted by its share (`share`), then the gradients of the optimizer's parameters and the loss added over
    the processes, in one message. The mean loss over a share of n_r of the batch's N samples, times n_r / N,
    added over the processes, is the mean over the batch; so are its gradients, even when the shares differ in
    size (a plain average of the shares' gradients, DDP's, equals it only for equal shares). Every loss here is a
    mean over samples (plus terms that do not depend on them, which the weights, summing to 1, keep whole).
    Returns the batch's loss."""
    if world_size() == 1:
        loss.backward()
        return loss.detach()
    (loss * weight).backward()
    # every process reaches the same parameters (the same model and code, other rows), so the messages match
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads] + [loss.detach().reshape(1) * weight])
    dist.all_reduce(flat)
    for g, summed in zip(grads, flat[:-1].split([g.numel() for g in grads])):
        g.copy_(summed.view_as(g))
    return flat[-1]


def add_up(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each tensor added over the processes, in place (sums of what each measured on its `part`); returns them."""
    if world_size() > 1:
        for tensor in tensors.values():
            dist.all_reduce(tensor)
    return tensors


def total(numbers: list) -> list:
    """The numbers (counts, sums) added over the processes."""
    if world_size() == 1:
        return list(numbers)
    summed = torch.tensor(numbers, dtype=torch.float64, device=_device())
    dist.all_reduce(summed)
    return [type(a)(b) for a, b in zip(numbers, summed.tolist())]


def settle(model: torch.nn.Module) -> None:
    """After a task's training: what the processes may have come to hold differently made one again. Batch-norm
    running statistics, which each process gathered on its own shares (as DDP without SyncBatchNorm), are
    averaged; the random state becomes the main process's (dropout draws as many numbers as a share has rows,
    and shares can differ by one). The library's MLP has neither."""
    if world_size() == 1:
        return
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            for buffer in (module.running_mean, module.running_var):
                summed = buffer.to(_device())
                dist.all_reduce(summed)
                buffer.copy_(summed / world_size())

    def mains(state: torch.Tensor) -> torch.Tensor:
        state = state.to(_device())
        dist.broadcast(state, 0)
        return state.cpu()

    torch.set_rng_state(mains(torch.get_rng_state()))
    if dist.get_backend() == "nccl":
        torch.cuda.set_rng_state(mains(torch.cuda.get_rng_state()))


def check_same(model: torch.nn.Module, task_id: int) -> None:
    """Raise if the processes' models differ after a task: every process must take the same steps, and a
    method whose state differed between processes (importance measured on one part, never added up) would
    show here. Gradients summed over processes are the same bits on each, so the weights are equal exactly."""
    if world_size() == 1:
        return
    checksum = sum(t.double().sum() for t in model.state_dict().values() if t.is_floating_point()).to(_device())
    gathered = [torch.zeros_like(checksum) for _ in range(world_size())]
    dist.all_gather(gathered, checksum)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise TrainingError(f"the {world_size()} processes hold different models after task {task_id + 1} "
                            f"(weight sums {[g.item() for g in gathered]}): they must take the same steps")
