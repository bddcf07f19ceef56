"""End-to-end quote-to-cash benchmark: contract activated in the CRM → journal posted (bench/e2e/bench.py)."""
