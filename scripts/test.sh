#!/usr/bin/env bash
# Install everything the tests need (system packages, .venv, deps) and run the full suite.
#   scripts/test.sh [pytest args...]
# PLATESTREAM_SLOW=1 also runs the long soak tests (marked `slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
PLATESTREAM_MODELS=$(scripts/setup.sh --test)
export PLATESTREAM_MODELS
export PYTHONUNBUFFERED=1
echo "[test] models: $PLATESTREAM_MODELS"
# The wheel as users install it (fresh venv, not editable): read and run work from there.
scripts/test_wheel.sh
# pytest exits 5 when no test ran: that is a failure here, as is any other non-zero code.
exec .venv/bin/python -m pytest -p no:cacheprovider --durations=15 "$@"
