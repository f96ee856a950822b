"""Releases of the chart suite: the release record, cutting a release, packaging, signing, publishing.

``llmops.cluster.release`` (singular) drives Helm against a cluster; this package
makes the artifacts a cluster installs from:

- ``semver``: chart versions;
- ``record``: ``releases.yaml``, the released versions (version -> commit,
  date, notes, chart versions, tested operator pins) and the version-bump rule;
- ``changelog``: ``CHANGELOG.md`` (Keep a Changelog) and Artifact Hub's
  ``artifacthub.io/changes``;
- ``cut``: ``llmops release cut VERSION`` (bumps, changelog, metadata);
- ``signing``, ``registry``, ``oci``: Helm provenance signing, a local
  CNCF distribution registry, package/push/verify.
"""
