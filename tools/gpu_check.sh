#!/usr/bin/env bash
# The GPU check (issue 20) in one call on a GPU machine that has CPython
# 3.12 with torch, torchvision, timm, numpy, opencv, pytest and scipy, no
# OpenMMLab package and no network. Run from the repository root with the
# .whl/ folder of tools/env/gpu_wheels.sh beside it:
#
#   bash tools/gpu_check.sh [--budget-s 480] [--dry-run]
#
# 1. installs the wheels of .whl/ into a temporary site (pip --no-index
#    --no-deps --target; the checkout's mmitpn comes first on PYTHONPATH);
# 2. runs the tests marked gpu (python -m pytest -m gpu);
# 3. runs the CUDA benchmark: iTPN-B at 224, pixel and pixel + MFM steps,
#    bf16 autocast and fp16 AMP, the largest batch by doubling, images/s,
#    peak memory and MFU against mmpretrain's iTPN with the same weights
#    (outputs checked equal first), torch.compile rows if time is left
#    (python tools/analysis_tools/benchmark.py --throughput --device cuda);
# 4. writes gpu_check.json and gpu_check.md (and each phase's own JSON /
#    log) into $OUT when it is set, else work_dirs/gpu_check/.
#
# --budget-s S  seconds for all of it (default 480); a phase that does not
#               fit what is left is skipped and reported as skipped, and the
#               benchmark skips (and reports) what does not fit its share.
# --dry-run     here, without a GPU: check that .whl/ is a complete set for
#               CPython 3.12 manylinux x86_64, install it into a site that
#               sees only the GPU machine's packages (taken from this
#               project's venv; binary wheels for 3.12 stand in by the
#               venv's builds of the same packages), import the stack with
#               mmcv's ops absent, collect the gpu tests, run every code
#               path of the benchmark on the CPU with a tiny model, write
#               the report; print the plan.
# Environment: PYTHON (default: the first of python3, python that imports
#              torch; --dry-run: .venv/bin/python), OUT.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUDGET=480
DRY=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --budget-s) BUDGET="${2:?--budget-s needs a number of seconds}"; shift ;;
    --budget-s=*) BUDGET="${1#*=}" ;;
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$BUDGET" =~ ^[0-9]+$ ]] || { echo "gpu_check.sh: --budget-s takes whole seconds, got '$BUDGET'" >&2; exit 2; }
# shares of the budget (seconds)
PYTEST_MAX=210   # the gpu tests at most
PER_TEST=150     # one test at most
BENCH_MIN=120    # the benchmark needs at least this to start
MARGIN=15        # kept for the report

T0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
log() { echo "[gpu-check $(( $(date +%s) - T0 ))s] $*"; }
die() { echo "[gpu-check] ERROR: $*" >&2; exit 1; }
OUT_DIR="${OUT:-$ROOT/work_dirs/gpu_check}"
mkdir -p "$OUT_DIR"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PHASES=()
phase() { PHASES+=(--phase "$1" "$2" "$3" "$4"); log "$1: $2 (exit $3, $4 s)"; }
# the last non-empty line of a log, for a failed phase's status
last_line() { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-200; }

