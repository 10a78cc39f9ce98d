"""A run: the coordinator, the planner, the local worker pool (supervisor), the ledger, auto-tuning."""
