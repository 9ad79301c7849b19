"""Backend selection, table-driven with fake probes (the real ones need a GPU)."""

from __future__ import annotations

from contextlib import ExitStack as DoesNotRaise
from pathlib import Path

import pytest

from engine.backends.select import Check, Choice, Probes, model_file, select_backend
from engine.errors import BackendError

MODELS = [Path("/m/plate_detector_yolov9t416.onnx"), Path("/m/plate_ocr_cct_xs_v2_global.onnx")]
ENGINES = Path("/engines")

GPU = Check(True, "NVIDIA Orin (sm 8.7, 7620 MiB)")
NO_GPU = Check(False, "no NVIDIA GPU (no /dev/nvidia* device)")
TRT = Check(True, "10.3.0")
NO_TRT = Check(False, "TensorRT is not installed (pip install platestream[tensorrt] ...)")
FRESH = Check(True, "2 fresh engines in /engines")
STALE = Check(False, "plate_detector_yolov9t416.engine was built for another setup (tensorrt)")
CUDA = Check(True, "CUDAExecutionProvider")
NO_CUDA = Check(False, "onnxruntime has no CUDAExecutionProvider")
OV = Check(True, "2026.4.1")
NO_OV = Check(False, "OpenVINO is not installed (pip install platestream[openvino])")


class FakeProbes:
    """Answers given per probe; records which probes were asked."""

    def __init__(self, gpu: Check, trt: Check, engines: Check, cuda: Check,
                 ov: Check = NO_OV) -> None:
        self.answers = {"gpu": gpu, "tensorrt": trt, "engines": engines, "ort_cuda": cuda,
                        "openvino": ov}
        self.asked: list[str] = []
        self.engine_args: tuple | None = None

    def _probe(self, name: str):
        def probe(*args):
            self.asked.append(name)
            if args:
                self.engine_args = args
            return self.answers[name]

        return probe

    def probes(self) -> Probes:
        return Probes(*(self._probe(n) for n in ("gpu", "tensorrt", "engines", "ort_cuda",
                                                  "openvino")))


@pytest.mark.parametrize(
    "pref, gpu, trt, engines, cuda, engines_dir, kind, reason_has, exception",
    [
        # auto: the best that works, with the reason
        ("auto", GPU, TRT, FRESH, CUDA, ENGINES, "tensorrt", "TensorRT on NVIDIA Orin",
         DoesNotRaise()),
        ("auto", GPU, TRT, STALE, CUDA, ENGINES, "onnxruntime-cuda", "built for another setup",
         DoesNotRaise()),
        ("auto", GPU, NO_TRT, FRESH, CUDA, ENGINES, "onnxruntime-cuda", "TensorRT is not inst",
         DoesNotRaise()),
        ("auto", GPU, TRT, FRESH, CUDA, None, "onnxruntime-cuda", "no engines directory",
         DoesNotRaise()),
        ("auto", GPU, NO_TRT, FRESH, NO_CUDA, ENGINES, "onnxruntime", "no CUDAExecutionProv",
         DoesNotRaise()),
        ("auto", GPU, TRT, STALE, NO_CUDA, ENGINES, "onnxruntime", "although NVIDIA Orin",
         DoesNotRaise()),
        ("auto", NO_GPU, TRT, FRESH, CUDA, ENGINES, "onnxruntime", "no NVIDIA GPU",
         DoesNotRaise()),
        # explicit choices: met, or a clear error (never a silent fallback)
        ("onnxruntime", GPU, TRT, FRESH, CUDA, ENGINES, "onnxruntime", "as configured",
         DoesNotRaise()),
        ("tensorrt", GPU, TRT, FRESH, NO_CUDA, ENGINES, "tensorrt", "as configured",
         DoesNotRaise()),
        ("tensorrt", GPU, TRT, STALE, CUDA, ENGINES, None, None,
         pytest.raises(BackendError, match="tensorrt is not usable: .*another setup")),
        ("tensorrt", NO_GPU, TRT, FRESH, CUDA, ENGINES, None, None,
         pytest.raises(BackendError, match="tensorrt is not usable: no NVIDIA GPU")),
        ("tensorrt", GPU, NO_TRT, FRESH, CUDA, ENGINES, None, None,
         pytest.raises(BackendError, match=r"pip install platestream\[tensorrt\]")),
        ("onnxruntime-cuda", GPU, NO_TRT, STALE, CUDA, None, "onnxruntime-cuda", "as configured",
         DoesNotRaise()),
        ("onnxruntime-cuda", GPU, TRT, FRESH, NO_CUDA, ENGINES, None, None,
         pytest.raises(BackendError, match="onnxruntime-cuda is not usable: onnxruntime has")),
        ("onnxruntime-cuda", NO_GPU, TRT, FRESH, CUDA, ENGINES, None, None,
         pytest.raises(BackendError, match="onnxruntime-cuda is not usable: no NVIDIA GPU")),
        ("cuda", GPU, TRT, FRESH, CUDA, ENGINES, None, None,
         pytest.raises(BackendError, match="unknown backend 'cuda', expecting one of auto")),
    ],
)
def test_select_backend(pref, gpu, trt, engines, cuda, engines_dir, kind, reason_has, exception):
    fake = FakeProbes(gpu, trt, engines, cuda)
    with exception:
        choice = select_backend(pref, engines_dir, MODELS, probes=fake.probes())
        assert choice.kind == kind
        assert reason_has in choice.reason


