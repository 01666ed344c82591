"""The submission endpoint (``proctor submit-server``) and its client (``proctor submit``)."""
