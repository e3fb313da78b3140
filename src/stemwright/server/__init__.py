"""stemwright studio: a local web app that separates songs and opens the stems in a live mixer."""
