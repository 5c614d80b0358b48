"""gcsbi.stars"""
