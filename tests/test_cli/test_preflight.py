"""mmtransnext.cli.preflight: the data set folders are checked before a run (an empty one:
tests/test_tools/test_load_errors.py); images in class subfolders count."""
from tools_testing import cls_config


def test_dataset_check_accepts_images_in_subfolders(tmp_path, imagenet64):
    from mmtransnext.cli.preflight import check_dataset_folders
    from mmtransnext.cli.config_loading import load_config
    cfg = load_config(str(cls_config(tmp_path, imagenet64, deterministic=True)))
    check_dataset_folders(cfg, ['train_dataloader', 'val_dataloader'])  # no error
