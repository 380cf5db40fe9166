# make book : set up .venv, fetch + verify MNIST, run every chapter with papermill, build the HTML.
# make test : the same set-up, then every test (unit, nbval, figures, browser).
# The default build renders the paper edition where one is shipped (editions/paper.tar.gz: trained on
# a GPU, or assembled from its parts by `mnistgen edition assemble`; verified and installed, nothing
# trained here), else the quick profile (trained on this CPU).
PROFILE ?= $(if $(wildcard editions/paper.tar.gz),paper,quick)
# Chapters rendered at a time, each with cores/JOBS torch threads (JOBS=1: one after another).
JOBS ?= 2
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
MATHJAX := book/_static/mathjax/tex-svg.js
MATHJAX_TGZ_SHA256 := 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09

.PHONY: book pdf test test-matrix test-row venv lock data notebooks html run golden bench clean chromium
.DEFAULT_GOAL := book

# Every package, transitive ones included, from the hashed lock (requirements.lock): a download whose
# SHA-256 is not the lock's is refused, so `make` installs the same stack next year. The package
# itself goes in without dependencies or an isolated build (setuptools is in the lock too).
venv: $(STAMP)
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Regenerate requirements.lock from pyproject.toml's pins (after changing one): every platform's
# markers, hashes of every file of each pinned release. tests/test_environment.py checks they agree.
UV_VERSION := 0.13.9
lock: $(STAMP)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(VENV)/bin/uv pip compile pyproject.toml --extra book --extra test --generate-hashes --universal \
	  --python-version 3.11.5 --quiet --custom-compile-command 'make lock' -o requirements.lock

data: $(STAMP)
	$(PY) -m mnistgen data

# MathJax served with the book so equations render offline (npm registry package, checksum-verified).
$(MATHJAX):
	@mkdir -p $(dir $@)
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack mathjax@3.2.2 --silent >/dev/null) \
	  && echo "$(MATHJAX_TGZ_SHA256)  $$tmp/mathjax-3.2.2.tgz" | sha256sum -c --quiet \
	  && tar -xzf $$tmp/mathjax-3.2.2.tgz -C $$tmp package/es5/tex-svg.js \
	  && mv $$tmp/package/es5/tex-svg.js $@ && rm -rf $$tmp

# A profile with a committed results bundle (editions/<profile>.tar.gz) renders from it: verified,
# installed once, nothing trained (see src/mnistgen/bundle.py). Where this checkout's code differs
# from the code that made it, it is installed anyway and every page says so (one console line says
# how to retrain); once the code matches again the next `make book` installs it without the notice.
notebooks: data
	@if [ -f editions/$(PROFILE).tar.gz ]; then $(PY) -m mnistgen bundle import editions/$(PROFILE).tar.gz --other-code; fi
	$(PY) -m mnistgen render all --profile $(PROFILE) --jobs $(JOBS)

html: $(STAMP) $(MATHJAX)
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going --quiet .
	@$(PY) -m mnistgen pages --html $(CURDIR)/_build/html/index.html

book: notebooks
	$(MAKE) --no-print-directory html PROFILE=$(PROFILE)

