"""What tools/analysis_tools/benchmark.py measures, one job per module: the cases
(:mod:`.cases`), the models timed side by side (:mod:`.implementations`,
:mod:`.authors`, :mod:`.references`), their steps (:mod:`.workloads`), the
per-case process (:mod:`.worker`), the probes (:mod:`.memory`, :mod:`.flops`,
:mod:`.floor`, :mod:`.machine`) and the Markdown report (:mod:`.report`)."""
