#!/usr/bin/env bash
# Installs PyTorch (CPU use only) from PyPI into bench/backends/.venv.
#
# Why the dance: PyPI only serves the CUDA build of torch for Linux x86_64
# (the "+cpu" wheels live on a separate index that is not reachable here).
# `pip install --no-deps torch` alone does not import: libtorch_python.so
# needs libtorch_cuda.so, which is linked against cuBLAS, cuDNN, cuFFT,
# cuSPARSE(Lt), cuSOLVER, cuRAND, NCCL, NVSHMEM and cuFile, so those nvidia-*
# wheels must be present even though no GPU is ever used. What *can* be
# left out is triton (torch.compile only), nvrtc (JIT, loaded lazily) and
# nvtx (profiling markers): about 0.25 GB less to fetch.
#
# 2.9.0 is the version tch 0.22.0 / torch-sys 0.22.0 (used by burn-tch 0.21.0)
# checks for, so the same venv also provides libtorch for the `tch` feature
# (LIBTORCH_USE_PYTORCH=1).
set -euo pipefail
cd "$(dirname "$0")"
TORCH_VERSION="${TORCH_VERSION:-2.9.0}"
SKIP_RE='^(triton|nvidia-cuda-nvrtc-cu12|nvidia-nvtx-cu12)$'

if [ -z "${FORCE:-}" ] && [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    echo "torch $TORCH_VERSION already importable in bench/backends/.venv"
    exit 0
fi

python3 -m venv .venv
PIP=(.venv/bin/pip install --disable-pip-version-check -q)
"${PIP[@]}" --no-deps "torch==$TORCH_VERSION"

# torch's own runtime requirements, read from its metadata, minus SKIP_RE.
mapfile -t DEPS < <(.venv/bin/python - "$SKIP_RE" <<'PY'
import importlib.metadata as md, re, sys
skip = re.compile(sys.argv[1])
for req in md.requires("torch") or []:
    # pip vendors `packaging`; use it to evaluate the environment markers.
    from pip._vendor.packaging.requirements import Requirement
    r = Requirement(req)
    if r.marker is not None and not r.marker.evaluate({"extra": ""}):
        continue
    if not skip.match(r.name):
        print(f"{r.name}{r.specifier}")
PY
)
"${PIP[@]}" "${DEPS[@]}" numpy
.venv/bin/python -c "import torch; print('torch', torch.__version__, 'threads', torch.get_num_threads(), 'cuda available', torch.cuda.is_available())"
