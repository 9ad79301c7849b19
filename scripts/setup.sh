#!/usr/bin/env bash
# Install platestream into ./.venv on a fresh Debian/Ubuntu machine with Python >= 3.11.
#   scripts/setup.sh          runtime: venv, the package and its deps
#   scripts/setup.sh --test   also test deps and the system packages the tests use
#                             (GStreamer's RTSP server for the camera tests)
#   scripts/setup.sh --no-int8  skip building the int8 plate detector for the CPU (built by
#                             default, once: ~30-80 s; PLATESTREAM_INT8=0 does the same)
# Idempotent: a second run only checks. Prints the models directory it will use.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WITH_TEST=0
WITH_INT8=${PLATESTREAM_INT8:-1}
for a in "$@"; do
    case "$a" in
        --test) WITH_TEST=1 ;;
        --int8) WITH_INT8=1 ;;
        --no-int8) WITH_INT8=0 ;;
        *) echo "[setup] unknown option $a (use --test and/or --no-int8)" >&2; exit 2 ;;
    esac
done

# Everything goes to stderr; stdout carries only the models directory (the last line).
exec 3>&1 1>&2
say() { printf '[setup] %s\n' "$*"; }

apt_install() {  # install Debian packages that are missing, if we can
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { say "need root to install: ${missing[*]}"; return 1; }
        SUDO="sudo"
    fi
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null; }
}

# A Python >= 3.11: $PYTHON, else the first suitable one on PATH.
PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
    for c in python3 python3.13 python3.12 python3.11; do
        if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            PY=$c; break
        fi
    done
fi
[[ -n "$PY" ]] || { say "Python >= 3.11 not found (set PYTHON=/path/to/python3.11)"; exit 1; }

if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv with $($PY --version)"
    if ! "$PY" -m venv .venv 2>/dev/null; then
        # Debian's python3 ships venv/ensurepip separately
        rm -rf .venv
        apt_install "python3-venv" "$(basename "$(readlink -f "$(command -v "$PY")")")-venv" || true
        "$PY" -m venv .venv
    fi
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check --no-input)
LOG=.venv/setup.log    # pip's own output; its tail is shown only when a step fails
pip_step() {  # pip_step "what we are doing" pip-args...
    local what=$1; shift
    say "$what"
    if ! "${PIP[@]}" "$@" >>"$LOG" 2>&1; then
        say "failed: $what; the last lines of $ROOT/$LOG:"
        tail -n 25 "$LOG" | sed 's/^/    /'
        exit 1
    fi
}
stamp=.venv/.platestream-installed
extras=""; [[ $WITH_TEST -eq 1 ]] && extras="[dev]"
want="$(sha256sum pyproject.toml | cut -c1-16)$extras"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    : >"$LOG"
    pip_step "upgrading pip" install --upgrade pip
    # norfair-enough replaces norfair (same `norfair` package): drop an old norfair first, or
    # uninstalling it later would delete the fork's files.
    if "${PIP[@]}" show -q norfair >/dev/null 2>&1; then
        pip_step "removing norfair (replaced by norfair-enough)" uninstall -y norfair
    fi
    pip_step "installing platestream$extras and its dependencies (log: $LOG)" install -e ".$extras"
    if ! .venv/bin/python -c "import engine, stream, norfair, av, cv2, onnxruntime" >>"$LOG" 2>&1; then
        say "the install did not complete; the last lines of $ROOT/$LOG:"
        tail -n 25 "$LOG" | sed 's/^/    /'
        exit 1
    fi
    echo "$want" > "$stamp"
fi

if [[ $WITH_TEST -eq 1 ]]; then
    apt_install gstreamer1.0-rtsp python3-gst-1.0 gstreamer1.0-plugins-base \
        gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
        gstreamer1.0-libav gir1.2-gst-rtsp-server-1.0 python3-gi \
        || say "GStreamer RTSP packages missing: the RTSP tests will be skipped"
    # the web console's browser tests drive Debian's chromium through Playwright (no download)
    apt_install chromium || say "chromium missing: the console's browser tests will be skipped"
    # a real broker and database for the mqtt output and PostgreSQL store tests
    apt_install mosquitto postgresql \
        || say "mosquitto/postgresql missing: the MQTT and PostgreSQL tests will be skipped"
    # A real Triton server for the `engine.backend: triton` tests and scripts/bench_triton.py:
    # nvidia-pytriton ships a tritonserver binary (CPU, Python backend). It pins numpy<2, so
    # it gets its own environment; the tests skip (saying why) when it is not there.
    triton_want="nvidia-pytriton==0.7.0 onnxruntime>=1.17"
    if [[ "$(cat .venv-triton/.platestream-installed 2>/dev/null)" != "$triton_want" ]]; then
        say "installing PyTriton into .venv-triton (the Triton tests' server)"
        { "$PY" -m venv .venv-triton \
          && .venv-triton/bin/python -m pip -q --disable-pip-version-check install $triton_want \
             2>&1 | grep -v '^WARNING: Location' || true; } \
          && .venv-triton/bin/python -c "import pytriton, onnxruntime, tritonclient.grpc" 2>/dev/null \
          && echo "$triton_want" > .venv-triton/.platestream-installed \
          || say "PyTriton could not be installed: the Triton server tests will be skipped"
    fi
fi

# Models: $PLATESTREAM_MODELS, else ../shared/models beside the checkout, else the user cache.
if [[ -z "${PLATESTREAM_MODELS:-}" && -d "$ROOT/../shared/models" ]]; then
    PLATESTREAM_MODELS=$(cd "$ROOT/../shared/models" && pwd)
fi
export PLATESTREAM_MODELS=${PLATESTREAM_MODELS:-$HOME/.cache/platestream/models}
if ! .venv/bin/platestream models check >/dev/null 2>&1; then
    say "models missing in $PLATESTREAM_MODELS: fetching them"
    .venv/bin/platestream models fetch
fi
# Int8 copies of the models for the CPU (engine.precision auto uses them on VNNI/AMX CPUs;
# on the dev set as exact as fp32, see README). Cached by model sha256 + ONNX Runtime version
# (~30-80 s to build, once).
if [[ $WITH_INT8 -eq 1 ]]; then
    if ! q=$(.venv/bin/platestream models quantize 2>&1); then
        say "int8 models not built, fp32 will be used: $(printf '%s' "$q" | tail -n 1)"
    elif grep -q "built" <<<"$q"; then
        say "$(grep "built" <<<"$q" | sed 's/:$//')"
    fi
fi
say "ready: .venv, models in $PLATESTREAM_MODELS"
echo "$PLATESTREAM_MODELS" >&3
