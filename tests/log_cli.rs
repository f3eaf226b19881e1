//! Logging flags as a user meets them: an invalid `--log-level` is an error (exit 2, a message), and
//! log lines carry ANSI colour only when stderr is a terminal.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_dealpay");

fn dealpay(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DEALPAY_LOG")
        .env_remove("NO_COLOR")
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("dealpay runs")
}

#[test]
fn invalid_log_level_exits_2_with_a_message() {
    for bad in ["dealpay_operator=loud", "info,[", "=debug"] {
        let out = dealpay(&["--log-level", bad, "crd"], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(out.stdout.is_empty(), "{bad}: the command ran anyway");
        assert!(stderr.contains("--log-level"), "{bad}: {stderr}");
        assert!(stderr.contains("not a log filter"), "{bad}: {stderr}");
    }
    // After the subcommand too (the flag is global), and from the environment.
    let out = dealpay(&["crd", "--log-level", "x=nope"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = dealpay(&["crd"], &[("DEALPAY_LOG", "dealpay_operator=loud")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a log filter"), "{stderr}");
}

#[test]
fn valid_log_levels_are_accepted() {
    for good in [
        "info",
        "warn",
        "dealpay_operator=debug,warn",
        "off",
        "trace",
    ] {
        let out = dealpay(&["--log-level", good, "crd"], &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{good}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn no_ansi_escapes_when_stderr_is_not_a_terminal() {
    let out = dealpay(
        &[
            "--log-level",
            "debug",
            "pay",
            "--sandbox",
            "-f",
            "examples/dealpayment.yaml",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("in-process sandbox"),
        "no log line to check: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escape in piped stderr: {stderr:?}"
    );
}

/// `script` (util-linux) gives the command a terminal: colour is kept there, and NO_COLOR removes it.
#[test]
fn ansi_colour_on_a_terminal_unless_no_color() {
    let run = |no_color: bool| {
        let cmd = format!(
            "{}{BIN} --log-level debug pay --sandbox -f examples/dealpayment.yaml >/dev/null",
            if no_color { "NO_COLOR=1 " } else { "" }
        );
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("DEALPAY_LOG")
            .env_remove("NO_COLOR")
            .output()
            .expect("`script` runs (util-linux; Debian's bsdutils, always installed)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tty = run(false);
    assert!(tty.contains("in-process sandbox"), "{tty}");
    assert!(tty.contains("\u{1b}["), "no colour on a terminal: {tty:?}");
    let plain = run(true);
    assert!(plain.contains("in-process sandbox"), "{plain}");
    assert!(
        !plain.contains("\u{1b}["),
        "colour despite NO_COLOR: {plain:?}"
    );
}
