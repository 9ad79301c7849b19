"""platestream's inference core: models, backends, detectors, OCR and the Recognizer."""

from engine.errors import (
    BackendError,
    EngineConfigError,
    EngineError,
    ImageError,
    ModelLoadError,
)
from engine.imageio import decode_image, read_image_file
from engine.read_options import ReadOptions
from engine.recognizer import Recognizer, parse_regions
from engine.result import (
    Box,
    Candidate,
    ColorScore,
    MakeModel,
    OrientationScore,
    PlateRead,
    Recognition,
    Region,
    Vehicle,
)

__version__ = "0.1.0"

__all__ = [
    "Recognizer", "ReadOptions", "Recognition", "PlateRead", "Box", "Region", "Candidate",
    "Vehicle", "ColorScore", "MakeModel", "OrientationScore", "EngineError", "ModelLoadError",
    "BackendError", "EngineConfigError", "ImageError", "decode_image", "read_image_file",
    "parse_regions", "__version__",
]
