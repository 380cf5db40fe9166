# make book : set up .venv, fetch + verify MNIST, run every chapter with papermill, build the HTML.
# make test : the same set-up, then every test (unit, nbval, figures, browser).
PROFILE ?= quick
# Chapters rendered at a time, each with cores/JOBS torch threads (JOBS=1: one after another).
JOBS ?= 2
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
MATHJAX := book/_static/mathjax/tex-svg.js
MATHJAX_TGZ_SHA256 := 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09

.PHONY: book test test-matrix venv data notebooks html run golden bench clean chromium
.DEFAULT_GOAL := book

venv: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[book,test]'
	touch $@

data: $(STAMP)
	$(PY) -m mnistgen data

# MathJax served with the book so equations render offline (npm registry package, checksum-verified).
$(MATHJAX):
	@mkdir -p $(dir $@)
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack mathjax@3.2.2 --silent >/dev/null) \
	  && echo "$(MATHJAX_TGZ_SHA256)  $$tmp/mathjax-3.2.2.tgz" | sha256sum -c --quiet \
	  && tar -xzf $$tmp/mathjax-3.2.2.tgz -C $$tmp package/es5/tex-svg.js \
	  && mv $$tmp/package/es5/tex-svg.js $@ && rm -rf $$tmp

notebooks: data
	$(PY) -m mnistgen render all --profile $(PROFILE) --jobs $(JOBS)

html: $(STAMP) $(MATHJAX)
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going . 
	@echo "The report: $(CURDIR)/_build/html/index.html (profile $(PROFILE))"

book: notebooks
	$(MAKE) --no-print-directory html PROFILE=$(PROFILE)

# One chapter with other parameters, then the book: make run NOTEBOOK=gan PARAMS="-p epochs 50 -p seed 3"
run: data
	$(PY) -m mnistgen render $(NOTEBOOK) --profile $(PROFILE) $(PARAMS)
	$(MAKE) --no-print-directory html PROFILE=$(PROFILE)

# The browser test drives Debian's chromium through Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: data $(MATHJAX) chromium
	$(PY) -m pytest

# The nbval reference notebooks under every thread count x vector instruction set torch picks
# from (a CPU with other vector units computes like one of these); each line says pass or fail.
test-matrix: data
	@status=0; for threads in 1 2; do for cap in default avx2 unset; do \
	  if [ $$cap = unset ]; then capenv="env -u ATEN_CPU_CAPABILITY"; else capenv="env ATEN_CPU_CAPABILITY=$$cap"; fi; \
	  if $$capenv OMP_NUM_THREADS=$$threads MKL_NUM_THREADS=$$threads $(PY) -m pytest -q -p no:cacheprovider tests/golden >/tmp/mnistgen-matrix.log 2>&1; \
	  then echo "OMP_NUM_THREADS=$$threads ATEN_CPU_CAPABILITY=$$cap: $$(tail -1 /tmp/mnistgen-matrix.log)"; \
	  else status=1; echo "OMP_NUM_THREADS=$$threads ATEN_CPU_CAPABILITY=$$cap: FAILED"; tail -40 /tmp/mnistgen-matrix.log; fi; \
	done; done; exit $$status

# Regenerate the committed nbval reference copies (tests/golden) after an intended change.
golden: data
	MNISTGEN_RESULTS=$$(mktemp -d) OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 $(PY) -m mnistgen render all --profile smoke --out tests/golden

bench: data
	$(PY) -m benchmarks.throughput

clean:
	rm -rf _build book/generated
