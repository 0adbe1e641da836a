"""In-product surveys (CSAT, NPS, CES, one-question polls) shown by the snippet (issue 17)."""
