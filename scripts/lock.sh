#!/usr/bin/env bash
# Refresh the pinned requirements (the lock) from the ranges in requirements*.in.
#
#   scripts/lock.sh                  newest versions allowed by the ranges (then run the tests!)
#   scripts/lock.sh FREEZE.txt       pin exactly the versions of a tested environment
#                                    (FREEZE.txt = `pip freeze` of the venv the test suite passed in)
#
# Writes requirements.txt (runtime: the README's run command and Hugging Face Spaces install it),
# requirements-ray.txt (optional Ray Data), requirements-dev.txt (everything the test command
# installs) and requirements-cpu.txt (requirements.txt with PyTorch's CPU-only wheels).
# The resolution is universal (Linux, macOS, Windows; platform-only packages get markers) for
# Python 3.11, the version of the Space and CI. Needs network access to PyPI; uses `uv` (installed
# into a throw-away venv when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8

uv_bin=$(command -v uv || true)
if [ -z "$uv_bin" ]; then
  tools="${TMPDIR:-/tmp}/dashboard-lock-tools"
  [ -x "$tools/bin/uv" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q "uv==$UV_VERSION"; }
  uv_bin="$tools/bin/uv"
fi

constraints=()
if [ $# -ge 1 ]; then
  # pip freeze may list this project itself or editable installs: keep plain pins only
  grep -E '^[A-Za-z0-9_.-]+(\[[^]]*\])?==' "$1" > "${TMPDIR:-/tmp}/dashboard-lock-constraints.txt"
  constraints=(--constraint "${TMPDIR:-/tmp}/dashboard-lock-constraints.txt")
fi

compile() {  # compile IN OUT
  "$uv_bin" pip compile "$1" --output-file "$2" --universal --python-version 3.11 --quiet \
    --custom-compile-command "scripts/lock.sh" "${constraints[@]}"
  # the temporary constraints file is no origin worth recording
  sed -i '/^ *#   -c .*dashboard-lock-constraints\.txt$/d' "$2"
}
compile requirements.in requirements.txt
compile requirements-ray.in requirements-ray.txt
compile requirements-dev.in requirements-dev.txt
python3 scripts/cpu_requirements.py requirements.txt requirements-cpu.txt
echo "lock written: requirements.txt requirements-ray.txt requirements-dev.txt requirements-cpu.txt"
