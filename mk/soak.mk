# make soak: the long soak (issue 9 item 3): 10 minutes at ~80 % of capacity measured in the same run.
# The suite runs the same test for 60 s (tests/test_hardening_soak.py).
SOAK_S ?= 600
soak: setup
	TRITONKIT_SOAK_S=$(SOAK_S) $(VENV)/bin/pytest -q -s -p no:cacheprovider --timeout=$$(( $(SOAK_S) + 900 )) tests/test_hardening_soak.py
