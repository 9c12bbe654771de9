import pytest

from blueprints.dashboard.charts import SERIES, bar_chart, nice_ticks, rate

LABELS = ["Mon, Jan 5", "Tue, Jan 6", "Wed, Jan 7", "Thu, Jan 8", "Fri, Jan 9", "Sat, Jan 10", "Sun, Jan 11"]


def _chart(**series: list[int]) -> dict:
    return {"labels": LABELS} | {name: series.get(name, [0] * 7) for name in SERIES}


@pytest.mark.parametrize(
    ("max_value", "ticks"),
    [
        (0, [0, 1, 2, 3, 4]),
        (1, [0, 1]),
        (4, [0, 1, 2, 3, 4]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 5, 10]),
        (1234, [0, 500, 1000, 1500]),
        (100_000, [0, 50_000, 100_000]),
    ],
)
def test_ticks_are_round_numbers_from_zero_to_just_above_the_largest_value(max_value, ticks):
    assert nice_ticks(max_value) == ticks


def test_seven_days_make_seven_groups_of_one_bar_per_series_side_by_side():
    chart = bar_chart(_chart(sent=[1, 2, 3, 4, 5, 6, 7]))
    assert [group.label for group in chart.groups] == LABELS
    assert chart.groups[0].label_lines == ("Mon", "Jan 5")
    for group in chart.groups:
        assert [bar.series for bar in group.bars] == list(SERIES)
        edges = [(bar.x, bar.x + bar.width) for bar in group.bars]
        assert all(right <= next_left for (_, right), (next_left, _) in zip(edges, edges[1:], strict=False))
        assert edges[0][0] < group.x < edges[-1][1]
    spans = [(group.bars[0].x, group.bars[-1].x + group.bars[-1].width) for group in chart.groups]
    assert all(right < next_left for (_, right), (next_left, _) in zip(spans, spans[1:], strict=False))
    assert chart.plot.left <= spans[0][0] and spans[-1][1] <= chart.plot.right


def test_bar_heights_are_proportional_to_the_values_and_stand_on_the_x_axis():
    chart = bar_chart(_chart(sent=[0, 1, 2, 3, 4, 5, 6], delivered=[0, 0, 0, 0, 0, 0, 3], failed=[0, 0, 0, 0, 0, 0, 1]))
    bars = [bar for group in chart.groups for bar in group.bars]
    unit = chart.plot.height / chart.ticks[-1].value
    for bar in bars:
        assert bar.height == pytest.approx(bar.value * unit, abs=0.01)
        assert bar.y + bar.height == pytest.approx(chart.plot.bottom, abs=0.01)
    last = {bar.series: bar for bar in chart.groups[-1].bars}
    assert last["sent"].height == pytest.approx(2 * last["delivered"].height, abs=0.02)
    assert last["delivered"].height == pytest.approx(3 * last["failed"].height, abs=0.02)
    assert last["read"].height == 0
    assert chart.totals == {"sent": 21, "delivered": 3, "read": 0, "failed": 1}


def test_ticks_run_from_the_x_axis_to_the_top_of_the_plot():
    chart = bar_chart(_chart(read=[0, 0, 0, 1234, 0, 0, 0]))
    assert [tick.value for tick in chart.ticks] == [0, 500, 1000, 1500]
    assert chart.ticks[0].y == chart.plot.bottom and chart.ticks[-1].y == chart.plot.top
    tallest = max(bar.height for group in chart.groups for bar in group.bars)
    assert tallest == pytest.approx(chart.plot.height * 1234 / 1500, abs=0.01)


def test_an_all_zero_week_is_an_empty_chart_with_a_scale():
    chart = bar_chart(_chart())
    assert chart.is_empty
    assert [tick.value for tick in chart.ticks] == [0, 1, 2, 3, 4]
    assert all(bar.height == 0 and bar.y == chart.plot.bottom for group in chart.groups for bar in group.bars)
    assert len(chart.groups) == 7


@pytest.mark.parametrize(("part", "whole", "percent"), [(2, 3, 66.7), (5, 5, 100.0), (0, 4, 0.0), (0, 0, None)])
def test_rates_are_percentages_with_none_for_nothing_to_divide(part, whole, percent):
    assert rate(part, whole) == percent