ls "$ROOT"/.whl/*.whl >/dev/null 2>&1 \
  || die "no wheels in $ROOT/.whl: run 'bash tools/env/gpu_wheels.sh' on a machine with an index, and carry .whl/ along"
GPU_FILES=$(grep -rl --include='test_*.py' -E 'pytest\.mark\.gpu' tests | sort | tr '\n' ' ')

# ---- 1. the interpreter and the site ------------------------------------
SITE="$WORK/site"
if [[ $DRY == 1 ]]; then
  LOCAL="${PYTHON:-$ROOT/.venv/bin/python}"
  "$LOCAL" -c 'import torch' 2>/dev/null || die "--dry-run needs this project's venv ($LOCAL imports no torch)"
  log "checking .whl/ for CPython 3.12 manylinux x86_64"
  "$LOCAL" -m mmitpn.benchmark.gpu_check check-wheels "$ROOT/.whl" || die ".whl/ is not a complete set"
  # an interpreter that sees only what the GPU machine has: a bare venv of
  # the same Python whose path holds the site and links to the venv's
  # torch, numpy, ... (the GPU machine's packages) and stand-ins
  BASEPY=$("$LOCAL" -c 'import sys, os; print(os.path.join(sys.base_prefix, "bin", "python3"))')
  "$BASEPY" -m venv --without-pip "$WORK/venv" || die "cannot create a bare venv with $BASEPY"
  LOCAL_SITE=$("$LOCAL" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  PURE=() STAND_INS=()
  for w in "$ROOT"/.whl/*.whl; do
    if [[ "$w" == *-none-any.whl ]]; then PURE+=("$w"); else
      n=$(basename "$w"); STAND_INS+=("${n%%-*}"); fi
  done
  "$LOCAL" -m mmitpn.benchmark.gpu_check base-links "$LOCAL_SITE" "$WORK/base" --also "${STAND_INS[@]}" >/dev/null \
    || die "linking the venv's packages failed"
  log "stand-ins (this venv's builds) for the 3.12 binary wheels: ${STAND_INS[*]}"
  T=$(date +%s)
  "$LOCAL" -m pip install -q --disable-pip-version-check --no-index --no-deps --ignore-requires-python \
    --target "$SITE" "${PURE[@]}" || die "installing the pure-Python wheels failed"
  VSITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  printf '%s\n%s\n%s\n' "$ROOT" "$SITE" "$WORK/base" > "$VSITE/gpu_check.pth"
  PY="$WORK/venv/bin/python"
  phase install ok 0 $(( $(date +%s) - T ))
else
  PY="${PYTHON:-}"
  if [[ -z "$PY" ]]; then
    for c in python3 python; do "$c" -c 'import torch' 2>/dev/null && { PY=$c; break; }; done
  fi
  [[ -n "$PY" ]] || die "no python that imports torch (set PYTHON)"
  T=$(date +%s)
  if "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --target "$SITE" "$ROOT"/.whl/*.whl
    rc=$?
  else  # no pip: a wheel is a zip to unpack
    "$PY" - "$SITE" "$ROOT"/.whl/*.whl <<'EOF'
import glob, os, shutil, sys, zipfile
site = sys.argv[1]
for whl in sys.argv[2:]:
    zipfile.ZipFile(whl).extractall(site)
for data in glob.glob(os.path.join(site, '*.data')):
    for kind in ('purelib', 'platlib'):
        src = os.path.join(data, kind)
        for name in os.listdir(src) if os.path.isdir(src) else []:
            shutil.move(os.path.join(src, name), os.path.join(site, name))
    shutil.rmtree(data)
EOF
    rc=$?
  fi
  export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
  if [[ $rc == 0 ]]; then phase install ok 0 $(( $(date +%s) - T )); else phase install failed "$rc" $(( $(date +%s) - T )); fi
fi

# ---- the stack imports, without mmcv's ops ---------------------------------
T=$(date +%s)
"$PY" - > "$OUT_DIR/imports.txt" 2>&1 <<'EOF'
import importlib.util, sys
import torch, mmengine, mmcv, mmpretrain, mmitpn
from mmpretrain.utils import register_all_modules
register_all_modules(init_default_scope=False)
from mmengine.runner import Runner  # noqa: F401
from mmitpn.registry import MODELS
assert importlib.util.find_spec('mmcv._ext') is None, 'mmcv has ops here'
try:
    import mmcv.ops  # noqa: F401
    print('mmcv.ops: importable (ops present)')
except (ImportError, ModuleNotFoundError) as exc:
    print(f'mmcv.ops: absent as expected ({type(exc).__name__})')
arch = dict(embed_dims=64, depths=(1, 1, 2), num_heads=2)
model = MODELS.build(dict(
    type='mmitpn.ITPNMIM',
    backbone=dict(type='mmitpn.HiViTBackbone', arch=arch, img_size=64),
    neck=dict(type='mmitpn.ITPNPyramid', in_channels=(16, 32, 64),
              out_channels=32, fpn_depth=1, num_outs=3),
    head=dict(type='mmitpn.ITPNPixelHead', fpn_channels=32, embed_dims=32,
              depth=1, num_heads=2, img_size=64),
    mfm_head=dict(type='mmitpn.ITPNFeatureHead', fpn_channels=32,
                  target_channels=(16, 32, 64), embed_dims=32, depth=1,
                  num_heads=2, img_size=64)))
loss = model.loss(torch.randn(2, 3, 64, 64), [])
print('ITPNMIM losses:', {k: round(v.item(), 4) for k, v in loss.items()})
print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda',
      torch.cuda.is_available(), 'mmengine', mmengine.__version__, 'mmcv',
      mmcv.__version__, 'mmpretrain', mmpretrain.__version__, 'mmitpn from',
      mmitpn.__file__)
EOF
rc=$?
cat "$OUT_DIR/imports.txt"
if [[ $rc == 0 ]]; then phase imports ok 0 $(( $(date +%s) - T )); else
  phase imports "failed: $(last_line "$OUT_DIR/imports.txt")" "$rc" $(( $(date +%s) - T )); fi
IMPORTS_OK=$(( rc == 0 ))
HAS_CUDA=0
"$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null && HAS_CUDA=1

# ---- plan -------------------------------------------------------------------
PYTEST_S=$(( $(left) - BENCH_MIN - MARGIN )); (( PYTEST_S > PYTEST_MAX )) && PYTEST_S=$PYTEST_MAX
log "plan: budget $BUDGET s, $(left) s left; gpu tests ($GPU_FILES) up to $PYTEST_S s, $PER_TEST s each;" \
    "benchmark the rest less $MARGIN s for the report (it needs $BENCH_MIN s to start; torch.compile rows only if 150 s are left by then)"

# ---- 2. the tests marked gpu -----------------------------------------------
JUNIT="$OUT_DIR/pytest.xml"
COLLECTED="$OUT_DIR/pytest_collected.txt"
rm -f "$JUNIT" "$COLLECTED"
T=$(date +%s)
TIMEOUT_OPT=()
"$PY" -c 'import pytest_timeout' 2>/dev/null && TIMEOUT_OPT=(--timeout="$PER_TEST")
if [[ $IMPORTS_OK == 0 ]]; then
  phase pytest "skipped: the stack does not import" 0 0
elif (( PYTEST_S < 30 )); then
  phase pytest "skipped: budget" 0 0
else
  timeout "$PYTEST_S" "$PY" -m pytest -m gpu --collect-only -q -p no:cacheprovider -o addopts="" \
    $GPU_FILES > "$COLLECTED" 2>&1
  rc=$?
  log "collected $(grep -c '::' "$COLLECTED") gpu tests"
  if [[ $rc != 0 ]]; then
    tail -n 20 "$COLLECTED"
    phase pytest "collection failed: $(last_line "$COLLECTED")" "$rc" $(( $(date +%s) - T ))
  elif [[ $HAS_CUDA == 0 ]]; then
    phase pytest "collected only: no CUDA device" 0 $(( $(date +%s) - T ))
  else
    REST=$(( PYTEST_S - ($(date +%s) - T) ))
    timeout -s INT -k 20 "$REST" "$PY" -m pytest -m gpu -p no:cacheprovider -o addopts="" \
      "${TIMEOUT_OPT[@]}" -rA --junitxml="$JUNIT" $GPU_FILES > "$OUT_DIR/pytest.log" 2>&1
    rc=$?
    tail -n 30 "$OUT_DIR/pytest.log"
    case $rc in
      0) status=ok ;; 1) status="tests failed" ;; 124|2) status="cut at its share of the budget" ;;
      5) status="no tests" ;; *) status="error: $(last_line "$OUT_DIR/pytest.log")" ;;
    esac
    phase pytest "$status" "$rc" $(( $(date +%s) - T ))
  fi
fi

# ---- 3. the benchmark --------------------------------------------------------
BENCH_JSON="$OUT_DIR/benchmark.json"
rm -f "$BENCH_JSON"
T=$(date +%s)
BENCH_S=$(( $(left) - MARGIN ))
if [[ $IMPORTS_OK == 0 ]]; then
  phase benchmark "skipped: the stack does not import" 0 0
elif (( BENCH_S < BENCH_MIN )); then
  phase benchmark "skipped: budget ($BENCH_S s left)" 0 0
else
  if [[ $DRY == 1 || $HAS_CUDA == 0 ]]; then
    ARGS=(--device cpu --quick --max-batch 4 --peak-tflops 1 --warmup 1 --repeat 1)
    log "benchmark on the CPU with a tiny model (code paths only, no measurement)"
  else
    ARGS=(--device cuda --compile)
  fi
  timeout -s INT -k 20 "$BENCH_S" "$PY" tools/analysis_tools/benchmark.py --throughput "${ARGS[@]}" \
    --budget-s $(( BENCH_S - 20 )) --json "$BENCH_JSON" --markdown "$OUT_DIR/benchmark.md" \
    --markdown-tag gpu > "$OUT_DIR/benchmark.log" 2>&1
  rc=$?
  grep -v '^ \|^{\|^}' "$OUT_DIR/benchmark.log" | tail -n 40
  case $rc in 0) status=ok ;; 124) status="cut at its share of the budget" ;;
    *) status="failed: $(last_line "$OUT_DIR/benchmark.log")" ;; esac
  [[ $DRY == 1 || $HAS_CUDA == 0 ]] && [[ $rc == 0 ]] && status="ok (CPU, tiny model: code paths only)"
  phase benchmark "$status" "$rc" $(( $(date +%s) - T ))
fi

# ---- 4. the report -------------------------------------------------------------
"$PY" -m mmitpn.benchmark.gpu_check report --out "$OUT_DIR" --junit "$JUNIT" --collected "$COLLECTED" \
  --bench "$BENCH_JSON" --budget-s "$BUDGET" "${PHASES[@]}" > "$OUT_DIR/report.log" 2>&1 \
  || { cat "$OUT_DIR/report.log"; die "writing the report failed"; }
log "report: $OUT_DIR/gpu_check.md and gpu_check.json ($(( $(date +%s) - T0 )) s in all)"
if [[ $DRY == 1 ]]; then
  FAILED=$(grep -c -E '^\| (install|imports|pytest|benchmark) \| (failed|error|collection failed|skipped)' "$OUT_DIR/gpu_check.md")
  [[ $FAILED == 0 ]] || die "the dry run found problems (see $OUT_DIR/gpu_check.md)"
  log "dry run passed: on a GPU machine run 'bash tools/gpu_check.sh' from the repository root with .whl/ carried along"
fi
