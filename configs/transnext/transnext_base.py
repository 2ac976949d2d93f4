# TransNeXt-Base ImageNet-1k classifier, 224 px. Paper top-1: 84.8.
_base_ = './transnext_tiny.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.6),
    head=dict(in_channels=768))
