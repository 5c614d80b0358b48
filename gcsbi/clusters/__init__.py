"""gcsbi.clusters"""
