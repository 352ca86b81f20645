import csv
import json

import pytest

from common.tables import ResultTable, format_value, load_table, summary


def make_table():
    table = ResultTable("demo", [("pesq", "PESQ (WB, P.862.2)"), ("stoi", "STOI", 3)], notes=["a note"])
    table.add_row("Noisy", {"pesq": 1.234, "stoi": 0.7})
    table.add_row("FCN", {"pesq": 2.5, "stoi": 0.81234}, paper={"pesq": 2.55})
    return table


def test_render_puts_paper_beside_ours():
    text = make_table().render()
    header = [line for line in text.splitlines() if "PESQ" in line][0]
    assert header.split() [:5] == ["PESQ", "(WB,", "P.862.2)", "paper", "STOI"]
    fcn = [line for line in text.splitlines() if line.startswith("FCN")][0]
    assert fcn.split() == ["FCN", "2.50", "2.55", "0.812"]
    assert "a note" in text


def test_format_value():
    assert format_value((2.081, 0.2449)) == "2.08 ± 0.24"
    assert format_value(300931) == "300,931"
    assert format_value(None) == "-"


def test_unknown_column_is_refused():
    with pytest.raises(ValueError, match="no column"):
        make_table().add_row("x", {"sisnr": 1.0})


def test_save_writes_provenance_and_csv(tmp_path):
    path = make_table().save(tmp_path / "run", config={"config_name": "mini"})
    document = json.loads(path.read_text())
    assert len(document["provenance"]["git"]["commit"] or "0" * 40) == 40
    assert document["provenance"]["config"]["config_name"] == "mini"
    assert document["provenance"]["packages"]["tensorflow"].startswith("2.")
    rows = list(csv.reader(open(tmp_path / "run" / "results.csv")))
    assert rows[2][:3] == ["FCN", "2.50", "2.55"]
    table, origin = load_table(path)
    assert table.render() == make_table().render()
    assert "config mini" in summary(tmp_path)
