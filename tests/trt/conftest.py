"""TensorRT tests: CPU parts always run; ``@pytest.mark.gpu`` tests skip with the reason
when this machine has no NVIDIA GPU, no TensorRT or no cuda-python."""

from __future__ import annotations

import functools

import pytest


@functools.cache
def gpu_skip_reason() -> str | None:
    """None when TensorRT can run here, else why not (one line)."""
    from engine.backends.select import default_probes

    probes = default_probes()
    for check in (probes.gpu(), probes.tensorrt()):
        if not check.ok:
            return check.detail
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [i for i in items if i.get_closest_marker("gpu")]
    if not gpu_items:
        return
    reason = gpu_skip_reason()
    if reason is None:
        return
    for item in gpu_items:
        item.add_marker(pytest.mark.skip(reason=f"needs an NVIDIA GPU with TensorRT: {reason}"))
