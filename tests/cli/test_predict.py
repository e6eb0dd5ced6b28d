"""``widenets predict``: accuracies printed match the library; bad input exits 2."""

import json

import pytest
import torch

import widenets.data
from tests.cli.running import run
from widenets.predict import accuracy, classify
from widenets.presets import architecture


def test_prints_the_accuracies_the_library_computes(capsys):
    assert run(["predict", "--arch", "fc1-relu", "--data", "digits", "--n-train", "60",
                "--n-test", "40", "--diag-reg", "1e-3", "--block-size", "16"]) == 0
    out = capsys.readouterr().out
    ds = widenets.data.load("digits", 60, 40)
    net = architecture("fc1-relu", n_outputs=10)
    for get in ("nngp", "ntk"):
        expected = accuracy(classify(net, ds.x_train, ds.y_train, ds.x_test, get=get,
                                     diag_reg=1e-3).labels, ds.y_test)
        assert f"{get.upper():<5} accuracy {expected:.4f}  error {1 - expected:.4f}" in out
    assert "60 train / 40 test" in out


def test_architecture_file(tmp_path, capsys):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(architecture("cnn-gap-1").to_dict()))
    assert run(["predict", "--arch", str(path), "--data", "digits", "--n-train", "20",
                "--n-test", "10", "--downsample", "2"]) == 0
    assert "NTK   accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--arch", "resnet-9", "--data", "digits"], "`architecture` must be a preset"),
    (["--arch", "fc1-relu", "--data", "imagenet"], "`name` must be one of"),
    (["--arch", "cnn-gap-1", "--data", "digits", "--n-test", "600", "--preprocessing", "x"],
     "`preprocessing` must be one of"),
    (["--arch", "fc1-relu", "--data", "digits", "--n-train", "0"], "`--n-train` must be"),
    (["--arch", "fc1-relu", "--data", "mnist", "--data-dir", "/nonexistent"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_status_2(args, message, capsys):
    assert run(["predict", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err


def test_flattening_first_gives_the_same_kernels():
    from widenets.cli.predict import flatten_if_first

    ds = widenets.data.load("digits", 12, 5)
    net = architecture("fc2-relu")
    flat_train, flat_test = flatten_if_first(net, ds.x_train, ds.x_test)
    assert flat_train.shape == (12, 64)
    a, b = net.kernel(ds.x_test, ds.x_train), net.kernel(flat_test, flat_train)
    for g in ("nngp", "ntk"):
        torch.testing.assert_close(getattr(a, g), getattr(b, g), rtol=1e-13, atol=0)
    cnn = architecture("cnn-gap-1")
    assert flatten_if_first(cnn, ds.x_train)[0] is ds.x_train
