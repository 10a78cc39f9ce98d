"""Drawing, and only drawing: the live view, plain and JSON lines, the status view, the HTML run report."""
