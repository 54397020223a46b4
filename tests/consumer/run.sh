#!/usr/bin/env bash
# Installs the built tree into a temporary prefix and builds + runs tests/consumer against it; with a second
# argument (a python with torch), also runs everyday.cpp and compares its output with everyday.py's.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
# With a torch interpreter: everyday.cpp's lines must equal everyday.py's (PyTorch's numbers).
if [ $# -ge 2 ] && [ -x "$2" ]; then
  "$work/build/everyday" > "$work/ht.txt"
  "$2" "$src/everyday.py" > "$work/torch.txt"
  if diff "$work/torch.txt" "$work/ht.txt"; then echo "everyday: $(wc -l < "$work/ht.txt") lines match PyTorch"
  else echo "MISMATCH between everyday.cpp and PyTorch"; exit 1; fi
elif [ $# -ge 2 ]; then
  echo "SKIPPED everyday.cpp comparison: no torch interpreter at $2"
fi
