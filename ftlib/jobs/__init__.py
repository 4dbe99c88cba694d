"""Jobs: the backend protocol (spec), hyperparameter checks, submit exactly once and wait (submit), the ledger."""
