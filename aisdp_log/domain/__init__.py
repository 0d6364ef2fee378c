"""The domain's own rules, free of files and processes: cell values, nested names, periods, metrics
and thresholds, rerun statistics."""
