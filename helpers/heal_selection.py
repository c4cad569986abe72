"""Healing that never lowers agreement: measure held-out top-1 agreement at the start and at every checkpoint of a
healing run, and keep the weights that agree best (the starting weights when no step beat them)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelFolderError
from .fsutil import atomic_directory, read_json, write_json

AGREEMENT_KEY = "held_out_agreement"  # the entry this module adds to the Trainer's log history
BEST_FOLDER = "best-agreement"  # inside the checkpoints folder: the weights of the best step so far


@dataclass(frozen=True)
class Selection:
    """Which step's weights a healing run keeps, and the agreement measured at each step (step 0: the start)."""

    by_step: tuple[tuple[int, float], ...]
    kept_step: int

    @property
    def kept_agreement(self) -> float:
        return dict(self.by_step)[self.kept_step]

    def describe(self) -> str:
        """One sentence: what was kept and why."""
        start = dict(self.by_step).get(0)
        if self.kept_step == 0:
            return (f"no healing step raised held-out agreement above the start ({start:.4f}); kept the starting "
                    "weights")
        gain = f" (start {start:.4f})" if start is not None else ""
        return f"kept step {self.kept_step}: held-out agreement {self.kept_agreement:.4f}{gain}"


def agreements_logged(log_history: Sequence[dict[str, Any]]) -> list[tuple[int, float]]:
    """(step, agreement) pairs from a Trainer log history, one per step (the last entry wins)."""
    return sorted({int(e["step"]): float(e[AGREEMENT_KEY]) for e in log_history if AGREEMENT_KEY in e}.items())


def select_step(by_step: Sequence[tuple[int, float]]) -> Selection | None:
    """The best step by agreement; on a tie the earlier one (the start wins over a step that only equals it)."""
    if not by_step:
        return None
    kept = min(by_step, key=lambda pair: (-pair[1], pair[0]))[0]
    return Selection(by_step=tuple(by_step), kept_step=kept)


def agreement_callback(measure: Callable[[Any], float], checkpoints: Path) -> Any:
    """A TrainerCallback that logs `measure(model)`, the held-out agreement, at the start (step 0) and at every
    step that saves a checkpoint (before the save, so that a resumed run knows it), and writes the weights of each new
    best step to ``checkpoints/best-agreement`` (atomically, rank 0 only)."""
    from transformers import TrainerCallback

    class AgreementCallback(TrainerCallback):
        def _measure(self, state: Any, model: Any) -> None:
            value = round(measure(model), 4)
            best = max((a for _, a in agreements_logged(state.log_history)), default=None)
            state.log_history.append({"step": state.global_step, AGREEMENT_KEY: value})
            if state.global_step > 0 and (best is None or value > best) and state.is_world_process_zero:
                core = getattr(model, "module", model)
                with atomic_directory(checkpoints / BEST_FOLDER, replace=True) as tmp:
                    core.save_pretrained(tmp)
                    write_json(tmp / "step.json", {"step": state.global_step, AGREEMENT_KEY: value})

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if state.global_step == 0 and not agreements_logged(state.log_history):
                self._measure(state, model)

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if control.should_save or state.global_step >= state.max_steps:
                self._measure(state, model)

    return AgreementCallback()


def restore_selected(model: Any, selection: Selection, start_dir: Path, checkpoints: Path, final_step: int) -> None:
    """Load the kept step's weights into `model` (nothing to do when the final step is the best)."""
    if selection.kept_step == final_step:
        return
    from transformers import AutoModelForCausalLM

    if selection.kept_step == 0:
        source = start_dir
    else:
        source = checkpoints / BEST_FOLDER
        saved = read_json(source / "step.json") or {}
        if saved.get("step") != selection.kept_step:
            raise ModelFolderError(f"{source} holds step {saved.get('step')}, not the best step {selection.kept_step}; "
                               "heal again with overwrite=True (--overwrite).")
    weights = AutoModelForCausalLM.from_pretrained(str(source), dtype=model.dtype).state_dict()
    getattr(model, "module", model).load_state_dict(weights)
