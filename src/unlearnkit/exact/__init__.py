"""Exact unlearning engines: the result equals retraining without the forgotten samples."""

from unlearnkit.exact.linear import LinearForgetResult, LinearRegressionUnlearner  # noqa: E402,F401
from unlearnkit.exact.sisa import SISA, ForgetReport, SISAEnsemble, run_sisa  # noqa: E402,F401
