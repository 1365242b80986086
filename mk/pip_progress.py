"""Condense pip's output while it installs, so a long first install shows it is moving without
printing hundreds of lines:

    pip install -r requirements-dev.txt 2>&1 | python mk/pip_progress.py "the test environment"

Counts the packages pip collects (one updating line on a terminal, a line every 25 otherwise) and
ends with how many it installed and how long it took. Anything else pip says (warnings, errors) is
passed through as it is; run the Makefile with PIP_VERBOSE=1 to see pip's own output instead.
Standard library only: it runs before any virtual environment exists.
"""

import re
import sys
import time

ROUTINE = re.compile(
    r"^\s*(Collecting|Downloading|Using cached|Requirement already satisfied|Installing collected"
    r"|Building|Created wheel|Stored in|Successfully built|Preparing|Getting requirements|Attempting"
    r"|Found existing|Uninstalling|Successfully uninstalled|Obtaining|Checking if build backend"
    r"|Installing build|Processing|Looking in|Ignoring|Downloaded)"
)
# This machine's pip configuration names index folders that may not exist: not the install's news.
MACHINE_NOISE = "is ignored: it is neither a file nor a directory"


def main() -> int:
    label = sys.argv[1] if len(sys.argv) > 1 else "installing"
    terminal = sys.stdout.isatty()
    started, collected, installed = time.monotonic(), 0, 0
    for raw in sys.stdin:
        line = raw.rstrip("\n")
        if MACHINE_NOISE in line or not line.strip() or "\u2501" in line:  # ━: a download's bar
            continue
        if line.startswith("Successfully installed"):
            installed = len(line.split()) - 2
            continue
        if ROUTINE.match(line):
            if line.lstrip().startswith("Collecting"):
                collected += 1
                seconds = time.monotonic() - started
                if terminal:
                    print(f"\r  {label}: {collected} packages collected ({seconds:.0f} s)", end="", flush=True)
                elif collected % 25 == 0:
                    print(f"  {label}: {collected} packages collected ({seconds:.0f} s)", flush=True)
            continue
        print(("\n" if terminal and collected else "") + line, flush=True)
    seconds = time.monotonic() - started
    end = "\n" if terminal and collected else ""
    done = f"{installed} packages installed" if installed else "nothing new to install"
    print(f"{end}  {label}: {done} in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
