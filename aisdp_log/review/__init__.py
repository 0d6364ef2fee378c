"""The quarterly model-selection review: gathering the evidence, plots, rendering from templates,
the evidence bundle."""
