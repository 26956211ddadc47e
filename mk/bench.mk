# make bench: benchmarks as ratios against floors measured in the same run -> bench/RESULTS.md
bench: setup
	$(PY) -m bench.run