def test_no_gpu_never_probes_tensorrt() -> None:
    fake = FakeProbes(NO_GPU, TRT, FRESH, CUDA)
    select_backend("auto", ENGINES, MODELS, probes=fake.probes())
    assert fake.asked == ["gpu"]


@pytest.mark.parametrize("gpu, trt, cuda", [(GPU, TRT, CUDA), (NO_GPU, NO_TRT, NO_CUDA)])
def test_openvino_only_when_asked_for(gpu, trt, cuda) -> None:
    fake = FakeProbes(gpu, trt, FRESH, cuda, OV)
    assert select_backend("auto", ENGINES, MODELS, probes=fake.probes()).kind != "openvino"
    assert "openvino" not in fake.asked
    choice = select_backend("openvino", ENGINES, MODELS, probes=fake.probes())
    assert (choice.kind, choice.providers) == ("openvino", ["CPUExecutionProvider"])
    assert choice.reason == "OpenVINO 2026.4.1 on the CPU, as configured"
    assert model_file(choice, MODELS[0], ENGINES) == MODELS[0]


def test_openvino_asked_for_but_missing_is_an_error() -> None:
    fake = FakeProbes(NO_GPU, NO_TRT, FRESH, NO_CUDA, NO_OV)
    with pytest.raises(BackendError, match=r"openvino is not usable: OpenVINO is not installed "
                                           r"\(pip install platestream\[openvino\]\)"):
        select_backend("openvino", ENGINES, MODELS, probes=fake.probes())


def test_cpu_preference_probes_nothing() -> None:
    fake = FakeProbes(GPU, TRT, FRESH, CUDA)
    assert select_backend("onnxruntime", ENGINES, MODELS, probes=fake.probes()).kind == (
        "onnxruntime"
    )
    assert fake.asked == []


def test_engines_probe_gets_the_models() -> None:
    fake = FakeProbes(GPU, TRT, FRESH, CUDA)
    select_backend("auto", "/engines", MODELS, probes=fake.probes())
    assert fake.engine_args == (ENGINES, MODELS)


def test_choice_providers_and_model_file() -> None:
    assert Choice("onnxruntime-cuda", "").providers[0] == "CUDAExecutionProvider"
    assert Choice("onnxruntime", "").providers == ["CPUExecutionProvider"]
    trt = Choice("tensorrt", "")
    assert model_file(trt, MODELS[0], ENGINES) == ENGINES / "plate_detector_yolov9t416.engine"
    assert model_file(Choice("onnxruntime", ""), MODELS[0], ENGINES) == MODELS[0]


def test_real_probes_on_this_machine() -> None:
    """The default probes run here without raising, and auto always yields a choice."""
    choice = select_backend("auto", ENGINES, MODELS)
    assert choice.kind in ("tensorrt", "onnxruntime-cuda", "onnxruntime")
    assert choice.reason
