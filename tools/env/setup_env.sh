#!/usr/bin/env bash
# Create (or update) the mmitpn virtual environment. Idempotent: a second run
# that finds everything in place returns in about a second.
#
#   bash tools/env/setup_env.sh [--keep-torch] [--force]
#
# Environment:
#   MMITPN_VENV     where the venv lives (default: <repo>/.venv)
#   MMITPN_CACHE    where built mmcv wheels are kept (default: ~/.cache/mmitpn)
#   PYTHON          interpreter used to create the venv (default: python3)
#   MAX_JOBS        parallel compile jobs for mmcv (default: nproc)
#
# --keep-torch  keep the torch that is already importable (venv created with
#               --system-site-packages) instead of installing torch 2.14.1.
# --force       reinstall even when the stamp says the venv is up to date.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${MMITPN_VENV:-$ROOT/.venv}"
CACHE="${MMITPN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmitpn}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
KEEP_TORCH=0
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --keep-torch) KEEP_TORCH=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "setup_env.sh: unknown argument '$arg' (use --keep-torch, --force or --help)" >&2; exit 2 ;;
  esac
done

log() { echo "[mmitpn-env] $*"; }
die() { echo "[mmitpn-env] ERROR: $*" >&2; exit 1; }

# The stamp hashes everything that decides the venv's content, so editing a
# requirement file or this script triggers an update.
STAMP="$VENV/.mmitpn-env-stamp"
SIG=$(cat "$0" "$ROOT"/requirements/*.txt "$ROOT/setup.py" | sha256sum | cut -c1-16)-keep$KEEP_TORCH
if [[ $FORCE == 0 && -f "$STAMP" && "$(cat "$STAMP")" == "$SIG" ]]; then
  exit 0
fi

# ---- preconditions, each with the fix -------------------------------------
command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found. Install Python 3.8-3.11 or set PYTHON=/path/to/python3."
"$PYTHON" -c 'import venv' 2>/dev/null || die "Python module 'venv' missing. On Debian/Ubuntu: apt-get install python3-venv."
PYINC=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
[[ -f "$PYINC/Python.h" ]] || die "Python headers not found ($PYINC/Python.h), needed to compile mmcv's ops. On Debian/Ubuntu: apt-get install python3-dev."
command -v g++ >/dev/null || command -v c++ >/dev/null || die "no C++ compiler found, needed to compile mmcv's ops. On Debian/Ubuntu: apt-get install g++."

# ---- venv -----------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment at $VENV"
  if [[ $KEEP_TORCH == 1 ]]; then
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" -r "$ROOT/requirements/build.txt"

# ---- torch ----------------------------------------------------------------
if [[ $KEEP_TORCH == 1 ]] && "$PY" -c 'import torch, torchvision' 2>/dev/null; then
  log "keeping installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
elif "$PY" -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith('$TORCH_VERSION') and torchvision.__version__.startswith('$TORCHVISION_VERSION')))" 2>/dev/null; then
  log "torch $TORCH_VERSION already installed"
else
  log "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
  "${PIP[@]}" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi
TORCH_VER=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
PY_TAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')

# ---- mmcv with compiled ops, built once and cached --------------------------
WITH_CUDA=0
if command -v nvcc >/dev/null && "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  WITH_CUDA=1
fi
[[ "${FORCE_CUDA:-0}" == 1 ]] && WITH_CUDA=1
VARIANT=cpu; [[ $WITH_CUDA == 1 ]] && VARIANT=cuda
KEY="mmcv-$MMCV_VERSION-torch$TORCH_VER-$PY_TAG-$VARIANT"
if "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
  log "mmcv $MMCV_VERSION with ops already installed"
else
  mkdir -p "$CACHE/$KEY"
  WHEEL=$(ls "$CACHE/$KEY"/mmcv-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z "$WHEEL" ]]; then
    log "building mmcv $MMCV_VERSION with ops ($VARIANT) -- about 10 minutes on 2 cores, done once and cached in $CACHE/$KEY"
    TMP=$(mktemp -d)
    trap 'rm -rf "$TMP"' EXIT
    "$PY" -m pip download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$TMP"
    tar -xzf "$TMP"/mmcv-$MMCV_VERSION.tar.gz -C "$TMP"
    SRC="$TMP/mmcv-$MMCV_VERSION"
    # torch >= 2.14 headers refuse C++17; mmcv 2.1.0 hard-codes it.
    if "$PY" -c "import torch,sys; v=tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 14))"; then
      sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    fi
    ( cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA=$WITH_CUDA MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$TMP/dist" . ) \
      || die "building mmcv failed (see the compiler output above). Check that g++ and the Python headers match this Python."
    # copy then rename: an interrupted copy never leaves a half wheel in the cache
    BUILT=$(ls "$TMP"/dist/mmcv-*.whl)
    cp "$BUILT" "$CACHE/$KEY/.partial.whl"
    mv "$CACHE/$KEY/.partial.whl" "$CACHE/$KEY/$(basename "$BUILT")"
    WHEEL="$CACHE/$KEY/$(basename "$BUILT")"
  else
    log "installing cached $WHEEL"
  fi
  "${PIP[@]}" --no-deps --force-reinstall "$WHEEL"
  "${PIP[@]}" addict mmengine packaging pillow pyyaml yapf opencv-python-headless
fi

# ---- the OpenMMLab stack, mmitpn and test tools ----------------------------
"${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/mminstall.txt" -r "$ROOT/requirements/tests.txt"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"
"$PY" -c 'import mmcv.ops, mmdet, mmseg, mmpretrain, mmitpn' \
  || die "the environment was installed but imports fail; rerun with --force"
echo "$SIG" > "$STAMP"
log "ready: $VENV ($("$PY" -c 'import torch, mmcv, mmdet, mmseg, mmpretrain; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}")'))"
