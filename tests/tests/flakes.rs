//! Flakes against C++ Nix 2.8's results, through the `attrfs` binary as a
//! user runs it: `attrfs eval --flake` on the fixture flakes (a Git root
//! flake, clean and dirty, with a Git input, a path input whose own input
//! follows the root's, and a `flake = false` input), attribute path
//! resolution, pure and impure evaluation, a missing input, `getFlake`; a
//! NixOS configuration built with the corpus nixpkgs' `lib.nixosSystem`
//! whose toplevel drvPath must be C++ Nix's; and the same configuration
//! mounted over FUSE, read with `cat`.
//!
//! Nothing here needs C++ Nix or anything in `/nix/store`.

use attrfs_eval::cli::EvalCommand;
use attrfs_eval::EvalOptions;
use attrfs_tests::fetch_fixtures::{attrfs_bin, build_fixtures_in, cases, FLAKE_FIXTURES_DIR};
use attrfs_tests::{corpus_dir, run_isolated, shared_dir, workspace_root, Outcome};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The fixture directory and the cache and store directories of this
/// test process.
struct Setup {
    dir: PathBuf,
    cache: PathBuf,
    store: PathBuf,
    /// Held while this process uses the fixtures (see `setup`).
    _lock: std::fs::File,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        // The fixtures live at one fixed path (their lock files name each
        // other by it): a second test run on the machine (another checkout)
        // waits here instead of rebuilding them under this one's feet.
        let lock = std::fs::File::create(format!("{FLAKE_FIXTURES_DIR}.lock"))
            .expect("create the fixtures' lock file");
        lock.lock().expect("lock the flake fixtures");
        let dir = build_fixtures_in(Path::new(FLAKE_FIXTURES_DIR));
        let tmp = workspace_root().join("target/tmp");
        let cache = tmp.join(format!("attrfs-cache-flakes-{}", std::process::id()));
        let store = tmp.join(format!("attrfs-nixstore-flakes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::create_dir_all(&store).expect("create fake store");
        std::env::set_var("ATTRFS_CACHE_DIR", &cache);
        std::env::set_var("ATTRFS_NIX_STORE", &store);
        Setup {
            dir,
            cache,
            store,
            _lock: lock,
        }
    })
}

