#!/usr/bin/env bash
# The C, C++ and CUDA sources against .clang-format, with clang-format 14 (Debian 12's; other
# versions wrap differently, so another version is not used). Every source file is checked, new
# ones included, except those listed in scripts/format-pending.txt: files hand-wrapped before
# the check existed, formatted whole when someone next works on them (`clang-format -i FILE`,
# then delete its line). A listed file that already conforms is an error too, so the list only
# shrinks. Run by CTest as format:clang_format. Usage: scripts/check_format.sh
set -euo pipefail
cd "${KERNELS_SOURCE_DIR:-$(dirname "$0")/..}"
pending_list=scripts/format-pending.txt

formatter=""
for candidate in clang-format-14 clang-format; do
  if command -v "$candidate" > /dev/null && "$candidate" --version | grep -q "version 14\."; then
    formatter="$candidate"
    break
  fi
done
if [ -z "$formatter" ]; then
  echo "SKIPPED: clang-format 14 is not installed (scripts/install-deps.sh installs it)"
  exit 0
fi

patterns=('*.c' '*.cpp' '*.h' '*.cu' '*.cuh')
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  # Tracked and new (untracked, not ignored) files, so a file is checked before its first commit.
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- "${patterns[@]}" | sort -u)
else
  mapfile -t files < <(find cli kernels loader lockfile scripts tests -type f \
    \( -name '*.c' -o -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) | sort)
fi
declare -A pending=()
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  pending["$line"]=1
done < "$pending_list"

unformatted=()
now_formatted=()
checked=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue  # deleted in the working tree, not yet in the index
  if "$formatter" --dry-run -Werror "$f" > /dev/null 2>&1; then
    [ -n "${pending[$f]:-}" ] && now_formatted+=("$f")
  else
    [ -z "${pending[$f]:-}" ] && unformatted+=("$f")
  fi
  checked=$((checked + 1))
done
stale=()
for f in "${!pending[@]}"; do [ -f "$f" ] || stale+=("$f"); done

status=0
if [ "${#unformatted[@]}" -gt 0 ]; then
  echo "FAIL: not formatted as .clang-format says ($formatter):"
  printf '  %s\n' "${unformatted[@]}"
  echo "hint: run \`$formatter -i FILE\` (or \`git clang-format\` for the lines you changed)"
  status=1
fi
if [ "${#now_formatted[@]}" -gt 0 ] || [ "${#stale[@]}" -gt 0 ]; then
  echo "FAIL: $pending_list lists files that are formatted now or no longer exist:"
  printf '  %s\n' "${now_formatted[@]}" "${stale[@]}"
  echo "hint: delete their lines from $pending_list"
  status=1
fi
[ "$status" -eq 0 ] && echo "PASS: $checked files checked, ${#pending[@]} pending in $pending_list"
exit "$status"
