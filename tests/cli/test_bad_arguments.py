"""Every command refuses bad arguments with one line on stderr and exit status 2, before any
heavy computation starts (the computations are replaced by a function that fails the test)."""

import importlib

import pytest
import torch

from widenets.cli import main

# what each command would spend its time on once its arguments are accepted
HEAVY = [("widenets.predict", "train_test_kernels"),
         ("widenets.finite.langevin", "sample_posterior"),
         ("widenets.theory.effective.critical", "criticality"),
         ("widenets.theory.effective.figures", "phase_diagram_figure"),
         ("widenets.theory.proportional.learning_curve", "proportional"),
         ("widenets.scale.runner", "KernelJob.result")]


def _started(*args, **kwargs):
    raise AssertionError("the computation started although an argument was bad")


@pytest.fixture(autouse=True)
def _no_heavy_work(monkeypatch):
    from widenets.report import build

    # import everything first: a module imported while a function is replaced would keep
    # the replacement (``from x import f``) after the test
    sections = build._sections()
    owners = []
    for module, attribute in HEAVY:
        owner = importlib.import_module(module)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        owners.append((owner, name))
    for owner, name in owners:
        monkeypatch.setattr(owner, name, _started)
    monkeypatch.setattr(build, "_sections", lambda: dict.fromkeys(sections, _started))
    threads = torch.get_num_threads()  # criticality and phase-diagram set one thread
    yield
    torch.set_num_threads(threads)


MISSING = "{tmp}/no-such-dir"
PREDICT = ["predict", "--arch", "fc1-relu", "--data", "digits", "--n-train", "20",
           "--n-test", "20"]
SAMPLE = ["sample", "--arch", "1hl-erf", "--data", "digits", "--n-train", "20",
          "--n-test", "20", "--steps", "10"]
KERNEL = ["kernel", "--arch", "fc1-relu", "--data", "digits", "--n", "10",
          "--store", "{tmp}/k.zarr"]
CURVE = ["learning-curve", "--data", "digits", "--widths", "10", "--n-train", "20",
         "--n-test", "20", "--out", "{tmp}/curve"]
REPORT = ["report", "--quick", "--out", "{tmp}/report"]


@pytest.mark.parametrize("args, message", [
    # report
    ([*REPORT, "--data", "imagenet"], "`name` must be one of"),
    ([*REPORT, "--data", "mnist", "--data-dir", MISSING], "does not exist"),
    ([*REPORT, "--sections", "bogus"], "`sections` must be names from"),
    ([*REPORT, "--seed", "-1"], "`seed` must be an int >= 0"),
    ([*REPORT, "--out", "{tmp}/file"], "`out_dir` must be a directory that can be created"),
    # predict
    ([*PREDICT, "--arch", "resnet-9"], "`architecture` must be a preset"),
    ([*PREDICT, "--data", "imagenet"], "`name` must be one of"),
    ([*PREDICT, "--n-train", "-5"], "`--n-train` must be a positive int"),
    ([*PREDICT, "--data", "mnist", "--data-dir", MISSING], "does not exist"),
    ([*PREDICT, "--diag-reg", "-1"], "`--diag-reg` must be a finite number >= 0"),
    ([*PREDICT, "--t", "-1"], "`--t` must be a time >= 0"),
    ([*PREDICT, "--seed", "-3"], "`seed` must be an int >= 0"),
    # sample
    ([*SAMPLE, "--arch", "resnet-9"], "`architecture` must be a preset"),
    ([*SAMPLE, "--data", "imagenet"], "`name` must be one of"),
    ([*SAMPLE, "--n-train", "-5"], "`n_train` must be a positive int"),
    ([*SAMPLE, "--data", "mnist", "--data-dir", MISSING], "does not exist"),
    ([*SAMPLE, "--steps", "-1"], "`n_steps` must be a positive int"),
    ([*SAMPLE, "--width", "-3"], "`--width` must be a positive int"),
    ([*SAMPLE, "--chains", "0"], "`n_chains` must be a positive int"),
    ([*SAMPLE, "--temperature", "-1"], "`temperature` must be a finite number > 0"),
    ([*SAMPLE, "--threads", "0"], "`--threads` must be a positive int"),
    # criticality
    (["criticality", "-a", "foo"], "`activation` must be one of"),
    (["criticality", "-a", "tanh", "--depth", "-1"], "`--depth` must be a positive int"),
    (["criticality", "-a", "tanh", "--offset", "-1"], "`--offset` must be a number in (0, 1)"),
    # phase-diagram
    (["phase-diagram", "-a", "foo", "-o", "{tmp}/p.png"], "`activation` must be one of"),
    (["phase-diagram", "-a", "tanh", "--grid", "-1"], "`--grid` must be an int >= 3"),
    (["phase-diagram", "-a", "tanh", "-o", "{tmp}/p.foo"], "`--out` must be a file name"),
    (["phase-diagram", "-a", "tanh", "-o", "{tmp}/file/p.png"],
     "`--out` must be a path whose directory can be created"),
    # learning-curve
    ([*CURVE, "--arch", "resnet-9"], "`architecture` must be a preset"),
    ([*CURVE, "--data", "imagenet"], "`name` must be one of"),
    ([*CURVE, "--widths", "-5"], "`widths` must be positive integers"),
    ([*CURVE, "--n-test", "-1"], "`n_test` must be a positive int"),
    ([*CURVE, "--data", "mnist", "--data-dir", MISSING], "does not exist"),
    ([*CURVE, "--classes", "0,11"], "`classes` must be class indices in 0..9"),
    ([*CURVE, "--langevin-steps", "-1"], "`langevin_steps` must be a positive int"),
    ([*CURVE, "--langevin-chains", "0"], "`langevin_chains` must be a positive int"),
    # kernel
    ([*KERNEL, "--arch", "resnet-9"], "`architecture` must be a preset"),
    ([*KERNEL, "--data", "imagenet"], "`name` must be one of"),
    ([*KERNEL, "--n", "-10"], "`--n` must be a positive int"),
    ([*KERNEL, "--data", "mnist", "--data-dir", MISSING], "does not exist"),
    ([*KERNEL, "--tile", "0"], "`tile` must be a positive int"),
    ([*KERNEL, "--store", "{tmp}/file/k.zarr"], "`store` must be a directory that can be"),
])
def test_bad_argument_is_one_line_and_exit_status_2(tmp_path, capsys, args, message):
    (tmp_path / "file").write_text("a file where a directory is expected")
    with pytest.raises(SystemExit) as exit_info:
        main([a.replace("{tmp}", str(tmp_path)) for a in args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
