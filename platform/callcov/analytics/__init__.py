"""Analytics over an account's analyses (issue 15): per-agent scorecards."""
