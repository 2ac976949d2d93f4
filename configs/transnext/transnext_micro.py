# TransNeXt-Micro ImageNet-1k classifier, 224 px. Paper top-1: 82.5.
_base_ = './transnext_tiny.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='micro', drop_path_rate=0.15),
    head=dict(in_channels=384))
