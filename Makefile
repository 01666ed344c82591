# The two commands of the README, and a few conveniences around them.
.PHONY: demo test unit lint bench stack-up stack-down

demo:  ## set everything up and run a whole simulated exam, graded live
	scripts/demo.sh

test:  ## set everything up, start the local stack, run every test
	scripts/test.sh

unit:  ## only the pure tests: no services needed, seconds
	scripts/bootstrap.sh && .venv/bin/pytest -m unit -q

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy services

bench:
	for b in engine serde judge webhooks service; do .venv/bin/python bench/$$b.py || exit 1; done

stack-up:
	.venv/bin/proctor stack up

stack-down:
	.venv/bin/proctor stack down
