"""`python -m bench.runtime [--events N] [--quick]`: see bench/runtime/bench.py."""

import sys

from .bench import main

main(sys.argv[1:])
