"""A worker: one process (or thread, with --processes 0) that takes batches and uploads their files."""
