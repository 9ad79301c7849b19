from engine.ocr.model import PlateOCR, load_ocr_config
from engine.ocr.process import OcrConfig, OcrRead

__all__ = ["PlateOCR", "OcrConfig", "OcrRead", "load_ocr_config"]
