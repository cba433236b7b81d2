"""frontdesk."""
