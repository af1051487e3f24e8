"""The participant's diary pages."""