fn attrfs(s: &Setup, args: &[&str]) -> Output {
    Command::new(attrfs_bin())
        .args(args)
        .env("ATTRFS_CACHE_DIR", &s.cache)
        .env("ATTRFS_NIX_STORE", &s.store)
        .output()
        .expect("run attrfs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "attrfs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// Current C++ Nix, which attrfs follows where 2.8 differs
/// (docs/notes-flakes.md): a flake has `_type = "flake"`, and a dirty Git
/// tree reports `dirtyRev`/`dirtyShortRev`. Turns 2.8's expected value
/// into current Nix's.
fn as_current_nix(name: &str, expected: &mut serde_json::Value) {
    let Some(obj) = expected.as_object_mut() else {
        return;
    };
    let Some(keys) = obj.get_mut("keys").and_then(|k| k.as_array_mut()) else {
        return;
    };
    keys.push("_type".into());
    if name == "flake-dirty" {
        keys.push("dirtyRev".into());
        keys.push("dirtyShortRev".into());
    }
    keys.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    if name == "flake-dirty" {
        let rev = "04486783bfb43fafaaa873d72fa6d271c217bde7";
        obj.insert("selfDirtyRev".into(), format!("{rev}-dirty").into());
        let me = obj["self"].as_object_mut().expect("self");
        me.insert("dirtyRev".into(), format!("{rev}-dirty").into());
        me.insert("dirtyShortRev".into(), "0448678-dirty".into());
    }
}

#[test]
fn flakes_match_cpp_nix() {
    let s = setup();
    let dir = s.dir.display().to_string();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases().into_iter().filter(|c| c.kind == "flake") {
        let reference = case.arg.replace("@DIR@", &dir);
        let out = attrfs(s, &["eval", "--json", "--flake", &reference]);
        if !out.status.success() {
            failures.push(format!(
                "{}: {}",
                case.name,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let ours = String::from_utf8_lossy(&out.stdout).replace(&dir, "@DIR@");
        let ours: serde_json::Value = serde_json::from_str(ours.trim()).expect("JSON");
        let mut expected: serde_json::Value = serde_json::from_str(&case.expected).expect("JSON");
        as_current_nix(&case.name, &mut expected);
        if ours != expected {
            failures.push(format!(
                "{}:\n  ours:     {ours}\n  expected: {expected}",
                case.name
            ));
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn impure_lifts_pure_evaluation() {
    let s = setup();
    let top = format!("{}/flakes/top#summary.system", s.dir.display());
    assert_eq!(stdout(&attrfs(s, &["eval", "--flake", &top])), "\"pure\"");
    assert_eq!(
        stdout(&attrfs(s, &["eval", "--impure", "--flake", &top])),
        "\"x86_64-linux\""
    );
}

#[test]
fn missing_attribute_and_unlocked_input_are_clear_errors() {
    let s = setup();
    let top = format!("{}/flakes/top#nope", s.dir.display());
    let out = attrfs(s, &["eval", "--flake", &top]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not provide attribute 'packages.x86_64-linux.nope', 'legacyPackages.x86_64-linux.nope' or 'nope'"),
        "{err}"
    );

    // A flake whose input is not in its (absent) lock file.
    let unlocked = s.dir.join("flakes/unlocked");
    std::fs::create_dir_all(&unlocked).unwrap();
    std::fs::write(
        unlocked.join("flake.nix"),
        "{ inputs.extra.url = \"github:NixOS/nixpkgs\"; outputs = { self, extra }: { x = 1; }; }",
    )
    .unwrap();
    let r = format!("path:{}#x", unlocked.display());
    let out = attrfs(s, &["eval", "--flake", &r]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("input 'extra' of flake") && err.contains("is not locked"),
        "{err}"
    );

    // Not a flake at all.
    let r = format!("{}/tree", s.dir.display());
    let out = attrfs(s, &["eval", "--flake", &r]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a flake"));
}

#[test]
fn get_flake_in_an_expression() {
    let s = setup();
    let cmd = EvalCommand {
        invocation: attrfs_eval::Invocation::expr(format!(
            r#"let f = builtins.getFlake "git+file://{}/flakes/top"; in
               [ f.summary.greeting f.inputs.mid.greeting f._type (f.outPath == f.sourceInfo.outPath) ]"#,
            s.dir.display()
        )),
        strict: true,
        experimental_features: vec!["flakes".into()],
        ..Default::default()
    };
    match run_isolated(cmd, EvalOptions::default(), Duration::from_secs(120)) {
        Outcome::Ok(out) => assert_eq!(
            String::from_utf8_lossy(&out).trim(),
            r#"[ "hello from dep via mid" "hello from dep via mid" "flake" true ]"#
        ),
        other => panic!("{other:?}"),
    }
}

/// The NixOS flake fixture, laid out over the unpacked corpus nixpkgs
/// (once: tests running in parallel share it).
fn nixos_flake(s: &Setup) -> PathBuf {
    static FLAKE: OnceLock<PathBuf> = OnceLock::new();
    FLAKE.get_or_init(|| lay_out_nixos_flake(s)).clone()
}

fn lay_out_nixos_flake(s: &Setup) -> PathBuf {
    let dir = s.dir.join("nixos-flake");
    let nixpkgs = corpus_dir().join("nixpkgs-20.09");
    let status = Command::new("bash")
        .arg(workspace_root().join("tests/fixtures/nixos-flake/make-flake.sh"))
        .arg(&dir)
        .arg(&nixpkgs)
        .arg(shared_dir().join("corpus/nixos/small-server.nix"))
        .status()
        .expect("run make-flake.sh");
    assert!(status.success());
    dir
}

fn nixos_expected(name: &str) -> String {
    let text =
        std::fs::read_to_string(workspace_root().join("tests/fixtures/nixos-flake/expected.txt"))
            .expect("read expected.txt");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}\t")))
        .unwrap_or_else(|| panic!("no {name} in expected.txt"))
        .to_string()
}

#[test]
fn nixos_configuration_from_a_flake_matches_cpp_nix() {
    if attrfs_tests::require_corpus().is_none() {
        return;
    }
    let s = setup();
    let flake = nixos_flake(s);
    let attr = |a: &str| format!("{}#nixosConfigurations.small.config.{a}", flake.display());
    let drv = stdout(&attrfs(
        s,
        &[
            "eval",
            "--raw",
            "--flake",
            &attr("system.build.toplevel.drvPath"),
        ],
    ));
    assert_eq!(drv, nixos_expected("toplevel"));
    let version = stdout(&attrfs(
        s,
        &["eval", "--raw", "--flake", &attr("system.nixos.version")],
    ));
    assert_eq!(version, nixos_expected("version"));
}

/// A running `attrfs mount --flake ...`, unmounted on drop.
struct Mount {
    child: Child,
    mountpoint: PathBuf,
}

fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.to_string_lossy();
    mounts
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(&*path))
}

impl Mount {
    fn start(s: &Setup, flake: &str, tag: &str) -> Mount {
        let mountpoint = s.dir.join(format!("mnt-{tag}"));
        std::fs::create_dir_all(&mountpoint).unwrap();
        let mut child = Command::new(attrfs_bin())
            .args(["mount", "--flake", flake])
            .arg(&mountpoint)
            .env("ATTRFS_CACHE_DIR", &s.cache)
            .env("ATTRFS_NIX_STORE", &s.store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn attrfs mount");
        let deadline = Instant::now() + Duration::from_secs(300);
        while !is_mounted(&mountpoint) {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("attrfs mount exited with {status}: {err}");
            }
            assert!(Instant::now() < deadline, "not mounted in time");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mount { child, mountpoint }
    }

    fn sh(&self, script: &str) -> String {
        let out = Command::new("timeout")
            .args(["120", "sh", "-c", script])
            .current_dir(&self.mountpoint)
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new(attrfs_bin())
            .arg("umount")
            .arg(&self.mountpoint)
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mounted_flakes_read_with_cat() {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("skipping: /dev/fuse is missing");
        return;
    }
    if attrfs_tests::require_corpus().is_none() {
        return;
    }
    let s = setup();
    let flake = nixos_flake(s);
    let started = Instant::now();
    let m = Mount::start(
        s,
        &format!("{}#nixosConfigurations.small.config", flake.display()),
        "nixos",
    );
    assert_eq!(m.sh("cat networking/hostName"), nixos_expected("hostName"));
    eprintln!(
        "mount of a flake's NixOS config + cat networking/hostName: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert!(m.sh("ls").lines().any(|l| l == "networking"));
    drop(m);

    // A whole flake: its outputs, sourceInfo and inputs are browsable.
    let top = format!("{}/flakes/top", s.dir.display());
    let m = Mount::start(s, &top, "top");
    assert_eq!(m.sh("ls inputs"), "data\ndep\nmid\n");
    assert_eq!(m.sh("cat summary/greeting"), "hello from dep via mid");
    assert_eq!(
        m.sh("cat inputs/data/narHash"),
        "sha256-wc3VOsmRYa0RvWXkOcjOo4b8ePq0Qa+yqx01NTHEj3I="
    );
    assert_eq!(
        m.sh("cat inputs/mid/inputs/dep/lib/greeting"),
        "hello from dep"
    );
}
