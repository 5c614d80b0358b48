"""gcsbi.jeans"""
