"""gcsbi.observe"""
