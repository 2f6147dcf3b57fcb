#!/usr/bin/env bash
# Create the peer virtualenvs used by bench/format_bench.py.
#
# Idempotent: a venv whose pinned packages already import is left alone; a
# missing or broken one is (re)built. Run from anywhere:
#     bash bench/setup_peers.sh            # all peers
#     bash bench/setup_peers.sh lance      # only some
#
# Venvs live in <repo>/.venvs/ (gitignored). torch is pinned to 2.13.0 because
# a plain `torch` resolves to the CUDA build (GBs of nvidia-* wheels); the
# loader benchmark needs torch in deeplake3, deeplake4 and lance.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENVS="$ROOT/.venvs"
PYTHON="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"

mkdir -p "$VENVS"

# pip here may carry an extra-index-url of local folders that warns once per
# package it lacks; keep the log readable, keep pip's exit status.
pip_install() {
  "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  return "${PIPESTATUS[0]}"
}
TORCH_OK="import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"

# name | pip requirements | import check
declare -A REQS=(
  [deeplake3]="deeplake==3.9.52 numpy<2 pillow lz4 $TORCH_PIN"
  [deeplake4]="deeplake==4.7.4 numpy pillow $TORCH_PIN"
  [lance]="pylance pyarrow numpy pillow $TORCH_PIN"
)
declare -A CHECK=(
  [deeplake3]="$TORCH_OK; import deeplake, numpy, PIL, lz4; assert deeplake.__version__=='3.9.52', deeplake.__version__; assert numpy.__version__.startswith('1.')"
  [deeplake4]="$TORCH_OK; import deeplake, numpy, PIL; assert deeplake.__version__=='4.7.4', deeplake.__version__"
  [lance]="$TORCH_OK; import lance, pyarrow, pyarrow.parquet, numpy, PIL"
)

peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=(deeplake3 deeplake4 lance)

for name in "${peers[@]}"; do
  if [ -z "${REQS[$name]+x}" ]; then
    echo "unknown peer venv '$name' (known: ${!REQS[*]})" >&2; exit 2
  fi
  venv="$VENVS/$name"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "${CHECK[$name]}" >/dev/null 2>&1; then
    echo "[setup] $name: ok ($venv)"
    continue
  fi
  echo "[setup] $name: installing ${REQS[$name]}"
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  pip_install "$venv/bin/python" -m pip install --quiet --upgrade pip
  # shellcheck disable=SC2086
  pip_install "$venv/bin/python" -m pip install --quiet ${REQS[$name]}
  "$venv/bin/python" -c "${CHECK[$name]}"
  echo "[setup] $name: ok"
done

# parquet shares the lance venv (pyarrow comes with it).
ln -sfn lance "$VENVS/arrow"
echo "[setup] done; venvs in $VENVS"
