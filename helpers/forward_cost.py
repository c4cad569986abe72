"""The raw-OpenVINO control: what one forward that appends n tokens to a KV cache costs, as t(n)/t(1).

Speculative decoding pays off when checking k+1 tokens costs little more than generating one. This measures that on
the bare IR: one infer request reused, inputs built before the clock starts, warm-up first, only ``request.infer()``
timed, the n values interleaved (rotating order) and the cache cut back to the same length before every call.

Every timed call follows a KV trim (``set_state``), as the verify call of a speculative step does. ``t1_steady`` is a
one-token call that follows another forward instead, as in plain decoding; the difference is the price of the trim
paid inside the next infer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .benchmark import quartiles
from .errors import ConfigError
from .sd_loop import StatefulLM


@dataclass
class ForwardCostRow:
    """t(n) in ms and t(n)/t(1) (median of per-repeat ratios) with quartiles."""

    n: int
    context: int
    t_ms: float
    t_lo_ms: float
    t_hi_ms: float
    ratio: float
    ratio_lo: float
    ratio_hi: float

    def row(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class ForwardCost:
    """All rows of one control run, plus the steady one-token call and the trim itself."""

    model: str
    context: int
    repeats: int
    rows: list[ForwardCostRow]
    t1_steady_ms: tuple[float, float, float]  # q1, median, q3 of a one-token call that follows a forward
    trim_ms: tuple[float, float, float]  # query_state + set_state of a cut-back cache (outside infer)
    properties: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def ratio(self, n: int) -> float:
        """Median t(n)/t(1)."""
        return next(r.ratio for r in self.rows if r.n == n)

    def t_ms(self, n: int) -> float:
        return next(r.t_ms for r in self.rows if r.n == n)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "context": self.context, "repeats": self.repeats,
                "rows": [r.row() for r in self.rows], "t1_steady_ms": list(self.t1_steady_ms),
                "trim_ms": list(self.trim_ms), "properties": {k: str(v) for k, v in self.properties.items()},
                "samples": self.samples}


def forward_cost(lm: StatefulLM, context_ids: Sequence[int], ns: Sequence[int] = (1, 2, 4, 8), repeats: int = 20,
                 warmup: int = 3) -> ForwardCost:
    """Median t(n) for each n in `ns` on a KV cache of ``len(context_ids)`` tokens, and t(n)/t(1) per repeat."""
    import numpy as np
    import openvino as ov

    ns = sorted(set(int(n) for n in ns) | {1})
    if ns[0] < 1 or repeats < 1 or warmup < 0 or not context_ids:
        raise ConfigError(f"forward_cost needs n >= 1, repeats >= 1, warmup >= 0 and a context, got ns={ns}, "
                          f"repeats={repeats}, warmup={warmup}, {len(context_ids)} context tokens.")
    context = len(context_ids)
    lm.reset()
    lm.forward(list(context_ids))
    filler = [int(t) for t in context_ids[: max(ns) + 1]] * (max(ns) + 1)

    def inputs(n: int, past: int) -> dict[str, Any]:
        return {"input_ids": ov.Tensor(np.asarray([filler[:n]], dtype=np.int64)),
                "attention_mask": ov.Tensor(np.ones((1, past + n), dtype=np.int64)),
                "position_ids": ov.Tensor(np.arange(past, past + n, dtype=np.int64)[None]),
                "beam_idx": ov.Tensor(np.zeros(1, dtype=np.int32))}

    prepared = {n: inputs(n, context) for n in ns}
    second = inputs(1, context + 1)
    request = lm.request

    def infer(tensors: dict[str, Any], n: int) -> float:
        for name, tensor in tensors.items():
            request.set_tensor(name, tensor)
        start = time.perf_counter()
        request.infer()
        elapsed = (time.perf_counter() - start) * 1e3
        lm.past += n
        return elapsed

    def trim(n: int) -> float:
        start = time.perf_counter()
        lm.trim(n)
        return (time.perf_counter() - start) * 1e3

    times: dict[int, list[float]] = {n: [] for n in ns}
    steady: list[float] = []
    trims: list[float] = []
    for repeat in range(warmup + repeats):
        shift = repeat % len(ns)
        for n in ns[shift:] + ns[:shift]:
            elapsed = infer(prepared[n], n)
            trims.append(trim(n))
            if repeat >= warmup:
                times[n].append(elapsed)
        infer(prepared[1], 1)  # the call after a trim ...
        elapsed = infer(second, 1)  # ... and a one-token call that follows a forward, as plain decoding does
        trim(2)
        if repeat >= warmup:
            steady.append(elapsed)
    rows = []
    for n in ns:
        q1, med, q3 = quartiles(times[n])
        r1, rmed, r3 = quartiles([a / b for a, b in zip(times[n], times[1], strict=True)])
        rows.append(ForwardCostRow(n, context, med, q1, q3, rmed, r1, r3))
    return ForwardCost(model=str(lm.model_dir), context=context, repeats=repeats, rows=rows,
                       t1_steady_ms=quartiles(steady), trim_ms=quartiles(trims[warmup * len(ns):]),
                       properties=lm.properties, samples={**{f"t{n}": times[n] for n in ns}, "t1_steady": steady})
