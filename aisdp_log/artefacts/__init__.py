"""Artefact folders and their content hashes: folder rules, streaming digests, the stat-keyed
digest cache."""
