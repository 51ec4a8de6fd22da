"""Studies of `reason`: offline replays, one-off analyses and the scripts that produced the published numbers."""
