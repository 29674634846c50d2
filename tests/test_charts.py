"""Experiment charts: long group labels of ``spread_bars`` are wrapped so that neighbours do not overlap."""
from matplotlib.backends.backend_agg import FigureCanvasAgg

from fgh_tutorial.app import charts


def _row(m):
    return {"mean": m, "min": m - 0.02, "max": m + 0.02, "values": [m - 0.02, m, m + 0.02]}


def _tick_boxes(fig):
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    ax = fig.axes[0]
    return [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()], ax


def test_long_group_labels_do_not_overlap():
    groups = ["default data, 3 epochs", "redundant data, 3 epochs", "default data, 9 epochs"]
    fig = charts.spread_bars(groups, {"a": [_row(0.5)] * 3, "b": [_row(0.4)] * 3}, "mAP", "three settings")
    boxes, ax = _tick_boxes(fig)
    assert len(boxes) == 3
    assert all(left.x1 < right.x0 for left, right in zip(boxes, boxes[1:]))
    assert [t.get_text() for t in ax.get_xticklabels()][1] == "redundant data,\n3 epochs"


def test_short_labels_and_own_line_breaks_are_kept():
    assert charts.wrap_labels(["12 bits", "10 regions\n(~28% of bird)"], 1.2) == ["12 bits", "10 regions\n(~28% of bird)"]
    wrapped = charts.wrap_labels(["a label much longer than one group is wide"], 0.5)[0]
    assert "\n" in wrapped and wrapped.replace("\n", " ") == "a label much longer than one group is wide"
