#!/usr/bin/env bash
# The package as a user gets it: build the wheel, install it (not editable) into a fresh
# temporary venv, and run `platestream read` and `platestream run` on a sample from an empty
# directory, outside the checkout. Called by scripts/test.sh (CI); about a minute.
#   scripts/test_wheel.sh        needs PLATESTREAM_MODELS (scripts/setup.sh prints it)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
say() { printf '[wheel] %s\n' "$*"; }
DATA=${PLATESTREAM_DATA:-$ROOT/../shared/evaldata}
: "${PLATESTREAM_MODELS:?set PLATESTREAM_MODELS (scripts/setup.sh prints it)}"
export PLATESTREAM_MODELS
TMP=$(mktemp -d "${TMPDIR:-/tmp}/platestream-wheel.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
LOG=$TMP/pip.log
step() {  # step "what" command...: output to the log, its tail only on failure
    local what=$1; shift
    say "$what"
    if ! "$@" >>"$LOG" 2>&1; then
        say "failed: $what"; tail -n 25 "$LOG" | sed 's/^/    /'; exit 1
    fi
}

step "building the wheel" .venv/bin/python -m pip wheel --no-deps --disable-pip-version-check \
    -w "$TMP/dist" .
WHEEL=$(ls "$TMP"/dist/platestream-*.whl)
# The venv gets no pip of its own (.venv's pip installs into it): seconds saved, same result.
step "creating a fresh venv" "${PYTHON:-python3}" -m venv --without-pip "$TMP/venv"
step "installing $(basename "$WHEEL") with its dependencies" .venv/bin/python -m pip \
    --disable-pip-version-check --python "$TMP/venv/bin/python" install --no-compile "$WHEEL"

mkdir "$TMP/cwd"
cd "$TMP/cwd"
export PLATESTREAM_STATE=$TMP/state
PS=$TMP/venv/bin/platestream

say "platestream read (installed wheel)"
"$PS" read "$DATA/images/eu/eu1.jpg" >"$TMP/read.json" 2>>"$LOG"
"$TMP/venv/bin/python" - "$TMP/read.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["results"], "no plate read"
print(f"[wheel]   read {r['results'][0]['plate']}")
EOF

say "platestream run (installed wheel, tracking by norfair-enough)"
cat >"$TMP/run.yaml" <<EOF
output_dir: $TMP/out
cameras:
  street: {url: $DATA/videos/license_plate.mp4, realtime: false, sample: 3, outputs: [jsonl]}
outputs:
  jsonl: {type: jsonl, file: "{camera_id}.jsonl"}
EOF
"$PS" run "$TMP/run.yaml" --print-events short --threads 2 2>"$TMP/run.log" | tee "$TMP/events.txt" \
    | sed 's/^/[wheel]   /'
grep -q "LS15EBC" "$TMP/events.txt" || { say "run: expected plate LS15EBC"; tail "$TMP/run.log"; exit 1; }
[[ -z "$(ls -A "$TMP/cwd")" ]] || { say "files appeared in the working directory:"; ls -A; exit 1; }
say "ok: the installed wheel reads and tracks; nothing written to the working directory"
