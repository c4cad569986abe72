"""OpenVINO devices, the memory check that runs before a model is loaded, and peak-memory measurement."""

from __future__ import annotations

import platform
from typing import Any

from .errors import DeviceError, NotEnoughMemoryError
from .presets import Preset, smaller_presets
from .settings import env_device

# OpenVINO also accepts these virtual devices, which pick or combine the physical ones.
VIRTUAL_DEVICES = ("AUTO",)


def available_devices() -> dict[str, str]:
    """Device name -> full name, e.g. ``{"CPU": "Intel(R) Core(TM) Ultra 7 268V", "GPU": "Intel(R) Arc(TM) 140V GPU"}``."""
    import openvino as ov

    core = ov.Core()
    return {name: str(core.get_property(name, "FULL_DEVICE_NAME")) for name in core.available_devices}


def check_device(device: str) -> str:
    """Return `device` (upper-cased) if OpenVINO can use it here, else raise `DeviceError` listing the valid ones."""
    name = device.strip().upper()
    devices = available_devices()
    base = name.split(".")[0].split(":")[0]
    if name in devices or base in VIRTUAL_DEVICES or base in {d.split(".")[0] for d in devices}:
        return name
    listing = ", ".join(f"{k} ({v})" for k, v in devices.items())
    raise DeviceError(f"Device {device!r} is not available on this machine. Available: {listing}. Pass one of those names.")


def default_device() -> str:
    """``$TUTORIAL_DEVICE`` if set, else GPU when present (the blog's choice), else CPU."""
    configured = env_device()
    if configured:
        return check_device(configured)
    return "GPU" if "GPU" in available_devices() else "CPU"


def available_ram_gb() -> float:
    """RAM that can be given to a new model without swapping, in GiB."""
    import psutil

    return psutil.virtual_memory().available / 2**30


def check_memory(preset: Preset, purpose: str = "run", available_gb: float | None = None) -> float:
    """Refuse, with a clear message naming a smaller preset, when free RAM is below what `preset` needs.

    `purpose` is ``run`` (load and generate) or ``convert`` (export from the Hugging Face checkpoint).
    Returns the free RAM in GiB.
    """
    if purpose not in ("run", "convert"):
        raise ValueError(f"purpose must be 'run' or 'convert', not {purpose!r}.")
    free = available_ram_gb() if available_gb is None else available_gb
    needed = preset.ram_gb_run if purpose == "run" else preset.ram_gb_convert
    if free >= needed:
        return free
    fits = [p.name for p in smaller_presets(preset) if (p.ram_gb_run if purpose == "run" else p.ram_gb_convert) <= free]
    advice = f"Use a smaller preset: {', '.join(fits)}." if fits else "Close other programs or use a machine with more RAM."
    if purpose == "convert" and preset.target.preconverted:
        advice = f"Download the pre-converted models instead (method='download' / --method download), or: {advice}"
    raise NotEnoughMemoryError(
        f"Preset {preset.name!r} needs about {needed:g} GiB of free RAM to {purpose}, but only {free:.1f} GiB is free. {advice}"
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux/macOS; 0 where unavailable)."""
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 1024


class PeakMemory:
    """Peak resident memory of this process while the ``with`` block runs, in MiB (sampled every `interval` s).

    `peak_rss_mb` is the process's peak over its whole life; this isolates one job (a healing run after a benchmark).
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop: Any = None
        self._thread: Any = None

    def _sample(self) -> None:
        import psutil

        process = psutil.Process()
        while True:
            self.peak_mb = max(self.peak_mb, process.memory_info().rss / 2**20)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
