"""The release report (placeholder until the page lands)."""
