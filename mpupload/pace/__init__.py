"""How fast: the pace every worker honours (throttles, outage holds), the user's limits, requests in flight."""
