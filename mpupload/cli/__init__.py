"""The command line: click commands, options built from Settings, exit codes."""
