# platestream, CPU image (ONNX Runtime). Models are mounted at /models, data at /data.
#   docker build -t platestream:cpu .
#   docker run --rm -p 8080:8080 -v "$PWD/models:/models:ro" -v platestream-data:/data \
#       platestream:cpu serve
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PLATESTREAM_MODELS=/models \
    PLATESTREAM_STATE=/data

# libglib2.0-0: OpenCV's headless wheel still links it. PyAV's wheel bundles FFmpeg.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/platestream
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY stream ./stream
COPY trt_builder ./trt_builder
COPY configs ./configs
RUN pip install . \
    && python -c "import engine, stream, norfair, av, cv2, onnxruntime"

RUN useradd --system --uid 10001 --home-dir /data platestream \
    && mkdir -p /data /models && chown platestream /data
USER platestream
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

ENTRYPOINT ["platestream"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
