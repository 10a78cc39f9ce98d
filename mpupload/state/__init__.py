"""What survives a crash: the SQLite journal and its schema, the run lock, the journal's path."""
