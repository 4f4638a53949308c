"""sfork benchmarks: the host side (driver, statistics, plots, report, results check).

The in-guest program is sforkbench.c (built into bench/bin/ by bench/Makefile).
"""
