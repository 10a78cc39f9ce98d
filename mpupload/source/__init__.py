"""Where the files of a run come from: the streaming walk, --files-from lists (sorted on disk), --shard."""
