"""Counting, never drawing: stats and rates, progress per partition, psutil samples, and the sinks that
write what a run leaves behind (event log, progress file, run recorder)."""
