"""`python -m bench.recon [--invoices N] [--repetitions R]`: see bench/recon/bench.py."""

import sys

from .bench import main

main(sys.argv[1:])
