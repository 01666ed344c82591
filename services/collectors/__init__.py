"""Collectors: watch a candidate's platform and publish the contract's signals."""
