"""The registry-sync command: synth, run and report without Airflow; clear errors on stderr."""

import pytest

from transforms.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch, key_hex):
    monkeypatch.setenv("REGISTRY_SYNC_KEY", key_hex)
    monkeypatch.delenv("REGISTRY_SYNC_INDEX_URL", raising=False)
    return tmp_path / "home"


def test_synth_run_report_round_trip(home, capsys):
    assert main(["--home", str(home), "synth", "--children", "300", "--councils", "2"]) == 0
    assert (home / "truth" / "children.parquet").exists()
    assert not list((home / "landing").rglob("*.parquet"))  # truth never in the drop zone
    assert main(["--home", str(home), "run"]) == 0
    out = capsys.readouterr().out
    assert "E08000035" in out and "loaded" in out
    assert (home / "index.sqlite").exists()
    assert main(["--home", str(home), "report"]) == 0
    assert "run cli_" in capsys.readouterr().out


def test_missing_key_is_an_error_on_stderr_with_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("REGISTRY_SYNC_KEY", raising=False)
    monkeypatch.delenv("REGISTRY_SYNC_KEY_FILE", raising=False)
    assert main(["--home", str(tmp_path), "run"]) == 2
    err = capsys.readouterr().err
    assert "no pseudonymisation key" in err and "REGISTRY_SYNC_KEY" in err


def test_report_before_any_run_says_what_to_do(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "report"]) == 2
    assert "run the DAG or `registry-sync run` first" in capsys.readouterr().err


def test_truth_inside_drop_zone_is_refused(tmp_path, capsys):
    code = main(
        [
            "--home",
            str(tmp_path),
            "synth",
            "--children",
            "10",
            "--out",
            str(tmp_path / "landing"),
            "--truth",
            str(tmp_path / "landing" / "t"),
        ]
    )
    assert code == 2
    assert "outside the drop zone" in capsys.readouterr().err


def test_lookup_and_audit_commands(home, capsys):
    import pandas as pd

    main(["--home", str(home), "synth", "--children", "200", "--councils", "1"])
    main(["--home", str(home), "run"])
    truth = pd.read_parquet(home / "truth" / "children.parquet")
    clean = truth[
        (truth["defects"] == "")
        & ~truth["opted_out_any"]
        & ~truth["shielded"]
        & (truth["nhs_number"] != "")
    ]
    number = clean["nhs_number"].iloc[0]
    capsys.readouterr()
    assert (
        main(
            [
                "--home",
                str(home),
                "lookup",
                "--nhs-number",
                number,
                "--reason",
                "Test look-up from the suite",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert '"postcode_district"' in out and number not in out
    assert main(["--home", str(home), "lookup", "--nhs-number", number, "--reason", "x"]) == 2
    assert "give the reason" in capsys.readouterr().err
    assert main(["--home", str(home), "audit"]) == 0
    assert "load_children" in capsys.readouterr().out


def test_withdraw_optout_and_unshield_commands(home, capsys):
    import pandas as pd

    main(["--home", str(home), "synth", "--children", "400", "--councils", "1"])
    main(["--home", str(home), "run"])
    truth = pd.read_parquet(home / "truth" / "children.parquet")
    opted = truth[truth["opted_out_national"] & (truth["nhs_number"] != "")]
    shielded = truth[truth["shielded"] & (truth["nhs_number"] != "") & (truth["defects"] == "")]
    capsys.readouterr()
    number = opted["nhs_number"].iloc[0]
    args = ["--home", str(home), "withdraw-optout", "--nhs-number", number, "--scope"]
    assert main([*args, "national"]) == 0
    assert main([*args, "national"]) == 2  # nothing left to withdraw: says so
    assert "no opt-out of scope national" in capsys.readouterr().err
    number = shielded["nhs_number"].iloc[0]
    council = shielded["council_code"].iloc[0]
    args = ["--home", str(home), "unshield", "--nhs-number", number, "--council"]
    assert main([*args, "E09000007"]) == 2
    assert "only the council that shielded" in capsys.readouterr().err
    assert main([*args, council]) == 0
    main(["--home", str(home), "audit"])
    out = capsys.readouterr().out
    assert "optout_withdrawn" in out and "unshield" in out and number not in out
