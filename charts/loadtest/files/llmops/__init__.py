"""llmops-stack harness: toolchain, validation, policy, cluster lifecycle, load tests."""

__version__ = "0.1.0"
