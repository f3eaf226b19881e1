# Everyday tasks. `make test` is the README's test command.
.PHONY: test lint fmt crd bench run-demo cluster-up cluster-down

test:
	scripts/test

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt --all

crd:
	cargo run --quiet -- crd > crds/billing.dealpay.dev_dealpayments.yaml
	cargo run --quiet -- crd --json-schema > schemas/dealpayment_v1alpha1.json
	cargo run --quiet -- crd --receipt > crds/billing.dealpay.dev_paymentreceipts.yaml

bench:
	cargo bench --bench sandbox_throughput
	cargo bench --bench engine_decide

run-demo:
	cargo run --quiet -- pay --sandbox -f examples/dealpayment.yaml

cluster-up:
	scripts/local-cluster up

cluster-down:
	scripts/local-cluster down
