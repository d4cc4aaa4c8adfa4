#!/usr/bin/env bash
# Cargo for cargo-mutants: adds the root package (`sed`, whose tests/ hold the rule tests)
# wherever cargo-mutants names sed-core, the package it mutates. cargo-mutants 27.1 runs
# only the mutated package's tests, whatever --test-package says. See docs/mutants.md.
args=()
for a in "$@"; do
    args+=("$a")
    if [ "$a" = "--package=sed-core@0.1.0" ]; then
        args+=("--package=sed@0.1.0")
    fi
done
exec cargo "${args[@]}"
