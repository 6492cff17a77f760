"""What meters prove and devices deliver: readings and minting thresholds, meters, physical
delivery and its metrics."""
