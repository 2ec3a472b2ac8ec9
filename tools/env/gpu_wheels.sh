#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with the wheels the GPU check's machine lacks:
# CPython 3.12 on manylinux x86_64 with torch, torchvision, timm, numpy,
# opencv, pytest and scipy, no OpenMMLab package and no network (see
# tools/gpu_check.sh). Run it here, where pip reaches its indexes:
#
#   bash tools/env/gpu_wheels.sh [--force]
#
# It puts there: mmengine, mmcv built WITHOUT its compiled ops (pure Python,
# MMCV_WITH_OPS=0, which names the distribution mmcv-lite; it imports as
# mmcv; the backbone, pyramid and pre-training need no ops),
# mmpretrain, mmitpn itself, pytest-timeout (pytest.ini uses it) and every
# requirement of those that the machine does not have
# (mmitpn.benchmark.gpu_check.GPU_BASE), resolved for CPython 3.12. The
# versions of the OpenMMLab stack are the ones of this project's venv.
# Idempotent: a second run downloads nothing (a stamp holds the inputs); it
# only rebuilds the mmitpn wheel from the checkout. --force resolves again.
#
# Environment: PYTHON (default: .venv/bin/python, else python3) runs pip,
# builds the mmcv and mmitpn wheels and checks the set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/.whl"
if [[ -z "${PYTHON:-}" ]]; then
  PYTHON=python3
  [[ -x "$ROOT/.venv/bin/python" ]] && PYTHON="$ROOT/.venv/bin/python"
fi
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu_wheels.sh: unknown argument '$arg' (use --force or --help)" >&2; exit 2 ;;
  esac
done
log() { echo "[gpu-wheels] $*"; }
die() { echo "[gpu-wheels] ERROR: $*" >&2; exit 1; }

# the stack's versions: those of the venv (fallback: what it pins today)
version() { "$PYTHON" -c "import $1; print($1.__version__)" 2>/dev/null || echo "$2"; }
MMENGINE=$(version mmengine 0.10.7)
MMCV=$(version mmcv 2.1.0)
MMPRETRAIN=$(version mmpretrain 1.2.0)
TARGET=(--python-version 3.12 --implementation cp --abi cp312
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --only-binary=:all:)
PIP=("$PYTHON" -m pip --disable-pip-version-check)
mkdir -p "$DEST"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---- mmitpn, from the checkout (always: cheap, and the code may change) --
rm -f "$DEST"/mmitpn-*.whl
( cd "$ROOT" && "${PIP[@]}" wheel -q --no-deps --no-build-isolation -w "$TMP/mmitpn" . ) \
  || die "building the mmitpn wheel failed (see above)"
cp "$TMP"/mmitpn/mmitpn-*.whl "$DEST/"

SIG=$(printf '%s\n' "$MMENGINE" "$MMCV" "$MMPRETRAIN" | cat - "$0" "$ROOT/requirements/runtime.txt" \
      "$ROOT/mmitpn/benchmark/gpu_check.py" | sha256sum | cut -c1-16)
STAMP="$DEST/.stamp"
if [[ $FORCE == 0 && -f "$STAMP" && "$(head -n1 "$STAMP")" == "$SIG" ]] \
   && tail -n +2 "$STAMP" | while read -r f; do [[ -f "$DEST/$f" ]] || exit 1; done; then
  log "up to date ($(tail -n +2 "$STAMP" | wc -l) wheels + mmitpn)"
else
  # ---- mmcv without ops: its sdist built into a pure-Python wheel ---------
  if ! ls "$DEST"/mmcv_lite-"$MMCV"-py*-none-any.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV without ops (MMCV_WITH_OPS=0)"
    "${PIP[@]}" download -q --no-deps --no-binary :all: "mmcv==$MMCV" -d "$TMP/src"
    tar -xzf "$TMP/src/mmcv-$MMCV.tar.gz" -C "$TMP/src"
    ( cd "$TMP/src/mmcv-$MMCV" && MMCV_WITH_OPS=0 "${PIP[@]}" wheel -q --no-deps \
        --no-build-isolation -w "$TMP/mmcv" . ) || die "building mmcv $MMCV failed (see above)"
    BUILT=$(ls "$TMP"/mmcv/mmcv_lite-*.whl)
    [[ "$BUILT" == *-none-any.whl ]] || die "the mmcv wheel is not pure Python: $(basename "$BUILT")"
    rm -f "$DEST"/mmcv_lite-*.whl
    cp "$BUILT" "$DEST/"
  fi
  # ---- resolve the rest for CPython 3.12 (no download of what is known) ---
  log "resolving mmengine $MMENGINE, mmcv $MMCV, mmpretrain $MMPRETRAIN, mmitpn for CPython 3.12"
  "${PIP[@]}" install -q --dry-run --ignore-installed --report "$TMP/report.json" \
      --target "$TMP/target" "${TARGET[@]}" --find-links "$DEST" \
      "mmengine==$MMENGINE" "mmcv-lite==$MMCV" "mmpretrain==$MMPRETRAIN" mmitpn pytest-timeout \
    || die "pip could not resolve the set for CPython 3.12 (see above)"
  "$PYTHON" - "$TMP/report.json" > "$TMP/wanted.txt" <<'EOF'
import json, sys
from mmitpn.benchmark.gpu_check import in_gpu_base
for item in json.load(open(sys.argv[1]))['install']:
    meta = item['metadata']
    if not in_gpu_base(meta['name']) and meta['name'] not in ('mmcv-lite', 'mmitpn'):
        print(f"{meta['name']}=={meta['version']}")
EOF
  KEEP=()
  while read -r req; do
    name=${req%%==*}; ver=${req##*==}
    pat=$(echo "$name" | tr 'A-Z-.' 'a-z__')
    have=$(cd "$DEST" && ls 2>/dev/null | tr 'A-Z' 'a-z' | grep -E "^${pat}-${ver}-" | head -n1 || true)
    if [[ -z "$have" ]]; then
      log "downloading $req"
      "${PIP[@]}" download -q --no-deps "${TARGET[@]}" -d "$DEST" "$req" \
        || die "no CPython 3.12 manylinux wheel of $req"
    fi
    KEEP+=("$pat-$ver-")
  done < "$TMP/wanted.txt"
  KEEP+=("mmcv_lite-$MMCV-" "mmitpn-")
  # drop wheels of earlier runs that the set no longer holds
  for f in "$DEST"/*.whl; do
    low=$(basename "$f" | tr 'A-Z' 'a-z')
    keep=0
    for k in "${KEEP[@]}"; do [[ "$low" == "$k"* ]] && keep=1; done
    [[ $keep == 1 ]] || { log "removing $(basename "$f")"; rm -f "$f"; }
  done
  { echo "$SIG"; (cd "$DEST" && ls *.whl | grep -v '^mmitpn-'); } > "$STAMP"
fi

"$PYTHON" -m mmitpn.benchmark.gpu_check check-wheels "$DEST" \
  || die "the set in $DEST is not complete (see above)"
SIZE=$(du -sm "$DEST" | cut -f1)
(( SIZE < 64 )) || die "$DEST holds $SIZE MiB, more than the 64 MiB a device call carries"
log "ready: $DEST ($SIZE MiB); run the check there with: bash tools/gpu_check.sh"
