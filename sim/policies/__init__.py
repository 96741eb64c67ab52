"""sim/policies"""