# One PDF of the whole report (_build/pdf/report.pdf): the single-page HTML build printed by Chromium
# (src/mnistgen/printing.py says why this way). Uses the rendered chapters; renders them if there are none.
pdf: $(STAMP) $(MATHJAX) chromium
	@ls book/generated/*.ipynb >/dev/null 2>&1 || $(MAKE) --no-print-directory notebooks PROFILE=$(PROFILE)
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going --quiet --builder singlehtml .
	$(PY) -m mnistgen pdf --build _build/singlehtml --out _build/pdf/report.pdf

# One chapter with other parameters, then the book: make run NOTEBOOK=gan PROFILE=quick PARAMS="-p epochs 4"
# It replaces that chapter's page (every page then says the book is mixed); `make book` restores it.
run: data
	$(PY) -m mnistgen render $(NOTEBOOK) --profile $(PROFILE) $(PARAMS)
	$(MAKE) --no-print-directory html PROFILE=$(PROFILE)

# The browser test drives Debian's chromium through Playwright (no browser download); the PDF test
# reads the printed report with poppler's pdftotext and pdftoppm.
chromium:
	@command -v chromium >/dev/null && command -v pdftotext >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium poppler-utils >/dev/null; }

test: data $(MATHJAX) chromium
	$(PY) -m pytest

# The whole test suite under every thread count x vector instruction set the math libraries
# choose between, so that a user's CPU is imitated on this one: torch's own kernels
# (ATEN_CPU_CAPABILITY), MKL's (MKL_ENABLE_INSTRUCTIONS) and oneDNN's (ONEDNN_MAX_CPU_ISA), the
# last two restricted to AVX2 and, on a CPU with AVX-512, also left free. One line per row:
# its settings, pytest's summary and its wall time; a failing row prints its log's tail.
# `make test-row THREADS=1 CAP=default ISA=avx2` runs one row (CI runs that one after make test).
ISAS := avx2 $(if $(shell grep -m1 -o avx512f /proc/cpuinfo 2>/dev/null),unset)
THREADS ?= 1
CAP ?= default
ISA ?= avx2
ROW_LOG ?= /tmp/mnistgen-matrix-$(THREADS)-$(CAP)-$(ISA).log

test-row: data $(MATHJAX) chromium
	@env $(if $(filter unset,$(CAP)),-u ATEN_CPU_CAPABILITY,ATEN_CPU_CAPABILITY=$(CAP)) \
	  $(if $(filter unset,$(ISA)),-u MKL_ENABLE_INSTRUCTIONS -u ONEDNN_MAX_CPU_ISA,MKL_ENABLE_INSTRUCTIONS=$(shell echo $(ISA) | tr a-z A-Z) ONEDNN_MAX_CPU_ISA=$(shell echo $(ISA) | tr a-z A-Z)) \
	  OMP_NUM_THREADS=$(THREADS) MKL_NUM_THREADS=$(THREADS) \
	  bash -c 'start=$$(date +%s); if $(PY) -m pytest -q -p no:cacheprovider >$(ROW_LOG) 2>&1; then r=0; else r=1; fi; \
	    echo "threads=$(THREADS) ATEN_CPU_CAPABILITY=$(CAP) MKL/oneDNN=$(ISA): $$(tail -1 $(ROW_LOG)) [$$(( $$(date +%s) - start )) s wall]"; \
	    [ $$r = 0 ] || tail -60 $(ROW_LOG); exit $$r'

test-matrix: data $(MATHJAX) chromium
	@status=0; for threads in 1 2; do for cap in default avx2 unset; do for isa in $(ISAS); do \
	  $(MAKE) --no-print-directory test-row THREADS=$$threads CAP=$$cap ISA=$$isa || status=1; \
	done; done; done; exit $$status

# Regenerate the committed nbval reference copies (tests/golden) after an intended change, computed
# the way tests/conftest.py runs them (REFERENCE_ENV): two threads, the AVX2 paths of torch, MKL, oneDNN.
# Leave src/ alone while it runs: a run records the commit (+dirty) it was trained at, and runs of
# two states get a "code commit" column in the provenance table that a test session will not have.
REFERENCE_ENV := OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 $(if $(shell grep -m1 -o avx2 /proc/cpuinfo 2>/dev/null),ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 MKL_CBWR=AVX2 ONEDNN_MAX_CPU_ISA=AVX2)
golden: data
	MNISTGEN_RESULTS=$$(mktemp -d) $(REFERENCE_ENV) $(PY) -m mnistgen render all --profile smoke --out tests/golden

bench: data
	$(PY) -m benchmarks.throughput

clean:
	rm -rf _build book/generated
