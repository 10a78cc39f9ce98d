"""The vocabulary every other package speaks: errors and their kinds, the plain-value messages that cross
processes (files, batches, results), object keys and their order, hashing, exit codes and stop signals.
Imports nothing of mpupload."""
