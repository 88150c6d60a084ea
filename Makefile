# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test benchmark docs clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed  ## every method, class- and task-incremental, on split-digits
	$(VENV)/bin/lifelong run --memory 200

test: $(VENV)/.installed  ## the test suite
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q  # tiny models: one thread is as fast, and immune to other load

benchmark: $(VENV)/.installed  ## engine overhead against a bare PyTorch loop (needs MNIST in $$LIFELONG_DATA)
	$(PY) benchmarks/overhead.py

docs: $(VENV)/.docs-installed  ## the documentation site (docs/, MkDocs) into site/; warnings are errors
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

clean:
	rm -rf $(VENV) runs .pytest_cache site
