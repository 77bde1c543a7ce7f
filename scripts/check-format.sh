#!/usr/bin/env bash
# Checks that keel's C++ sources follow .clang-format; exits 1 if any does not.
#
#   scripts/check-format.sh          check (clang-format --dry-run -Werror)
#   scripts/check-format.sh --fix    reformat the files in place
#
# Files: the .hpp and .cpp files under include tests bench examples adapters
# that git tracks (or would track: new files not ignored are included).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/deps.sh
keel_deps_install clang-format git

fix=0
case "${1:-}" in
  "") ;;
  --fix) fix=1 ;;
  *) echo "usage: $0 [--fix]" >&2; exit 2 ;;
esac

dirs=(include tests bench examples adapters)
patterns=()
for d in "${dirs[@]}"; do
  patterns+=("$d/*.hpp" "$d/*.cpp")
done

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r -d '' f; do
    [[ -f "$f" ]] && files+=("$f")
  done < <(git ls-files -z --cached --others --exclude-standard -- "${patterns[@]}" | sort -zu)
else
  while IFS= read -r -d '' f; do
    files+=("$f")
  done < <(find "${dirs[@]}" -type f \( -name '*.hpp' -o -name '*.cpp' \) -print0 2>/dev/null \
             | sort -z)
fi

if ((${#files[@]} == 0)); then
  echo "check-format: no C++ files to check"
  exit 0
fi

if ((fix)); then
  clang-format -i --style=file "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
elif clang-format --dry-run -Werror --style=file "${files[@]}"; then
  echo "check-format: ${#files[@]} files are formatted"
else
  echo "check-format: the files above are not formatted; run scripts/check-format.sh --fix" >&2
  exit 1
fi
