"""``widenets sample`` survives SIGKILL and SIGINT: the rerun continues from the last
checkpoint and ends with exactly the draws of an uninterrupted run."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from widenets.cli import main

ARGS = ["sample", "--arch", "1hl-erf", "--data", "digits", "--n-train", "60", "--n-test", "20",
        "--temperature", "0.05", "--steps", "1200", "--burn-in", "200", "--thin", "4",
        "--width", "16", "--chains", "2", "--seed", "3", "--threads", "1", "--quiet"]
RUN = [sys.executable, "-c", "from widenets.cli import main; main()"]


def _command(checkpoint):
    return RUN + ARGS + ["--checkpoint", str(checkpoint), "--checkpoint-every", "0.05"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _step(checkpoint):
    return torch.load(checkpoint / "state.pt", weights_only=False)["step"]


def _interrupt(checkpoint, sig, rng, after_step):
    """Start a run, let it write a new checkpoint past ``after_step`` (so that it holds
    recorded draws), then send ``sig`` at a random moment."""
    state = checkpoint / "state.pt"
    before = state.stat().st_mtime_ns if state.exists() else None

    def ready():
        return state.exists() and state.stat().st_mtime_ns != before \
            and _step(checkpoint) > after_step

    proc = subprocess.Popen(_command(checkpoint), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.5))
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


@pytest.mark.slow  # four fresh Python processes: ~10 s of imports each on a busy machine
def test_kill_and_interrupt_then_resume_loses_and_duplicates_nothing(tmp_path):
    rng = random.Random()  # a different moment every run: the invariant must hold for all
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    done = subprocess.run(_command(reference), env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr

    burn_in = int(ARGS[ARGS.index("--burn-in") + 1])
    code, _, _ = _interrupt(resumed, signal.SIGKILL, rng, after_step=burn_in)
    assert code == -signal.SIGKILL  # killed mid-run, not finished
    first = _step(resumed)
    code, _, err = _interrupt(resumed, signal.SIGINT, rng, after_step=first)
    assert code == 130 and "rerun the same command" in err, err
    second = _step(resumed)
    print(f"SIGKILL: last checkpoint at step {first}; SIGINT: saved at step {second}")
    assert burn_in < first < second < 1200  # recorded draws kept across both interruptions
    done = subprocess.run(_command(resumed), env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr

    ref = torch.load(reference / "samples.pt", weights_only=False)
    got = torch.load(resumed / "samples.pt", weights_only=False)
    expected_steps = torch.arange(204, 1201, 4)
    assert torch.equal(ref["steps"], expected_steps.repeat(2))
    for key, value in ref.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(got[key], value), key
    assert got["n_gradients"] == ref["n_gradients"]


def _run_in_process(args):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def test_summary_and_in_process_interrupt(tmp_path, capsys):
    """The summary, and SIGINT inside the sampling loop (exit 130, then an identical
    resume); the subprocess test above adds SIGKILL."""
    import threading

    steps = ARGS.index("--steps")
    args = ARGS[:steps] + ["--steps", "600"] + ARGS[steps + 2:]
    assert _run_in_process(args + ["--checkpoint", str(tmp_path / "reference")]) == 0
    out = capsys.readouterr().out
    for text in ("train error (MSE, posterior average)", "test error (MSE, posterior average)",
                 "readout order parameter Qbar", "classification error"):
        assert text in out
    assert (tmp_path / "reference" / "summary.json").exists()

    resumed = ["--checkpoint", str(tmp_path / "resumed"), "--checkpoint-every", "0.05"]
    state = tmp_path / "resumed" / "state.pt"

    def interrupt():  # once the loop has saved a checkpoint
        while not state.exists():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt)
    thread.start()
    assert _run_in_process(args + resumed) == 130
    thread.join()
    assert "rerun the same command" in capsys.readouterr().err
    assert 0 < _step(tmp_path / "resumed") < 600
    assert _run_in_process(args + resumed) == 0
    ref = torch.load(tmp_path / "reference" / "samples.pt", weights_only=False)
    got = torch.load(tmp_path / "resumed" / "samples.pt", weights_only=False)
    for key in ("steps", "train_predictions", "test_predictions", "readout_order"):
        assert torch.equal(got[key], ref[key]), key


def test_user_errors_are_one_line(capsys):
    code = _run_in_process(["sample", "--arch", "no-such-net", "--data", "digits",
                            "--n-train", "10", "--n-test", "10"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "architecture" in err and err.count("\n") == 1
    code = _run_in_process(ARGS + ["--step-size", "big"])
    assert code == 2 and "--step-size" in capsys.readouterr().err
