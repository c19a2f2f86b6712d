"""Exact unlearning engines: the result equals retraining without the forgotten samples."""
