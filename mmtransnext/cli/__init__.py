"""What the tools (tools/train.py, test.py, the analysis and deployment tools) share: the
config's task, option checks, pre-flight checks, distributed set-up, test-time options,
the safety switches of a run, the console of the demo."""
