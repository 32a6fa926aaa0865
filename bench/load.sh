#!/usr/bin/env bash
# The load test (issue 11, acceptance 6): builds the release binaries and runs bench/src/bin/load.rs
# against them. Arguments go to the load binary, e.g.
#   bench/load.sh --seconds 60 --agents 20 --config-extra 'limits: {login_burst: 100}'
# Exit code 0 when the agents saw no error, the server stayed up and its peak RSS stayed < 400 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p asgard-server -p asgard-agent -p asgard-bench --bin asgard-server --bin asgard-agent --bin load
exec target/release/load "$@"
