"""OpenVINO devices, the memory check that runs before a model is loaded, and peak-memory measurement."""

from __future__ import annotations

import platform
from typing import Any

from .errors import DeviceError, NotEnoughMemoryError
from .presets import Preset, smaller_presets
from .settings import env_device

# OpenVINO also accepts these virtual devices, which pick or combine the physical ones: AUTO alone, or any of them
# followed by a comma-separated list of physical devices (``AUTO:GPU,CPU``, ``HETERO:GPU,CPU``).
VIRTUAL_DEVICES = ("AUTO", "HETERO", "MULTI")


def available_devices() -> dict[str, str]:
    """Device name -> full name, e.g. ``{"CPU": "Intel(R) Core(TM) Ultra 7 268V", "GPU": "Intel(R) Arc(TM) 140V GPU"}``."""
    import openvino as ov

    core = ov.Core()
    return {name: str(core.get_property(name, "FULL_DEVICE_NAME")) for name in core.available_devices}


def _device_ids(base: str) -> list[str]:
    """The ids OpenVINO takes after ``base.`` (``['0', '1']`` for two GPUs; ``['']`` for the CPU, which takes none)."""
    import openvino as ov

    try:
        return [str(i) for i in ov.Core().get_property(base, "AVAILABLE_DEVICES")]
    except RuntimeError:
        return []


def _device_problem(name: str, devices: dict[str, str], physical: bool) -> str | None:
    """Why OpenVINO (and OpenVINO GenAI) would refuse the device `name` (upper case) here, or None."""
    if ":" in name:
        virtual, listed = name.split(":", 1)
        if virtual not in VIRTUAL_DEVICES:
            return f"is not a device name: only {', '.join(VIRTUAL_DEVICES)} take a list of devices after a colon"
        if physical:
            return "is a virtual device, and this command measures one physical device"
        parts = [part.strip() for part in listed.split(",")]
        if not all(parts):
            return f"lists no device after {virtual}: or an empty one between commas"
        for part in parts:
            problem = _device_problem(part, devices, physical=True)
            if problem:
                return f"lists {part}, which {problem}"
        return None
    if name in VIRTUAL_DEVICES:
        if physical:
            return "is a virtual device, and this command measures one physical device"
        return None if name == "AUTO" else f"needs the devices to use after a colon, e.g. {name}:GPU,CPU"
    if name in devices:
        return None
    base, dot, device_id = name.partition(".")
    if base in {d.split(".")[0] for d in devices}:
        if not dot:  # GPU when there are GPU.0 and GPU.1: the first one
            return None
        if device_id and device_id in _device_ids(base):
            return None
        return f"has a device number {base} does not take here"
    return "is not available on this machine"


def check_device(device: str, physical: bool = False) -> str:
    """Return `device` (upper-cased) if OpenVINO can use it here, else raise `DeviceError` listing the valid ones.

    Accepted: a device OpenVINO lists here (``CPU``, ``GPU``, ``GPU.1``, ``NPU``), and unless `physical`, ``AUTO`` or
    ``AUTO:``/``HETERO:``/``MULTI:`` followed by a comma-separated list of those. ``CPU.0`` is refused: the CPU
    plugin takes no device number, and the pipeline would fail later with a message blaming the model."""
    name = device.strip().upper()
    devices = available_devices()
    problem = _device_problem(name, devices, physical)
    if problem is None:
        return name
    listing = ", ".join(f"{k} ({v})" for k, v in devices.items())
    virtual = "" if physical else f"; or AUTO, or {':/'.join(VIRTUAL_DEVICES)}: with a comma-separated list of those"
    raise DeviceError(f"Device {device!r} {problem}. Available: {listing}{virtual}. Pass one of those names.")


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
