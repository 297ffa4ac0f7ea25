//! Real FUSE mounts of real evaluations that need only the repository:
//! the expressions in `contrib/examples`, mounted by the `attrfs` binary
//! and read with `ls`, `cat`, `readlink`, `find`, `grep -r`, `getfattr` and
//! `attr`, as a user would.
//!
//! Expected derivation paths and `.drv` bytes are C++ Nix 2.8's, from
//! `cd contrib/examples && nix-instantiate -A hello demo.nix` (then `cat`
//! of the `.drv` it printed).

mod support;

use std::path::{Path, PathBuf};
use support::*;

const HELLO_DRV_PATH: &str = "/nix/store/c2hbrq4kx4gyhv7gax77vi9vz5dh4lpf-hello-2.12.drv";
const HELLO_OUT_PATH: &str = "/nix/store/hxsj3r5sprs0r4fvg3mc2dipdjgs1klf-hello-2.12";
const HELLO_DRV: &str = r#"Derive([("out","/nix/store/hxsj3r5sprs0r4fvg3mc2dipdjgs1klf-hello-2.12","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo hello > $out"],[("builder","/bin/sh"),("name","hello-2.12"),("out","/nix/store/hxsj3r5sprs0r4fvg3mc2dipdjgs1klf-hello-2.12"),("system","x86_64-linux")])"#;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib/examples")
        .canonicalize()
        .expect("contrib/examples exists")
}

fn mount_example(name: &str) -> Mount {
    let file = examples_dir().join(name);
    Mount::spawn(&["--eval-timeout", "20", file.to_str().expect("UTF-8 path")])
}

#[test]
fn demo_values_read_as_files() {
    if !fuse_available() {
        return;
    }
    let mount = mount_example("demo.nix");
    let ls = mount.sh("ls -A");
    assert_eq!(
        stdout(&ls),
        "answer\nbroken\ndouble\nenabled\ngreeting\nhello\nnames%2Fwith%2Fslashes\nnothing\npi\nscript\nself\nusers\n"
    );
    for (file, expected) in [
        ("greeting", "Hello from attrfs!\n"),
        ("answer", "42"),
        ("pi", "3.14159"),
        ("enabled", "true"),
        ("nothing", "null"),
        ("users/alice/uid", "1000"),
        ("users/alice/shell", "/bin/bash"),
        ("users/alice/groups/1", "video"),
        (
            "names%2Fwith%2Fslashes",
            "attribute names are encoded reversibly",
        ),
        ("script", &format!("{HELLO_OUT_PATH}/bin/hello")),
    ] {
        let out = mount.sh(&format!("cat '{file}'"));
        assert_eq!(stdout(&out), expected, "cat {file}: {}", stderr(&out));
    }
    assert_eq!(stdout(&mount.sh("ls users/bob/groups | wc -l")).trim(), "0");
    assert_eq!(stdout(&mount.sh("ls users/alice/groups")), "0\n1\n");
    // Sizes are the exact lengths.
    assert_eq!(stdout(&mount.sh("stat -c %s greeting answer")), "19\n2\n");
    // A path is a symlink to the absolute path.
    let target = examples_dir().join("demo.nix");
    assert_eq!(
        stdout(&mount.sh("readlink self")).trim_end(),
        target.to_str().unwrap()
    );
    // A function is described, with where it is defined.
    let double = stdout(&mount.sh("cat double"));
    assert!(double.contains("demo.nix"), "{double}");
    let types = mount.sh(
        "for f in greeting answer users double hello; do getfattr --only-values -n user.nix.type $f; echo; done",
    );
    assert_eq!(stdout(&types), "string\nint\nset\nlambda\nderivation\n");
}

#[test]
fn demo_derivation_matches_cpp_nix() {
    if !fuse_available() {
        return;
    }
    let mount = mount_example("demo.nix");
    assert_eq!(stdout(&mount.sh("cat hello/.drv")), HELLO_DRV);
    assert_eq!(
        stdout(&mount.sh("getfattr --only-values -n user.nix.drvPath hello")),
        HELLO_DRV_PATH
    );
    assert_eq!(
        stdout(&mount.sh("getfattr --only-values -n user.nix.outPath hello")),
        HELLO_OUT_PATH
    );
    assert_eq!(stdout(&mount.sh("cat hello/name")), "hello-2.12");
    assert_eq!(
        stdout(&mount.sh("readlink hello/out")).trim_end(),
        HELLO_OUT_PATH
    );
    // The script's context is the derivation's output.
    let context = stdout(&mount.sh("getfattr --only-values -n user.nix.context script"));
    assert!(context.contains(HELLO_DRV_PATH), "{context}");
}

#[test]
fn demo_broken_value_gives_eio_and_its_message() {
    if !fuse_available() {
        return;
    }
    let mount = mount_example("demo.nix");
    let cat = mount.sh("cat broken");
    assert!(!cat.status.success());
    assert!(
        stderr(&cat).contains("Input/output error"),
        "{}",
        stderr(&cat)
    );
    let error = mount.sh("attr -q -g nix.error broken");
    assert!(
        stdout(&error).contains("this value fails"),
        "{} {}",
        stdout(&error),
        stderr(&error)
    );
}

/// Every example mounts, and `find` and `grep -r` over it finish (the
/// failing values are reported, not fatal).
#[test]
fn every_example_mounts_and_walks() {
    if !fuse_available() {
        return;
    }
    let mut examples: Vec<String> = std::fs::read_dir(examples_dir())
        .expect("read contrib/examples")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".nix"))
        .collect();
    examples.sort();
    assert!(!examples.is_empty());
    for name in &examples {
        let mut mount = mount_example(name);
        let find = mount.sh("find . | wc -l");
        let entries: usize = stdout(&find).trim().parse().unwrap_or(0);
        assert!(entries > 1, "{name}: find saw {entries} entries");
        let grep = mount.sh("grep -r -l . . | wc -l");
        let files: usize = stdout(&grep).trim().parse().unwrap_or(0);
        assert!(files > 0, "{name}: grep -r found nothing");
        assert!(
            mount.child_running(),
            "{name}: the daemon died:\n{}",
            mount.log_text()
        );
    }
}
