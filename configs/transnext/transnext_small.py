# TransNeXt-Small ImageNet-1k classifier, 224 px. Paper top-1: 84.7.
_base_ = './transnext_tiny.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(backbone=dict(arch='small', drop_path_rate=0.45))
