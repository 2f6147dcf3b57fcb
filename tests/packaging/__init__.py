"""Tests of the distribution: the wheel, its dependencies and extras, installed as a user would."""
