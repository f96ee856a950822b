"""Autoscaling proven end to end on the local cluster (issue 8).

Real components on the host against the local cluster: Prometheus scraping
one llm-d-inference-sim per Ready engine pod, the KEDA operator and metrics
adapter (registered as the external metrics API), a gateway per model that
spreads load over the replicas. See :mod:`llmops.autoscale.stack`.
"""
