#!/usr/bin/env bash
# Create or reuse .venv and install dmlviz with its dev extras. A second run is a fast no-op:
# the install is skipped while pyproject.toml and constraints.txt are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STAMP="$VENV/.dmlviz-installed"
want=$(cat pyproject.toml constraints.txt scripts/setup_env.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c 'import dmlviz, torchvision' 2>/dev/null; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
echo "Installing dmlviz and its dependencies into $VENV (about 2 minutes on a fresh machine)..."
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]" 2>&1 | grep -v "is ignored" || true
"$VENV/bin/python" -c 'import dmlviz' || { echo "dmlviz failed to install: see the pip output above" >&2; exit 1; }
# On a CPU machine a CUDA package means the pins did not hold: several GB of downloads and a broken torchvision.
if ! "$VENV/bin/python" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  if "$VENV/bin/python" -m pip list 2>/dev/null | grep -iE "^(nvidia-|triton)"; then
    echo "CUDA packages were pulled in on a CPU machine: check constraints.txt" >&2; exit 1
  fi
fi
if "$VENV/bin/python" -c 'import torch; assert "+cpu" in torch.__version__' 2>/dev/null; then
  bash scripts/fix_torchvision_cpu.sh "$VENV/bin/python"
fi
"$VENV/bin/python" -c 'import torchvision'
echo "$want" > "$STAMP"
echo "Environment ready in $VENV."
