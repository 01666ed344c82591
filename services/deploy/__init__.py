"""A cohort's deployment: every candidate's collectors rendered from one cohort file."""
