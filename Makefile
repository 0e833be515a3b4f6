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

.PHONY: install protos run test lint fmt clean eval eval-guard eval-redux bench

install: $(STAMP)

# torch is installed on its own first: pip then takes the machine's local CPU wheel
# instead of resolving a CUDA build from the registry.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Generated code lives in gen/ (git-ignored) and is rebuilt whenever a .proto changes.
gen/.stamp: $(PROTOS) $(STAMP)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=gen --grpc_python_out=gen \
		--mypy_out=gen --mypy_grpc_out=gen $(PROTOS)
	touch gen/.stamp

protos: gen/.stamp

run: protos
	$(PY) -m cli.main run

# The widget's browser tests drive Debian's chromium; install it when it is missing.
test: protos
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	$(PY) -m pytest -q -p no:cacheprovider

# Quality on the sample book and the Redux dev set; tables to the terminal, JSON to eval-results/.
REDUX ?= ../shared/corpora
eval: protos
	$(PY) -m cli.main eval --docs examples/book/docs --qa examples/book/qa.jsonl --chat \
		--out eval-results/sample-book.json
	@if [ -d "$(REDUX)/redux-docs" ]; then \
		$(PY) -m cli.main eval --docs $(REDUX)/redux-docs --qa $(REDUX)/redux-docs-qa.jsonl --chat \
			--query-encoders onnx-int8,onnx \
			--out eval-results/redux.json; fi

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
