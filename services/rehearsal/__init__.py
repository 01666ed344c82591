"""Rehearse an exam before a cohort sits it: a scripted candidate on real systems, faults
injected for real, every criterion graded live by the worker and explained in a report."""
