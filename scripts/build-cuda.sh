#!/usr/bin/env bash
# Builds forge-host with the `cuda` feature, on a machine with or without a
# GPU: nvcc, the CUDA headers and the libraries the link needs come from
# PyPI (NVIDIA's own wheels, CUDA 13.0, pinned), installed under
# target/cuda-toolkit. The driver library (libcuda.so.1) is not on PyPI: the
# link uses a stub with the same soname, generated from the driver
# functions cudarc binds (what NVIDIA's toolkit ships as lib/stubs); at run
# time the real driver answers.
#
#   scripts/build-cuda.sh                 # target/debug/forge-host (dev profile)
#   scripts/build-cuda.sh --release       # any further cargo build arguments
#   CUDA_COMPUTE_CAP=80 scripts/build-cuda.sh   # another GPU (default 90: H100/H200)
#
# CUDA 13.0 because its PTX is what a 580-series driver (CUDA 13.0) can JIT;
# a newer nvcc writes PTX such a driver refuses. At run time the binary
# needs libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13
# and libcudart.so.13 on the loader's path: a PyTorch cu130 install has them
# (scripts/bench-cuda.sh points LD_LIBRARY_PATH there).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
toolkit="${FORGE_CUDA_TOOLKIT:-$root/target/cuda-toolkit}"
cuda="$toolkit/nvidia/cu13"

if [[ ! -x "$cuda/bin/nvcc" || ! -x "$cuda/nvvm/bin/cicc" || ! -d "$cuda/include/nv" ]]; then
  echo "installing nvcc 13.0 and the CUDA libraries from PyPI into $toolkit" >&2
  python3 -m pip install -q --no-deps --target "$toolkit" \
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
    nvidia-cuda-cccl==13.0.85 nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 \
    nvidia-cublas==13.1.2.11 nvidia-curand==10.4.0.35
fi

# The wheels carry only versioned names (libcublas.so.13); the linker asks
# for libcublas.so. cudarc's build script adds $CUDA_PATH/lib and
# $CUDA_PATH/lib/stubs to the link's search path (RUSTFLAGS would do too,
# but a changed RUSTFLAGS rebuilds every crate).
for lib in cublas:13 cublasLt:13 curand:10 nvrtc:13 cudart:13; do
  ln -sf "lib${lib%%:*}.so.${lib##*:}" "$cuda/lib/lib${lib%%:*}.so"
done
links="$cuda/lib/stubs"
mkdir -p "$links"

# The driver stub: every cu* function cudarc's driver bindings declare.
if [[ ! -f "$links/libcuda.so" ]]; then
  cudarc="$(cargo metadata --format-version 1 --features cuda --manifest-path host/Cargo.toml 2>/dev/null |
    python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc"))')"
  grep -o '^pub unsafe fn cu[A-Za-z0-9_]*' "$(dirname "$cudarc")/src/driver/sys/mod.rs" |
    sed 's/^pub unsafe fn \(.*\)/int \1(void) { return 999; }/' | sort -u >"$links/cuda-stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$links/libcuda.so" "$links/cuda-stub.c"
fi

export CUDA_PATH="$cuda"
export PATH="$cuda/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# Tell cudarc which CUDA this is without asking a GPU.
export CUDARC_CUDA_VERSION=13000
cargo build -p forge-host --features cuda "$@"
