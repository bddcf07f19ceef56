"""`python -m bench.e2e [--rate R] [--duration S] [--saturation N]`: see bench/e2e/bench.py."""

import sys

from .bench import main

main(sys.argv[1:])
