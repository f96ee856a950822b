"""Autoscaling proven end to end on the local cluster (issue 8).

Real components on the host against the local cluster and its real node:
Prometheus scraping the chart's simulator engine pods, the KEDA operator
and metrics adapter (registered as the external metrics API) scaling them,
the chart's vLLM Router in front of them, and a holding gateway for models
that scale from zero (a stand-in, issue #14). See :mod:`llmops.autoscale.stack`.
"""
