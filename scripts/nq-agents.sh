#!/usr/bin/env bash
# The agent comparison on NQ-open (configs/nq_agents_sweep.toml): starts the
# loopback MediaWiki fixture on 127.0.0.1:8765 (answers from the offline
# Wikipedia summaries), runs the sweep, stops the fixture.
#   scripts/nq-agents.sh [forge-host options, e.g. --home DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/prepare.sh
cargo build --quiet -p forge-host --bin forge-host --example mediawiki_fixture
target/debug/examples/mediawiki_fixture 8765 &
fixture=$!
trap 'kill $fixture 2>/dev/null' EXIT
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/8765) 2>/dev/null && break; sleep 0.2; done
target/debug/forge-host "$@" run configs/nq_agents_sweep.toml
