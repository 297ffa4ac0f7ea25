//! `attrfs completions` and `attrfs man`: what the Nix package installs
//! (shell completions, man pages) comes out of the binary and is valid.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_attrfs");

fn attrfs(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run attrfs")
}

#[test]
fn completions_for_each_shell_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = attrfs(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).expect("UTF-8");
        for word in ["mount", "eval", "umount", "show-trace", "eval-timeout"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
        assert!(!script.contains("__reap-mount"), "{shell}: hidden command");
    }
    // The bash script is valid bash.
    let bash = attrfs(&["completions", "bash"]);
    let check = Command::new("bash")
        .args(["-n", "-c"])
        .arg(String::from_utf8_lossy(&bash.stdout).as_ref())
        .output()
        .expect("run bash -n");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(attrfs(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_pages_render_for_attrfs_and_its_subcommands() {
    for (sub, title, mentions) in [
        (None, ".TH attrfs 1", "mount"),
        (Some("mount"), ".TH attrfs-mount 1", "\\-\\-eval\\-timeout"),
        (Some("eval"), ".TH attrfs-eval 1", "\\-\\-show\\-trace"),
        (Some("umount"), ".TH attrfs-umount 1", "MOUNTPOINT"),
    ] {
        let mut args = vec!["man"];
        args.extend(sub);
        let out = attrfs(&args);
        assert!(out.status.success(), "{args:?}");
        let page = String::from_utf8(out.stdout).expect("UTF-8");
        assert!(
            page.contains(title),
            "{args:?}: {}",
            &page[..page.len().min(300)]
        );
        assert!(page.contains(".SH SYNOPSIS"), "{args:?}");
        assert!(page.contains(mentions), "{args:?} lacks {mentions}");
    }
    let bad = attrfs(&["man", "__reap-mount"]);
    assert_eq!(bad.status.code(), Some(2));
}
