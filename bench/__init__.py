"""Side-by-side benchmarks of the rendered Lambda handler (docs/benchmarks.md): python -m bench."""
