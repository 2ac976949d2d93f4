"""Test-time augmentation models: det_tta.py needs mmdet, seg_tta.py needs mmseg; both are
registered by mmtransnext.registry.register_task_modules, not imported here."""
