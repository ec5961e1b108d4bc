"""Helpers for filegate's tests."""
