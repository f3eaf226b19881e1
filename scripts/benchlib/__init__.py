"""scripts/bench split by concern: processes, phases, peers, report."""
