#!/usr/bin/env bash
# The main job on the bundled demo config: both sample videos through the stream pipeline,
# each event printed as it comes (and written to demo-output/events/*.csv and *.jsonl).
#   scripts/demo.sh                       installs into .venv (scripts/setup.sh), then runs
#   scripts/demo.sh --print-events json   full Snapshot-shaped JSON per event
# Videos come from $PLATESTREAM_DATA (default here: ../shared/evaldata) or --data-dir DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -x scripts/setup.sh ]]; then
    PLATESTREAM_MODELS=$(scripts/setup.sh | tail -n 1)
    export PLATESTREAM_MODELS
elif [[ ! -x .venv/bin/python ]]; then
    echo "demo: no .venv and no scripts/setup.sh to create it" >&2
    exit 1
fi
export PLATESTREAM_DATA=${PLATESTREAM_DATA:-$(cd .. && pwd)/shared/evaldata}
args=("$@")
[[ " ${args[*]} " == *" --print-events"* ]] || args=(--print-events short "${args[@]}")
echo "[demo] platestream run configs/demo.yaml (Ctrl-C to stop; outputs and the log in" \
    "demo-output/)" >&2
exec .venv/bin/python -m stream.cli --log-file demo-output/platestream.log \
    run configs/demo.yaml "${args[@]}"
