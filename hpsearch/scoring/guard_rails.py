"""Guard rails on a training-free pick: is the proxy's favourite a network training would rank low?

Two patterns of a proxy that ranks networks backwards, seen on real Be2 data (the paper's NASWOT
sign favoured a 1x16 Sigmoid network that trained to the 38th best validation LDOS RMSE of 64):

- the pick is one of the smallest networks of the space: fewer than :data:`SMALL_FRACTION` of the
  scored candidates have fewer parameters (the smallest always qualifies);
- the pick has a saturating activation (:data:`SATURATING`) and is narrower than the widest
  candidates, yet the proxy prefers it over every wider one.

Neither proves the pick wrong; both say "check this proxy against trained errors before trusting it"
(``hpsearch proxy-study``). :func:`pick_concerns` finds them, :func:`score_table` shows the scores.

Example:
    >>> networks = [network_of(spec) for spec in specs]
    >>> concerns = pick_concerns(networks, scores, pick=int(np.argmax(scores)))
    >>> if concerns: log.warning("%s\n%s", "; ".join(concerns), score_table(networks, scores, pick))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from hpsearch.model.network import NetworkSpec

__all__ = ["SATURATING", "SMALL_FRACTION", "Network", "network_of", "pick_concerns", "score_table"]

#: Activations that saturate (bounded outputs, vanishing gradients away from zero).
SATURATING: Final[frozenset[str]] = frozenset({"Sigmoid", "Tanh", "Hardsigmoid", "Hardtanh", "Softsign"})
#: A pick with fewer than this fraction of the scored candidates smaller than it is "one of the smallest".
SMALL_FRACTION: Final[float] = 0.10


@dataclasses.dataclass(frozen=True)
class Network:
    """What the guard rails need of one candidate: its size, hidden widths and activations."""

    n_params: int
    widths: tuple[int, ...]
    activations: tuple[str, ...]

    @property
    def label(self) -> str:
        shape = "x".join(map(str, self.widths)) or "linear"
        names = sorted(set(self.activations))
        return f"{shape} {'/'.join(names)}" if names else shape

    @property
    def width(self) -> int:
        return max(self.widths, default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"n_params": self.n_params, "widths": list(self.widths), "activations": list(self.activations)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Network:
        return cls(int(data["n_params"]), tuple(int(w) for w in data["widths"]), tuple(data["activations"]))


def network_of(spec: NetworkSpec) -> Network:
    """The :class:`Network` of a spec; its parameters are those of ``build_network(spec)`` (weights and
    biases of every Linear layer)."""
    sizes = [spec.n_in, *spec.widths, spec.n_out]
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    return Network(n_params, tuple(spec.widths), tuple(spec.hidden_activations))


def _scored(scores: Sequence[float | None]) -> list[int]:
    return [i for i, s in enumerate(scores) if s is not None]


def pick_concerns(networks: Sequence[Network], scores: Sequence[float | None], pick: int) -> list[str]:
    """Why the pick (index into ``networks``) looks like a proxy ranking backwards; empty when it does not.
    Only scored candidates (score not None) count."""
    scored = _scored(scores)
    chosen = networks[pick]
    concerns: list[str] = []
    smaller = sum(networks[i].n_params < chosen.n_params for i in scored)
    if len(scored) > 1 and smaller < SMALL_FRACTION * len(scored):
        which = "the smallest" if smaller == 0 else f"among the smallest {SMALL_FRACTION:.0%}"
        concerns.append(f"the pick {chosen.label} ({chosen.n_params} parameters) is {which} of the {len(scored)} "
                        f"scored candidates ({smaller} have fewer parameters)")
    saturating = sorted(SATURATING.intersection(chosen.activations))
    widest = max((networks[i].width for i in scored), default=0)
    if saturating and chosen.width < widest:
        wider = sum(networks[i].width > chosen.width for i in scored)
        concerns.append(f"the pick {chosen.label} has a saturating activation ({', '.join(saturating)}) and the "
                        f"proxy prefers it over every one of the {wider} wider candidates (widths up to {widest})")
    return concerns


def score_table(networks: Sequence[Network], scores: Sequence[float | None], pick: int, top: int = 5,
                widest: int = 3) -> str:
    """The ``top`` best-scored candidates and the ``widest`` ones with the most parameters: score rank,
    score, network, parameters (the pick marked)."""
    values = {i: float(s) for i, s in enumerate(scores) if s is not None}
    by_score = sorted(values, key=lambda i: (-values[i], i))
    rank = {i: r for r, i in enumerate(by_score, start=1)}
    largest = sorted(values, key=lambda i: (-networks[i].n_params, rank[i]))[:widest]

    def line(i: int) -> str:
        mark = "  <- pick" if i == pick else ""
        return f"{rank[i]:>5}  {values[i]:>12.6g}  {networks[i].label:<24} {networks[i].n_params:>10}{mark}"

    lines = [f"{'rank':>5}  {'score':>12}  {'network':<24} {'parameters':>10}", *(line(i) for i in by_score[:top])]
    rest = [i for i in largest if i not in by_score[:top]]
    if rest:
        lines.append(f"{'...':>5}  the widest candidates (most parameters):")
        lines += [line(i) for i in rest]
    return "\n".join(lines)
