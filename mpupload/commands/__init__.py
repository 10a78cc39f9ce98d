"""What each command does beyond the upload engine: upload (as the CLI runs it), verify, tune, dry run,
status, config show."""
