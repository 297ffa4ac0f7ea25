//! The NixOS module `contrib/nix/module.nix`, evaluated by attrfs with the
//! corpus's NixOS 20.09 and its `small-server` configuration plus
//! `services.attrfs.mounts`: the generated systemd units, the locate
//! exclusion, the assertion, and the whole system's toplevel drvPath.
//!
//! NixOS 20.09 cannot build attrfs itself (Rust 1.45, no `cargoLock`, no
//! `lib.fileset`), so `services.attrfs.package` is a stand-in derivation
//! named attrfs here; `packaging.rs` evaluates the real package against a
//! modern nixpkgs. (The same expression gives byte-identical results under
//! C++ Nix 2.8, checked by hand with `nix-instantiate --eval --strict`.)

use attrfs_tests::{eval_strict, require_corpus, require_shared, workspace_root};

fn system(nixpkgs: &str, small_server: &str, mounts: &str) -> String {
    let module = workspace_root().join("contrib/nix/module.nix");
    format!(
        r#"import {nixpkgs}/nixos {{
  system = "x86_64-linux";
  configuration = {{ pkgs, ... }}: {{
    imports = [ {small_server} {module} ];
    services.attrfs.package = pkgs.runCommand "attrfs-0.1.0" {{ }} "mkdir -p $out/bin";
    services.attrfs.mounts = {mounts};
  }};
}}"#,
        module = module.display()
    )
}

const MOUNTS: &str = r#"{
  cfg = {
    source = "<nixpkgs/nixos>";
    mountPoint = "/mnt/cfg";
    attr = "config";
    argstrs.configuration = "/etc/nixos/configuration.nix";
    args.overlays = "[ ]";
  };
  shared = {
    flake = "/etc/nixos";
    attr = "nixosConfigurations.small-server.config";
    mountPoint = "/mnt/shared cfg";
    allowOther = true;
    extraArgs = [ "--eval-timeout" "60" ];
  };
}"#;

fn paths() -> Option<(String, String)> {
    let shared = require_shared()?;
    let corpus = require_corpus()?;
    let nixpkgs = corpus.join("nixpkgs-20.09");
    let config = shared.join("corpus/nixos/small-server.nix");
    Some((
        nixpkgs.display().to_string(),
        config
            .canonicalize()
            .expect("small-server.nix exists")
            .display()
            .to_string(),
    ))
}

#[test]
fn mounts_become_attrfs_services() {
    let Some((nixpkgs, config)) = paths() else {
        return;
    };
    let expr = format!(
        r#"let
  sys = {};
  c = sys.config;
  s = c.systemd.services;
  unit = name: {{
    inherit (s.${{name}}.serviceConfig) ExecStart ExecStop ExecStartPre Restart;
    wantedBy = s.${{name}}.wantedBy;
    path = s.${{name}}.environment.PATH;
  }};
in builtins.toJSON {{
  cfg = unit "attrfs-cfg";
  shared = unit "attrfs-shared";
  package = toString c.services.attrfs.package;
  services = builtins.filter (n: builtins.substring 0 7 n == "attrfs-") (builtins.attrNames s);
  pruneFS = c.services.locate.pruneFS;
  kernelModules = c.boot.kernelModules;
  unitText = c.systemd.units."attrfs-cfg.service".text;
  toplevel = c.system.build.toplevel.drvPath;
}}"#,
        system(&nixpkgs, &config, MOUNTS)
    );
    let printed =
        eval_strict(&expr).unwrap_or_else(|e| panic!("the module does not evaluate:\n{e}"));
    let json: String = serde_json::from_str(&printed).expect("a Nix string");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let package = v["package"].as_str().expect("package").to_string();
    let attrfs = format!("{package}/bin/attrfs");

    assert_eq!(
        v["services"],
        serde_json::json!(["attrfs-cfg", "attrfs-shared"])
    );
    let cfg = &v["cfg"];
    assert_eq!(
        cfg["ExecStart"],
        format!(
            "{attrfs} mount \"<nixpkgs/nixos>\" /mnt/cfg -A config --arg overlays \"[ ]\" \
             --argstr configuration /etc/nixos/configuration.nix"
        )
    );
    assert_eq!(cfg["ExecStop"], format!("{attrfs} umount /mnt/cfg"));
    assert!(cfg["ExecStartPre"]
        .as_str()
        .is_some_and(|s| s.ends_with("/bin/mkdir -p /mnt/cfg")));
    assert_eq!(cfg["Restart"], "on-failure");
    assert_eq!(cfg["wantedBy"], serde_json::json!(["multi-user.target"]));
    assert!(
        cfg["path"].as_str().is_some_and(|p| p.contains("-fuse-3")),
        "fusermount3 on PATH: {}",
        cfg["path"]
    );

    let shared = &v["shared"];
    assert_eq!(
        shared["ExecStart"],
        format!(
            "{attrfs} mount --flake /etc/nixos#nixosConfigurations.small-server.config \
             \"/mnt/shared cfg\" -o allow_other,default_permissions --eval-timeout 60"
        )
    );
    assert_eq!(
        shared["ExecStop"],
        format!("{attrfs} umount \"/mnt/shared cfg\"")
    );
    // Private unless asked: only the allowOther mount has allow_other.
    assert!(!cfg["ExecStart"].as_str().unwrap().contains("allow_other"));

    let prune: Vec<&str> = v["pruneFS"]
        .as_array()
        .expect("pruneFS")
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    assert!(prune.contains(&"fuse.attrfs"), "{prune:?}");
    assert!(
        prune.contains(&"proc"),
        "the default exclusions stay: {prune:?}"
    );
    assert!(v["kernelModules"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x == "fuse")));
    let text = v["unitText"].as_str().expect("unit text");
    assert!(
        text.contains(&format!("ExecStart={attrfs} mount ")),
        "{text}"
    );
    assert!(text.contains("Restart=on-failure"), "{text}");
    // The whole system, units included, instantiates.
    assert!(
        v["toplevel"]
            .as_str()
            .is_some_and(|d| d.starts_with("/nix/store/") && d.ends_with(".drv")),
        "{}",
        v["toplevel"]
    );
}

#[test]
fn source_and_flake_are_exclusive() {
    let Some((nixpkgs, config)) = paths() else {
        return;
    };
    for mounts in [
        r#"{ both = { source = "/etc/nixos/configuration.nix"; flake = "/etc/nixos"; mountPoint = "/mnt/x"; }; }"#,
        r#"{ neither = { mountPoint = "/mnt/x"; }; }"#,
    ] {
        let expr = format!(
            "(({}).config.system.build.toplevel).drvPath",
            system(&nixpkgs, &config, mounts)
        );
        let err = eval_strict(&expr).expect_err("an assertion fails");
        assert!(
            err.contains("set exactly one of source and flake"),
            "{mounts}: {err}"
        );
    }
}
