"""Replay buffers filled from a stream, stores the methods own (beside `memory.py`'s exemplar memory, which is filled
at task ends): a sample arrives, the buffer decides whether it stays, without being told where tasks end.

    buffer = ReservoirBuffer(capacity=500, generator=torch.Generator().manual_seed(seed))
    buffer.add(x, targets, task_ids, logits=logits)        # a batch from the stream: reservoir sampling
    x, targets, task_ids, fields = buffer.sample(10)       # a uniform draw without replacement
    balanced = ClassBalancedBuffer(capacity=500)           # GDumb's greedy class-balanced sampler

`ReservoirBuffer` keeps a uniform sample of everything it was offered (Vitter's algorithm R): after N offers each
one is in the buffer with probability capacity / N, whenever it came. Storage is preallocated at the first batch;
the insertion of a batch and a draw cost a few tensor operations, no Python loop per sample. Extra per-sample fields
(DER's logits) are kept with their width: a head that grows later widens the store, and each sample remembers how
many of its columns are real (`fields["logits_width"]`).
"""

import bisect

import numpy as np
import torch

from .errors import ConfigError

DRAWN_AHEAD = 4096  # the reservoir's uniforms drawn at once (32 kB): one draw every 400 batches of 10


def reservoir_slots(seen: int, capacity: int, u: torch.Tensor) -> torch.Tensor:
    """Algorithm R for a batch: where each of `len(u)` new items goes, the buffer having been offered `seen` before,
    given one uniform draw in [0, 1) per item (float64). Item k (k = 0, 1, ...) is the (seen + k + 1)-th offer: while
    the buffer has room it takes the next free slot; after that j = floor(u_k * (seen + k + 1)), uniform on
    {0 .. seen + k}, and the item replaces slot j if j < capacity, else it is dropped (-1)."""
    return torch.from_numpy(_slots(seen, capacity, u.numpy()))


def _slots(seen: int, capacity: int, u: np.ndarray) -> np.ndarray:
    """`reservoir_slots` in NumPy (the same float64 arithmetic): the buffer's bookkeeping, a dozen small integer
    operations per batch, costs less in NumPy than in as many torch calls (a dispatch each: at batch 10, most of
    a replay step's overhead)."""
    position = np.arange(seen, seen + len(u))  # items offered before each one
    j = (u * (position + 1)).astype(np.int64)  # floor: u * (position + 1) >= 0
    return np.where(position < capacity, position, np.where(j < capacity, j, -1))


class _Store:
    """What both stores share: `capacity` preallocated slots per field ("x", "targets", "task_ids", ...), the samples
    offered so far (`seen`), their own `generator`, and the checkpoint of these."""

    def __init__(self, capacity: int, generator: torch.Generator | None = None):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError(f"a replay buffer needs a positive number of samples (--memory N), got {capacity!r}")
        self.capacity = capacity
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.seen = 0  # samples offered so far
        self.data: dict[str, torch.Tensor] = {}  # field -> its `capacity` slots, made at the first sample

    def _allocate(self, name: str, value: torch.Tensor) -> None:
        self.data[name] = torch.zeros((self.capacity, *value.shape[1:]), dtype=value.dtype, device=value.device)

    def _state(self, n: int) -> dict:
        return {"capacity": self.capacity, "seen": self.seen, "generator": self.generator.get_state(),
                "data": {name: store[:n].cpu() for name, store in self.data.items()}}

    def _load_state(self, state: dict, device=None) -> None:
        if state["capacity"] != self.capacity:
            raise ConfigError(f"a checkpoint's buffer holds {state['capacity']} samples, this one {self.capacity}")
        self.seen = state["seen"]
        self.generator.set_state(state["generator"])
        self.data = {}
        for name, saved in state["data"].items():
            store = torch.zeros((self.capacity, *saved.shape[1:]), dtype=saved.dtype, device=device)
            store[:len(saved)] = saved.to(store.device)
            self.data[name] = store


