"""The authors' released files: the folder the user gives and the file each ``released`` key names
(reproductions/icse/released.py)."""
import pytest


def test_the_authors_files_come_from_a_folder_the_user_gives(tmp_path, monkeypatch):
    from argparse import Namespace

    from reproductions.icse.released import keras1_path, released_dir

    monkeypatch.delenv("ICSE_RELEASED_DIR", raising=False)
    with pytest.raises(ValueError, match="--released-dir DIR or set ICSE_RELEASED_DIR"):
        released_dir(Namespace(released_dir=None))
    monkeypatch.setenv("ICSE_RELEASED_DIR", str(tmp_path))
    assert released_dir(Namespace(released_dir=None)) == tmp_path
    assert released_dir(Namespace(released_dir=tmp_path / "given")) == tmp_path / "given"
    config = {"released": {"unpruned": "FCNN_0509.hdf5"}, "config_path": "conf/mini.yaml"}
    with pytest.raises(ValueError, match=r"FCNN_0509.hdf5: the authors' file is missing \(released.unpruned"):
        keras1_path(config, "unpruned", tmp_path)
    (tmp_path / "FCNN_0509.hdf5").write_bytes(b"")
    assert keras1_path(config, "unpruned", tmp_path) == tmp_path / "FCNN_0509.hdf5"
