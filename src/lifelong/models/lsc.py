"""PODNet's local similarity classifier (LSC, Douillard et al. 2020, section 3.3): K proxies per class, a growing head.

With h the L2-normalised features and theta_{c,k} the L2-normalised proxies of class c,

    s_{c,k} = <theta_{c,k}, h>                        (similarity="cosine": the paper's text)
    s_{c,k} = -|| theta_{c,k} - h ||^2 = 2 <theta_{c,k}, h> - 2    (similarity="distance": the official code's
                                                        `neg_stable_cosine_distance`, the default: the margin 0.6
                                                        and the scale's initial value 1 were tuned with it)
    y_c = sum_k softmax_k(s_{c,.}) s_{c,k}            (each class's proxies merged by a softmax over their similarities)

The head returns y (one column per class); the learned scale eta (initial value 1, the official `learned_scaling`) is
a parameter of the head that the NCA loss multiplies in (`scale`), prediction being the argmax of y. Its interface
is `IncrementalHead`'s (`add`, `sizes`, `parts`, `out_features`, forward(features) -> logits), so it sits in a
`ContinualModel` in its place: one part per `add`, each holding the proxies of its classes, class after class.

`kmeans` imprints new proxies (scikit-learn's KMeans, as PODNet's code).
"""

import torch
from torch import nn

from .cosine import cosine_similarities
from .heads import GrowingHead

SIMILARITIES = ("distance", "cosine")


class Proxies(nn.Module):
    """The proxies of `out_features` classes, K rows per class, class after class: `weight` (classes * K, features)."""

    def __init__(self, in_features: int, out_features: int, proxies: int):
        super().__init__()
        self.out_features, self.proxies = out_features, proxies
        self.weight = nn.Parameter(torch.empty(out_features * proxies, in_features))
        # the official `add_classes`: kaiming_normal_(nonlinearity="linear"), std 1 / sqrt(features)
        nn.init.kaiming_normal_(self.weight, nonlinearity="linear")


class LocalSimilarityHead(GrowingHead):
    def __init__(self, in_features: int, proxies: int = 10, similarity: str = "distance", scale: float = 1.0):
        super().__init__(in_features)
        if similarity not in SIMILARITIES:
            raise ValueError(f"unknown similarity {similarity!r}; choose one of {', '.join(SIMILARITIES)}")
        self.proxies, self.similarity = proxies, similarity
        self.scale = nn.Parameter(torch.tensor(float(scale)))  # eta, learned

    def new_part(self, n_outputs: int) -> nn.Module:
        """The K proxies of `n_outputs` new classes (random; a method may imprint them)."""
        return Proxies(self.in_features, n_outputs, self.proxies)

    @property
    def weight(self) -> torch.Tensor:
        """Every proxy, (classes * K, features)."""
        return self.parts[0].weight if len(self.parts) == 1 else torch.cat([part.weight for part in self.parts])

    def proxy_similarities(self, features: torch.Tensor) -> torch.Tensor:
        """s: (batch, classes, K), the similarity of each normalised feature vector to each normalised proxy."""
        cosine = cosine_similarities(features, self.weight)
        s = 2 * cosine - 2 if self.similarity == "distance" else cosine
        return s.view(len(features), -1, self.proxies)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.parts:
            raise RuntimeError("the head has no outputs yet: call add() before the first forward pass")
        s = self.proxy_similarities(features)
        # the softmax over each class's K proxies, written out: s lies in [-4, 0] (or [-1, 1]), so exp(s) needs no
        # shift; torch.softmax over a last dimension of 10 is several times slower, forward and backward
        e = s.exp()
        return (e * s).sum(2) / e.sum(2)


@torch.no_grad()
def kmeans(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k centres of the rows of `x`: scikit-learn's KMeans, as PODNet's code (k-means++ seeding, then the iterations
    until the centres move by at most its tol=1e-4, max_iter=300), with one seeding drawn from `generator` where the
    code kept the default of its day (n_init=10: ten times the cost). The iterations are Elkan's, as that default
    (algorithm="auto": Elkan's on dense data before scikit-learn 1.1): Lloyd's steps, the distances a triangle
    inequality rules out skipped, so the same centres up to rounding; on split-MNIST's MLP features (about 6,000 of a
    class, 400 wide), PODNet's run spent 1.8 s imprinting against 2.2 to 2.7 s with Lloyd's. In x's own precision,
    as many threads as torch uses. Fewer rows than k: every row, then the rows again in turn (a class with fewer
    samples than proxies gets duplicate proxies)."""
    n = len(x)
    if n <= k:
        return x[torch.arange(k) % n].clone()
    from sklearn.cluster import KMeans  # here: importing scikit-learn's clustering costs a second at start-up
    from threadpoolctl import threadpool_limits  # scikit-learn's own

    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    with threadpool_limits(torch.get_num_threads()):
        fitted = KMeans(n_clusters=k, n_init=1, algorithm="elkan", random_state=seed).fit(x.detach().cpu().numpy())
    return torch.from_numpy(fitted.cluster_centers_).to(device=x.device, dtype=x.dtype)
