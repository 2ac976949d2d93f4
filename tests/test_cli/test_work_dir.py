"""mmtransnext.cli.work_dir: the test metrics read back from a run's json log."""
from mmtransnext.cli.work_dir import read_test_metrics as read_metrics


def test_read_metrics_survives_two_ranks_dumping_one_file(tmp_path):
    """Both ranks of dist_test.sh dump the same metrics to one json log opened with 'w':
    a shorter dump over a longer one leaves the longer one's tail (seen in this test)."""
    (tmp_path / '20261122_050419').mkdir()
    (tmp_path / '20261122_050419' / '20261122_050419.json').write_text(
        '{"accuracy/top1": 75.0, "accuracy/top5": 100.0, "time": 0.199082612991333}66}\n')
    assert read_metrics(tmp_path) == {'accuracy/top1': 75.0, 'accuracy/top5': 100.0,
                                      'time': 0.199082612991333}
