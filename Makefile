# Shortcuts for tasks.py, which does the work (and needs only Python 3.13).
PYTHON ?= python3.13

.PHONY: demo test test-fast bench lint clean

demo:
	$(PYTHON) tasks.py demo

test:
	$(PYTHON) tasks.py test

test-fast:
	$(PYTHON) tasks.py test -m "not slow"

bench:  ## make bench ARGS=--quick
	$(PYTHON) tasks.py bench $(ARGS)

lint:
	$(PYTHON) tasks.py lint

clean:
	rm -rf .venv .tools build bench/results