class ReservoirBuffer(_Store):
    """A uniform sample of at most `capacity` stream samples (inputs, targets, task ids, and optional named
    per-sample fields), by reservoir sampling with its own `generator` (whose state is in the checkpoint)."""

    def __init__(self, capacity: int, generator: torch.Generator | None = None):
        super().__init__(capacity, generator)
        self.widths: dict[str, torch.Tensor] = {}  # for each 2-d extra field: the real columns of each slot
        self.narrowest: dict[str, int] = {}  # for each 2-d extra field: the fewest real columns ever written (a
        # bound known without reading `widths`: equal to the store's width, every slot's columns are all real)
        self._drawn_ahead()

    def _drawn_ahead(self, u: np.ndarray | None = None) -> None:
        """The draws made ahead for the next offers (`_offers`): none, or `u` (a checkpoint's)."""
        self._u = np.empty(0) if u is None else u
        self._next = 0
        self._index_block()

    def _index_block(self) -> None:
        """The offers of the block drawn ahead that are kept (offsets into it, in order) and their slots."""
        slots = _slots(self.seen, self.capacity, self._u)
        kept = np.flatnonzero(slots >= 0)
        self._kept, self._kept_slots = kept.tolist(), slots[kept].tolist()

    def __len__(self) -> int:
        return min(self.seen, self.capacity)

    def _widen(self, name: str, width: int) -> None:
        """Room for `width` columns of field `name` (a head grown since): the old columns kept, zeros after."""
        old = self.data[name]
        if old.shape[1] < width:
            self.data[name] = torch.cat([old, old.new_zeros(len(old), width - old.shape[1])], 1)

    def _offers(self, b: int) -> dict[int, int]:
        """The next `b` offers' fate: {slot: the offer of the batch (0 .. b - 1) that ends there} for those kept.
        Their draws come from a block drawn ahead (`DRAWN_AHEAD` uniforms, one per offer, in order: the same
        numbers as one draw per batch), whose slots and kept offers are worked out once for the block; so a batch
        of a long stream, which keeps no sample most of the time, costs a lookup, not a dozen array operations
        (each a few microseconds once a training step has cooled the caches: most of ER's overhead at batch 10)."""
        if self._next + b > len(self._u):  # the draws left, and a new block after them
            fresh = torch.rand(max(DRAWN_AHEAD, b), generator=self.generator, dtype=torch.float64).numpy()
            self._u = np.concatenate([self._u[self._next:], fresh])
            self._next = 0  # the block's first draw is for offer number `seen`
            self._index_block()
        lo, hi = bisect.bisect_left(self._kept, self._next), bisect.bisect_left(self._kept, self._next + b)
        # slot -> the batch's item that ends there: dict keeps the last of equal keys, as writing in order would
        kept = dict(zip(self._kept_slots[lo:hi], [k - self._next for k in self._kept[lo:hi]]))
        self._next += b
        return kept

    @torch.no_grad()
    def add(self, x: torch.Tensor, targets: torch.Tensor, task_ids: torch.Tensor, **fields: torch.Tensor) -> None:
        """Offer a batch: each sample is kept with probability capacity / (samples offered up to it), replacing a
        uniformly chosen one; within the batch, a later sample drawn for the same slot as an earlier one wins (in
        order, as one at a time would).

        No Python loop per sample: while the batch fits in the free slots, one copy per field; once the buffer is
        full, the offers' slots j = floor(u_k (seen + k + 1)) are worked out for a block of offers at once
        (`_offers`), and only the kept samples (capacity / seen of them on average: none in most batches of a long
        stream) are written, one `index_copy_` per field. The draws are one float64 per offer, in order, so the
        slots are those of `reservoir_slots` on them (tests/test_buffers.py)."""
        b = len(targets)
        if b == 0:
            return
        kept = self._offers(b)
        seen, self.seen = self.seen, self.seen + b
        values = {"x": x, "targets": targets, "task_ids": task_ids, **fields}
        for name, value in values.items():
            if name not in self.data:
                self._allocate(name, value)
                if name in fields and value.dim() == 2:
                    self.widths[name] = torch.zeros(self.capacity, dtype=torch.long)
        if seen + b <= self.capacity:  # room for the whole batch: the next free slots, in order
            for name, value in values.items():
                self._write(name, value, slice(seen, seen + b))
            return
        if not kept:
            return
        where = torch.from_numpy(np.fromiter(kept.keys(), np.int64, len(kept)))
        items = torch.from_numpy(np.fromiter(kept.values(), np.int64, len(kept)))
        for name, value in values.items():
            self._write(name, value.index_select(0, items if value.device.type == "cpu" else items.to(value.device)),
                        where)

    def _write(self, name: str, rows: torch.Tensor, where) -> None:
        """Rows of field `name` into its slots `where` (a slice, or a tensor of slot indices); a 2-d extra field
        records its width and is zero beyond it."""
        if name in self.widths:
            self._widen(name, rows.shape[1])
            self.narrowest[name] = min(self.narrowest.get(name, rows.shape[1]), rows.shape[1])
            if isinstance(where, slice):
                self.widths[name][where] = rows.shape[1]
            else:
                self.widths[name].index_fill_(0, where, rows.shape[1])
            store = self.data[name]
            if rows.shape[1] < store.shape[1]:
                rows = torch.nn.functional.pad(rows, (0, store.shape[1] - rows.shape[1]))
        store = self.data[name]
        if rows.dtype != store.dtype or rows.device != store.device:
            rows = rows.to(store.device, store.dtype)
        if isinstance(where, slice):
            store[where] = rows
        else:
            store.index_copy_(0, where if where.device == store.device else where.to(store.device), rows)

    def sample(self, m: int, fields: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """`min(m, len(self))` stored samples drawn uniformly without replacement: (inputs, targets, task ids,
        {field: values, field + "_width": real columns}); `fields=False`: the same draw, the extra fields left
        unread (an empty dict)."""
        n = len(self)
        if n == 0:
            raise ConfigError("the replay buffer is empty: nothing to draw")
        idx = torch.randperm(n, generator=self.generator)[:m]
        device = self.data["targets"].device
        at = idx if device.type == "cpu" else idx.to(device)
        names = self.data if fields else ("x", "targets", "task_ids")
        out = {name: self.data[name].index_select(0, at) for name in names}
        extra = {name: value for name, value in out.items() if name not in ("x", "targets", "task_ids")}
        if fields:
            extra.update({f"{name}_width": widths.index_select(0, idx).to(device)
                          for name, widths in self.widths.items()})
        return out["x"], out["targets"], out["task_ids"], extra

    def describe(self) -> dict:
        return {"kind": "reservoir", "capacity": self.capacity, "stored": len(self), "seen": self.seen}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        n = len(self)
        return {**self._state(n), "widths": {name: widths[:n].clone() for name, widths in self.widths.items()},
                "drawn_ahead": torch.from_numpy(self._u[self._next:].copy())}

    def load_state_dict(self, state: dict, device=None) -> None:
        self._load_state(state, device)
        drawn = state.get("drawn_ahead")  # a checkpoint from before the draws were made ahead: none
        self._drawn_ahead(None if drawn is None else drawn.numpy())
        self.widths, self.narrowest = {}, {}
        for name, saved in state["widths"].items():
            self.widths[name] = torch.zeros(self.capacity, dtype=torch.long)
            self.widths[name][:len(saved)] = saved
            if len(saved):
                self.narrowest[name] = int(saved.min())


class ClassBalancedBuffer(_Store):
    """GDumb's greedy class-balanced sampler (Prabhu et al. 2020, Algorithm 1) over at most `capacity` samples
    (inputs, targets, task ids): a sample is admitted while the buffer has room; once full, only if its class holds
    fewer than capacity / (classes seen, its own included) samples, and then a uniformly drawn sample of the largest
    class (ties: the class seen first) makes room for it. The classes are the targets (head outputs).

    The decisions are integer bookkeeping, one sample after another as the algorithm says (a class's count changes
    what the next sample may do); the tensors are written once per batch. Its own `generator` draws the evictions;
    the checkpoint holds it, the stored samples and each class's slots in their order."""

    def __init__(self, capacity: int, generator: torch.Generator | None = None):
        super().__init__(capacity, generator)
        self.slots: dict[int, list[int]] = {}  # class -> its slots (insertion order of the classes: ties)
        self.stored = 0

    def __len__(self) -> int:
        return self.stored

    def counts(self) -> dict[int, int]:
        """Samples held per class."""
        return {label: len(slots) for label, slots in self.slots.items()}

    @torch.no_grad()
    def add(self, x: torch.Tensor, targets: torch.Tensor, task_ids: torch.Tensor) -> None:
        """Offer a batch, sample by sample in order (the greedy rule), written to the store at once."""
        b = len(targets)
        if b == 0:
            return
        draws = torch.rand(b, generator=self.generator, dtype=torch.float64).tolist()
        writes: dict[int, int] = {}  # slot -> the batch item that ends there (a later one overwrites)
        for item, (label, u) in enumerate(zip(targets.tolist(), draws)):
            self.seen += 1
            own = self.slots.setdefault(label, [])
            if self.stored < self.capacity:
                slot = self.stored
                self.stored += 1
            elif len(own) < self.capacity / len(self.slots):
                largest = max(self.slots.values(), key=len)  # the first of the largest: the class seen first
                k = int(u * len(largest))
                slot = largest[k]
                largest[k] = largest[-1]  # the evicted slot leaves its class (order: swap with the last)
                largest.pop()
            else:  # refused (a class never admitted still counts among the classes seen)
                continue
            own.append(slot)
            writes[slot] = item
        if not writes:
            return
        where = torch.tensor(list(writes), dtype=torch.long)
        which = torch.tensor(list(writes.values()), dtype=torch.long)
        for name, value in (("x", x), ("targets", targets), ("task_ids", task_ids)):
            value = value.detach()
            if name not in self.data:
                self._allocate(name, value)
            store = self.data[name]
            store[where.to(store.device)] = value.index_select(0, which.to(value.device)).to(store.dtype)

    def contents(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every stored sample: (inputs, targets, task ids)."""
        if not self.stored:
            raise ConfigError("the replay buffer is empty: nothing to train on")
        n = self.stored
        return self.data["x"][:n], self.data["targets"][:n], self.data["task_ids"][:n]

    def describe(self) -> dict:
        return {"kind": "class-balanced (GDumb's greedy sampler)", "capacity": self.capacity, "stored": len(self),
                "seen": self.seen, "per_class": {str(k): v for k, v in sorted(self.counts().items())}}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {**self._state(self.stored), "slots": [[label, list(slots)] for label, slots in self.slots.items()]}

    def load_state_dict(self, state: dict, device=None) -> None:
        self._load_state(state, device)
        self.slots = {int(label): [int(s) for s in slots] for label, slots in state["slots"]}
        self.stored = sum(len(slots) for slots in self.slots.values())
