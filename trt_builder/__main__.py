"""``python -m trt_builder build --models-dir DIR --out engines/ [--fp16] [--int8 ...]``."""

import sys

from trt_builder.cli import main

sys.exit(main())
