#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain how to get one.
# Order: $PYTHON, python3.12 / python3.13 / python3 on PATH, pyenv's versions.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
for candidate in "${PYTHON:-}" python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    if ok "$candidate"; then command -v "$candidate"; exit 0; fi
done
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for candidate in "$root"/versions/3.12*/bin/python3.12 "$root"/versions/3.13*/bin/python3.13; do
    if [ -x "$candidate" ] && ok "$candidate"; then echo "$candidate"; exit 0; fi
done
echo "spikedyn-brian needs Python >= 3.12 (Brian2 2.10). None was found." >&2
echo "Install one (e.g. 'pyenv install 3.12' or your system's python3.12 package)," >&2
echo "or point PYTHON at it: make PYTHON=/path/to/python3.12 test" >&2
exit 1
